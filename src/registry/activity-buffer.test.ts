import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeviceName } from '../domain/names.js';
import type { ActivityUpdate } from '../store/store.js';
import { ActivityBuffer } from './activity-buffer.js';

const NAME: DeviceName = { project: 'p', location: 'l', registry: 'reg', device: 'dev1' };
const KEY = 'projects/p/locations/l/registries/reg/devices/dev1';
const t = (s: number): Date => new Date(Date.UTC(2030, 0, 1, 0, 0, s));

describe('ActivityBuffer', () => {
  it('keeps the latest time per field and hands it over once', async () => {
    const buffer = new ActivityBuffer();
    buffer.record(KEY, NAME, { lastEventTime: t(2) });
    buffer.record(KEY, NAME, { lastEventTime: t(1), lastHeartbeatTime: t(1) });
    const written: ActivityUpdate[][] = [];
    await buffer.flush(async (u) => void written.push([...u]));
    await buffer.flush(async (u) => void written.push([...u]));
    assert.deepEqual(written, [[{ device: NAME, lastEventTime: t(2), lastHeartbeatTime: t(1) }]]);
    assert.equal(buffer.pendingFor(KEY), undefined);
  });

  it('shows a batch while it is being written and takes it back when the write fails', async () => {
    const buffer = new ActivityBuffer();
    buffer.record(KEY, NAME, { lastEventTime: t(1) });
    let release: (v?: unknown) => void = () => {};
    const gate = new Promise((resolve) => (release = resolve));
    let started = false;
    const failing = buffer.flush(async () => {
      started = true;
      await gate;
      throw new Error('disk full');
    });
    while (!started) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(buffer.pendingFor(KEY), { lastEventTime: t(1) }, 'in flight is still visible');
    buffer.record(KEY, NAME, { lastHeartbeatTime: t(3) });
    release();
    await assert.rejects(failing, /disk full/);
    assert.deepEqual(buffer.pendingFor(KEY), { lastEventTime: t(1), lastHeartbeatTime: t(3) });
    const written: ActivityUpdate[] = [];
    await buffer.flush(async (u) => void written.push(...u));
    assert.deepEqual(written, [{ device: NAME, lastEventTime: t(1), lastHeartbeatTime: t(3) }]);
  });

  it('never runs two writes at once', async () => {
    const buffer = new ActivityBuffer();
    let running = 0;
    let overlapped = false;
    const write = async (): Promise<void> => {
      running++;
      overlapped ||= running > 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
    };
    buffer.record(KEY, NAME, { lastEventTime: t(1) });
    const first = buffer.flush(write);
    buffer.record(KEY, NAME, { lastEventTime: t(2) });
    await Promise.all([first, buffer.flush(write)]);
    assert.equal(overlapped, false);
  });
  it('updates a pending device in place and refuses an update for one with nothing pending', () => {
    const buffer = new ActivityBuffer();
    assert.equal(buffer.update(KEY, { lastEventTime: t(1) }), false, 'nothing pending yet');
    buffer.record(KEY, NAME, { lastEventTime: t(1) });
    assert.equal(buffer.update(KEY, { lastEventTime: t(3) }), true);
    assert.equal(buffer.update(KEY, { lastEventTime: t(2), lastHeartbeatTime: t(2) }), true);
    const seen = buffer.pendingFor(KEY);
    assert.deepEqual(seen, { lastEventTime: t(3), lastHeartbeatTime: t(2) });
    buffer.update(KEY, { lastEventTime: t(4) });
    assert.deepEqual(seen, { lastEventTime: t(3), lastHeartbeatTime: t(2) }, 'what a reader got does not change under it');
    assert.equal(buffer.size, 1);
  });
});
