import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isKeywayError } from '../domain/errors.js';
import { DEFAULT_LIMITS, resolveLimits } from './limits.js';

describe('broker limits', () => {
  test('defaults follow Cloud IoT Core: 20 min idle, 10 min skew, room for a 256 KB event', () => {
    const limits = resolveLimits();
    assert.equal(limits.idleLimitMs, 20 * 60_000);
    assert.equal(limits.jwtSkewSeconds, 600);
    assert.ok(limits.maxPacketBytes > 256 * 1024);
    assert.ok(limits.maxConnectPacketBytes < limits.maxPacketBytes);
    assert.equal(limits.maxConnectTimeMs, 24 * 3600_000, 'a connection lasts at most a day');
  });

  test('overrides apply; a bound cannot be switched off or made nonsensical', () => {
    assert.equal(resolveLimits({ configRetryMs: 50 }).configRetryMs, 50);
    assert.equal(resolveLimits({ jwtSkewSeconds: 0 }).jwtSkewSeconds, 0);
    for (const bad of [
      { maxPacketBytes: 0 },
      { connectTimeoutMs: -1 },
      { idleLimitMs: Infinity },
      { maxInflight: 1.5 },
      { maxInflight: 70_000 },
      { outboundSoftBytes: 10, outboundHardBytes: 5 },
      { maxConnectTimeMs: 0 },
      { maxConnectTimeMs: 2 ** 31 },
      { maxSessionExpirySeconds: 2 ** 31 },
      { sessionQueueMessages: 0 },
      { maxSessions: 0 },
      { bogus: 1 } as never,
    ]) {
      assert.throws(() => resolveLimits(bad), (e: unknown) => isKeywayError(e) && e.status === 'INVALID_ARGUMENT', JSON.stringify(bad));
    }
    assert.equal(DEFAULT_LIMITS.maxInflight, resolveLimits().maxInflight);
  });
});
