import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRateLimits, patchRateLimits } from './rate-limit-rules.js';

describe('checkRateLimits', () => {
  test('keeps only the fields set, accepts decimal strings, and nothing set is undefined', () => {
    assert.deepEqual(checkRateLimits({ stateUpdatesPerSecond: 2, connectionsPerSecond: '3', telemetryBytesPerSecond: null }), {
      stateUpdatesPerSecond: 2,
      connectionsPerSecond: 3,
    });
    assert.equal(checkRateLimits({}), undefined);
    assert.equal(checkRateLimits(undefined), undefined);
  });

  test('refuses what would switch a limit off or past what a node can honour, naming the field', () => {
    for (const [value, field] of [
      [{ stateUpdatesPerSecond: 0 }, 'deviceRegistry.rateLimits.stateUpdatesPerSecond'],
      [{ connectionsPerSecond: 1001 }, 'deviceRegistry.rateLimits.connectionsPerSecond'],
      [{ telemetryMessagesPerSecond: 2.5 }, 'deviceRegistry.rateLimits.telemetryMessagesPerSecond'],
      [{ registryPublishesPerMinute: '1e3' }, 'deviceRegistry.rateLimits.registryPublishesPerMinute'],
      [{ burst: 5 }, 'deviceRegistry.rateLimits.burst'],
      ['fast', 'deviceRegistry.rateLimits'],
    ] as const) {
      assert.throws(() => checkRateLimits(value), (e: Error & { details?: unknown }) => e.message.includes(`'${field}'`), JSON.stringify(value));
    }
  });
});

describe('patchRateLimits', () => {
  const current = { stateUpdatesPerSecond: 5, connectionsPerSecond: 2 };
  test('rate_limits replaces them all; a field path sets or resets that field alone', () => {
    assert.deepEqual(patchRateLimits(current, { telemetryBytesPerSecond: 10 }, new Set(['rate_limits'])), { rateLimits: { telemetryBytesPerSecond: 10 } });
    assert.deepEqual(
      patchRateLimits(current, { telemetryBytesPerSecond: 10, connectionsPerSecond: 9 }, new Set(['rate_limits.telemetry_bytes_per_second'])),
      { rateLimits: { stateUpdatesPerSecond: 5, connectionsPerSecond: 2, telemetryBytesPerSecond: 10 } },
    );
    assert.deepEqual(patchRateLimits(current, undefined, new Set(['rate_limits.state_updates_per_second'])), { rateLimits: { connectionsPerSecond: 2 } });
    assert.equal(patchRateLimits(current, { stateUpdatesPerSecond: 1 }, new Set(['log_level'])), undefined);
  });
});
