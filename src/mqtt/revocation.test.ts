import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceRevoked } from '../bus/bus.js';
import { RevocationWindow, revokes } from './revocation.js';

const KEY = 'projects/p/locations/l/registries/r/devices/dev';
const event = (over: Partial<DeviceRevoked> = {}): DeviceRevoked => ({
  device: KEY,
  reason: 'credentials-changed',
  blocked: false,
  credentialFingerprints: ['aa', 'bb'],
  ...over,
});

describe('revocation', () => {
  test('deleted, blocked, or the credential in use gone: revoked; the credential kept: not', () => {
    assert.equal(revokes(event(), 'aa'), false);
    assert.equal(revokes(event(), 'cc'), true);
    assert.equal(revokes(event({ reason: 'blocked', blocked: true }), 'aa'), true);
    assert.equal(revokes(event({ reason: 'deleted', credentialFingerprints: ['aa'] }), 'aa'), true);
  });

  test('a revocation that arrives while a token is being checked still refuses that connection', () => {
    const window = new RevocationWindow(10_000);
    const before = window.mark();
    window.record(event({ reason: 'blocked', blocked: true }));
    assert.equal(window.revokedSince(before, KEY, 'aa'), true);
    assert.equal(window.revokedSince(before, `${KEY}x`, 'aa'), false, 'another device');
    // An authentication that began after the revocation saw it in the store already.
    assert.equal(window.revokedSince(window.mark(), KEY, 'aa'), false);
  });

  test('only the latest event per device counts, and old ones are forgotten', async () => {
    const window = new RevocationWindow(20);
    const before = window.mark();
    window.record(event({ credentialFingerprints: ['bb'] }));
    assert.equal(window.revokedSince(before, KEY, 'aa'), true);
    window.record(event({ credentialFingerprints: ['aa'] }));
    assert.equal(window.revokedSince(before, KEY, 'aa'), false);
    await new Promise((r) => setTimeout(r, 40));
    window.record(event({ device: 'other' }));
    assert.equal(window.size, 1, 'entries older than the window are pruned');
  });
});
