import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketIdWindow } from './packet-id-window.js';

test('commands fill the window; a config still gets an id, and released ids come back', () => {
  const ids = new PacketIdWindow(2);
  const a = ids.allocate('command');
  const b = ids.allocate('command');
  assert.deepEqual([a, b], [1, 2]);
  assert.equal(ids.allocate('command'), undefined, 'the window is full');
  const config = ids.allocate('config');
  assert.equal(config, 3, 'a config never waits behind commands');
  assert.equal(ids.release(1), 'command');
  assert.equal(ids.release(1), undefined, 'released once');
  assert.equal(ids.allocate('command'), 4, 'ids go on in sequence');
});

test("an MQTT 5 receive maximum bounds everything, keeping one slot for the config", () => {
  const ids = new PacketIdWindow(100);
  ids.limitTo(3);
  assert.ok(ids.allocate('command') !== undefined);
  assert.ok(ids.allocate('command') !== undefined);
  assert.equal(ids.allocate('command'), undefined, 'receive maximum less one for commands');
  assert.ok(ids.allocate('config') !== undefined, 'the last slot is the config’s');
  assert.equal(ids.allocate('config'), undefined, 'nothing beyond the receive maximum');
});

test('ids wrap after 65535 and skip those still in flight', () => {
  const ids = new PacketIdWindow(70_000);
  for (let i = 1; i <= 0xffff; i++) ids.allocate('command');
  ids.release(7);
  assert.equal(ids.allocate('command'), 7);
});
