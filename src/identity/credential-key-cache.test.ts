import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { CredentialKeyCache } from './credential-key-cache.js';

const pem = (): string => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

describe('CredentialKeyCache', () => {
  test('parses a key once and returns the same object after', () => {
    const cache = new CredentialKeyCache(10);
    const key = pem();
    const first = cache.get('ES256_PEM', key);
    assert.equal(first.algorithm, 'ES256');
    assert.equal(cache.get('ES256_PEM', key), first);
    assert.equal(cache.size, 1);
  });

  test('refuses what parseCredentialKey refuses, and keeps nothing for it', () => {
    const cache = new CredentialKeyCache(10);
    assert.throws(() => cache.get('RSA_PEM', pem()), /does not match format/);
    assert.equal(cache.size, 0);
  });

  test('evicts the least recently used key beyond its capacity', () => {
    const cache = new CredentialKeyCache(2);
    const [a, b, c] = [pem(), pem(), pem()];
    const keyA = cache.get('ES256_PEM', a);
    const keyB = cache.get('ES256_PEM', b);
    assert.equal(cache.get('ES256_PEM', a), keyA, 'a used again: b is now the oldest');
    cache.get('ES256_PEM', c);
    assert.equal(cache.size, 2);
    assert.equal(cache.get('ES256_PEM', a), keyA, 'a kept');
    assert.notEqual(cache.get('ES256_PEM', b), keyB, 'b was evicted and parsed anew');
  });
});
