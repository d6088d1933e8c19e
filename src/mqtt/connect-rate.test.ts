import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectRateLimiter } from './connect-rate.js';

describe('ConnectRateLimiter', () => {
  test('refuses CONNECTs over the listener rate and admits them again as time passes', () => {
    let now = 0;
    const limiter = new ConnectRateLimiter({ connectsPerSecond: 5, identityConnectsPerMinute: 60 }, () => now);
    const admitted = Array.from({ length: 8 }, () => limiter.admitConnect()).filter(Boolean).length;
    assert.equal(admitted, 5);
    now = 1000;
    assert.equal(limiter.admitConnect(), true);
  });

  test('limits one identity without touching another', () => {
    let now = 0;
    const limiter = new ConnectRateLimiter({ connectsPerSecond: 1000, identityConnectsPerMinute: 2 }, () => now);
    assert.equal(limiter.admitIdentity('a'), true);
    assert.equal(limiter.admitIdentity('a'), true);
    assert.equal(limiter.admitIdentity('a'), false, 'a third connection within the minute');
    assert.equal(limiter.admitIdentity('b'), true, 'another identity has its own bucket');
    now = 30_000;
    assert.equal(limiter.admitIdentity('a'), true, 'one token back after 30 s at 2 per minute');
  });

  test('forgets identities whose bucket has refilled, so the table stays bounded', () => {
    let now = 0;
    const limiter = new ConnectRateLimiter({ connectsPerSecond: 1000, identityConnectsPerMinute: 10 }, () => now);
    for (let i = 0; i < 100; i++) limiter.admitIdentity(`device-${i}`);
    assert.equal(limiter.trackedIdentities, 100);
    now = 120_000;
    limiter.admitIdentity('late');
    assert.equal(limiter.trackedIdentities, 1);
  });
});
