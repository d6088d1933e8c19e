import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateAdminToken, hashAdminToken, verifyAdminToken } from './admin-token.js';

describe('admin tokens', () => {
  it('are 32 random bytes, base64url, prefixed kwt_', () => {
    const token = generateAdminToken();
    assert.match(token, /^kwt_[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(token.slice(4), 'base64url').length, 32);
    const many = new Set(Array.from({ length: 200 }, generateAdminToken));
    assert.equal(many.size, 200);
  });

  it('hash as sha256:<hex> and never contain the token', () => {
    const token = generateAdminToken();
    const hash = hashAdminToken(token);
    assert.match(hash, /^sha256:[0-9a-f]{64}$/);
    assert.ok(!hash.includes(token.slice(4)));
    assert.equal(hashAdminToken(token), hash);
  });

  it('verify the right token against its hash', () => {
    const token = generateAdminToken();
    assert.equal(verifyAdminToken(token, hashAdminToken(token)), true);
  });

  it('refuse another token, a near miss, and the hash itself', () => {
    const token = generateAdminToken();
    const hash = hashAdminToken(token);
    assert.equal(verifyAdminToken(generateAdminToken(), hash), false);
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    assert.equal(verifyAdminToken(token.slice(0, -1) + last, hash), false);
    assert.equal(verifyAdminToken(hash, hash), false);
    assert.equal(verifyAdminToken(hash.slice('sha256:'.length), hash), false);
  });

  it('return false on any malformed input instead of throwing', () => {
    const token = generateAdminToken();
    const hash = hashAdminToken(token);
    const badTokens: unknown[] = ['', 'kwt_', token + 'x', token.slice(4), ` ${token}`, `${token}\n`, 'kwt_' + '!'.repeat(43), 'x'.repeat(1_000_000), null, undefined, 42, {}];
    for (const bad of badTokens) assert.equal(verifyAdminToken(bad as string, hash), false);
    const badHashes: unknown[] = ['', 'sha256:', hash.toUpperCase(), hash.slice(0, -1), hash + '0', 'md5:' + hash.slice(7), hash.replace('sha256:', 'sha1:'), null, undefined];
    for (const bad of badHashes) assert.equal(verifyAdminToken(token, bad as string), false);
  });

  it('a token whose hash is stored in a different shape does not verify (no prefix-stripping tricks)', () => {
    const token = generateAdminToken();
    assert.equal(verifyAdminToken(token, hashAdminToken(token).slice(7)), false);
  });
});
