import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RateLimits } from '../domain/resources.js';
import {
  BURST_SECONDS,
  DEFAULT_RATE_LIMITS,
  DeviceRateLimiter,
  resolveRateLimits,
  telemetryMessageBucket,
  type RateLimitedDevice,
} from './device-quotas.js';

const REGISTRY = 'r';

function device(id: string, limits: Partial<RateLimits> = {}, registry = REGISTRY): RateLimitedDevice {
  return {
    key: `projects/p/locations/l/registries/${registry}/devices/${id}`,
    name: { project: 'p', location: 'l', registry },
    rateLimits: resolveRateLimits(limits),
  };
}

/** How many of `n` calls at the same instant are admitted. */
function admitted(n: number, call: () => { ok: boolean }): number {
  let count = 0;
  for (let i = 0; i < n; i++) if (call().ok) count++;
  return count;
}

describe('resolveRateLimits', () => {
  test('fills the defaults in and keeps what was set', () => {
    assert.deepEqual(resolveRateLimits(undefined), DEFAULT_RATE_LIMITS);
    assert.deepEqual(resolveRateLimits({ stateUpdatesPerSecond: 5 }), { ...DEFAULT_RATE_LIMITS, stateUpdatesPerSecond: 5 });
  });
});

describe('DeviceRateLimiter', () => {
  test('state updates: a burst of three at 1/s, then one a second, with a Retry-After', () => {
    const q = new DeviceRateLimiter({ clock: () => 0 });
    const d = device('a');
    assert.equal(admitted(5, () => q.admitState(d, 0)), BURST_SECONDS.stateUpdatesPerSecond);
    const refused = q.admitState(d, 0);
    assert.deepEqual(refused, { ok: false, limit: 'stateUpdatesPerSecond', retryAfterSeconds: 1 });
    assert.equal(q.admitState(d, 999).ok, false, 'not quite one second later');
    assert.equal(q.admitState(d, 1000).ok, true, 'one second later');
  });

  test('one device over its limit leaves other devices and registries alone', () => {
    const q = new DeviceRateLimiter({ clock: () => 0 });
    const noisy = device('noisy', { stateUpdatesPerSecond: 1 });
    admitted(10, () => q.admitState(noisy, 0));
    assert.equal(q.admitState(noisy, 0).ok, false);
    assert.equal(q.admitState(device('quiet'), 0).ok, true);
    assert.equal(q.admitState(device('noisy', {}, 'other'), 0).ok, true, 'same id, other registry');
  });

  test('connections per device count MQTT connections only; HTTP requests count per registry', () => {
    const q = new DeviceRateLimiter({ clock: () => 0 });
    const d = device('c', { connectionsPerSecond: 1 });
    assert.equal(admitted(20, () => q.admitConnection(d, 'mqtt', 0)), BURST_SECONDS.connectionsPerSecond);
    assert.deepEqual(q.admitConnection(d, 'mqtt', 0), { ok: false, limit: 'connectionsPerSecond', retryAfterSeconds: 1 });
    assert.equal(admitted(20, () => q.admitConnection(d, 'http', 0)), 20, 'HTTP requests are not connections of the device');
  });

  test('registry connections per minute: all its devices together, MQTT and HTTP alike', () => {
    const q = new DeviceRateLimiter({ clock: () => 0 });
    const limits = { registryConnectionsPerMinute: 3 };
    assert.equal(q.admitConnection(device('a', limits), 'mqtt', 0).ok, true);
    assert.equal(q.admitConnection(device('b', limits), 'http', 0).ok, true);
    assert.equal(q.admitConnection(device('c', limits), 'mqtt', 0).ok, true);
    assert.deepEqual(q.admitConnection(device('d', limits), 'http', 0), { ok: false, limit: 'registryConnectionsPerMinute', retryAfterSeconds: 20 });
    assert.equal(q.admitConnection(device('d', limits, 'other'), 'mqtt', 0).ok, true, 'another registry');
    assert.equal(q.admitConnection(device('d', limits), 'http', 20_000).ok, true, 'one back after 20 s at 3/min');
  });

  test('a refusal by the registry uses up nothing of the device', () => {
    const q = new DeviceRateLimiter({ clock: () => 0 });
    const limits = { registryPublishesPerMinute: 1, stateUpdatesPerSecond: 1 };
    assert.equal(q.admitState(device('a', limits), 0).ok, true);
    const b = device('b', limits);
    for (let i = 0; i < 5; i++) assert.equal(q.admitState(b, 0).ok, false, 'the registry is over its minute');
    const later = 60_000;
    assert.equal(admitted(1, () => q.admitState(b, later)), 1);
  });

  test('telemetry bytes per device, across protocols; an event above the burst passes once the bucket is full', () => {
    const q = new DeviceRateLimiter({ clock: () => 0 });
    const d = device('t', { telemetryBytesPerSecond: 1000 });
    assert.equal(q.admitTelemetry(d, 1500, 'mqtt', 0).ok, true);
    assert.deepEqual(q.admitTelemetry(d, 1000, 'http', 0), { ok: false, limit: 'telemetryBytesPerSecond', retryAfterSeconds: 1 });
    assert.equal(q.admitTelemetry(d, 500, 'http', 0).ok, true);
    assert.equal(q.admitTelemetry(d, 5000, 'mqtt', 1000).ok, false, 'not full');
    assert.equal(q.admitTelemetry(d, 5000, 'mqtt', 2000).ok, true, 'full: 5000 bytes pass, the average still holds');
    assert.equal(q.admitTelemetry(d, 1, 'mqtt', 4000).ok, false, 'the debt is paid back first');
  });

  test('telemetry messages per device over HTTP; MQTT leaves them to the connection', () => {
    const q = new DeviceRateLimiter({ clock: () => 0 });
    const d = device('h', { telemetryMessagesPerSecond: 2 });
    const burst = 2 * BURST_SECONDS.telemetryMessagesPerSecond;
    assert.equal(admitted(10, () => q.admitTelemetry(d, 1, 'http', 0)), burst);
    assert.equal(q.admitTelemetry(d, 1, 'http', 0).ok, false);
    assert.equal(admitted(10, () => q.admitTelemetry(d, 1, 'mqtt', 0)), 10);
    const connection = telemetryMessageBucket(d.rateLimits, 0);
    assert.equal(admitted(10, () => ({ ok: connection.take(0) })), burst);
  });

  test('registry publishes per minute count telemetry and state together', () => {
    const q = new DeviceRateLimiter({ clock: () => 0 });
    const limits = { registryPublishesPerMinute: 2 };
    assert.equal(q.admitTelemetry(device('a', limits), 10, 'mqtt', 0).ok, true);
    assert.equal(q.admitState(device('b', limits), 0).ok, true);
    const refused = q.admitTelemetry(device('c', limits), 10, 'http', 0);
    assert.equal(refused.ok, false);
    assert.equal(!refused.ok && refused.limit, 'registryPublishesPerMinute');
  });

  test('a registry that changes its limits retunes the buckets of devices that authenticate again', () => {
    const q = new DeviceRateLimiter({ clock: () => 0 });
    admitted(3, () => q.admitState(device('r'), 0));
    assert.equal(q.admitState(device('r'), 0).ok, false);
    const raised = device('r', { stateUpdatesPerSecond: 100 });
    q.admitState(raised, 0);
    assert.equal(q.admitState(raised, 20).ok, true, 'the higher rate refills within 20 ms');
  });

  test('forgets devices and registries whose buckets have refilled', () => {
    let now = 0;
    const q = new DeviceRateLimiter({ clock: () => now });
    for (let i = 0; i < 100; i++) q.admitState(device(`d${i}`));
    assert.equal(q.trackedDevices, 100);
    assert.equal(q.trackedRegistries, 1);
    now = 60_000;
    q.admitState(device('late', {}, 'late'));
    assert.equal(q.trackedDevices, 1);
    assert.equal(q.trackedRegistries, 1);
  });

  test('keeps at most maxDevices, forgetting the longest remembered', () => {
    const q = new DeviceRateLimiter({ clock: () => 0, maxDevices: 10 });
    const first = device('first');
    admitted(3, () => q.admitState(first, 0));
    for (let i = 0; i < 20; i++) {
      q.admitState(device(`d${i}`), 0);
      assert.ok(q.trackedDevices <= 10, `at most 10 devices remembered, not ${q.trackedDevices}`);
    }
    assert.equal(q.admitState(first, 0).ok, true, 'forgotten: it starts again with a full bucket');
  });
});
