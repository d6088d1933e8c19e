/** Service-account public keys over the admin API, and `Authorization: Bearer <JWT>` signed with one. */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { signServiceJwt } from '../identity/service-jwt.js';
import type { ApiServicePublicKey } from './service-account-routes.js';
import { startTestStack, TEST_ADMIN_TOKEN, type TestStack } from './test-stack.js';

const ADMIN = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
const LOC = '/v1/projects/demo/locations/europe-west1';
const SA = '/v1/projects/demo/serviceAccounts';
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
function pair() {
  const p = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { pub: p.publicKey.export({ type: 'spki', format: 'pem' }).toString(), priv: p.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

describe('service-account JWTs on the admin API', () => {
  let stack: TestStack;
  const call = (method: string, url: string, headers: Record<string, string>, payload?: unknown) =>
    stack.api.inject({ method: method as 'GET', url, headers, ...(payload !== undefined ? { payload: payload as object } : {}) });

  before(async () => {
    stack = await startTestStack();
    assert.equal((await call('POST', `${LOC}/registries`, ADMIN, { id: 'fleet' })).statusCode, 200);
    assert.equal((await call('POST', SA, ADMIN, { id: 'reader', bindings: [{ role: 'viewer', scope: 'projects/demo' }] })).statusCode, 200);
    assert.equal((await call('POST', SA, ADMIN, { id: 'other', bindings: [{ role: 'viewer', scope: 'projects/demo' }] })).statusCode, 200);
  });
  after(async () => {
    await stack.close();
  });

  it('adds, lists and removes public keys; at most 3, no duplicates, no private keys, no weak keys', async () => {
    const keys = [pair(), pair(), pair(), pair()];
    const ids: string[] = [];
    for (const k of keys.slice(0, 3)) {
      const r = await call('POST', `${SA}/other/publicKeys`, ADMIN, { publicKey: { format: 'ES256_PEM', key: k.pub } });
      assert.equal(r.statusCode, 200, r.body);
      ids.push((JSON.parse(r.body) as ApiServicePublicKey).keyId);
    }
    const fourth = await call('POST', `${SA}/other/publicKeys`, ADMIN, { publicKey: { format: 'ES256_PEM', key: keys[3]?.pub } });
    assert.equal(fourth.statusCode, 400, fourth.body);
    assert.match(fourth.body, /at most 3/);
    const list = JSON.parse((await call('GET', `${SA}/other/publicKeys`, ADMIN)).body) as { publicKeys: ApiServicePublicKey[] };
    assert.deepEqual(list.publicKeys.map((k) => k.keyId), ids);
    assert.equal((await call('DELETE', `${SA}/other/publicKeys/${ids[0] ?? ''}`, ADMIN)).statusCode, 200);
    assert.equal((await call('DELETE', `${SA}/other/publicKeys/${ids[0] ?? ''}`, ADMIN)).statusCode, 404);
    const dup = await call('POST', `${SA}/other/publicKeys`, ADMIN, { publicKey: { format: 'ES256_PEM', key: keys[1]?.pub } });
    assert.equal(dup.statusCode, 409, dup.body);
    const priv = await call('POST', `${SA}/other/publicKeys`, ADMIN, { publicKey: { format: 'ES256_PEM', key: keys[3]?.priv } });
    assert.equal(priv.statusCode, 400);
    assert.ok(!priv.body.includes('PRIVATE KEY-----\n'), 'the private key is not echoed');
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.match((await call('POST', `${SA}/other/publicKeys`, ADMIN, { publicKey: { format: 'RSA_PEM', key: weak } })).body, /too weak/);
    const past = await call('POST', `${SA}/other/publicKeys`, ADMIN, { publicKey: { format: 'ES256_PEM', key: keys[3]?.pub }, expirationTime: '2001-01-01T00:00:00Z' });
    assert.equal(past.statusCode, 400);
  });

  it('a JWT is a bearer token with the account’s roles, until its key is removed or the account disabled', async () => {
    const k = pair();
    const added = JSON.parse((await call('POST', `${SA}/reader/publicKeys`, ADMIN, { publicKey: { format: 'ES256_PEM', key: k.pub } })).body) as ApiServicePublicKey;
    const token = await signServiceJwt(k.priv, { project: 'demo', account: 'reader', lifetimeSeconds: 600 });
    assert.equal((await call('GET', `${LOC}/registries/fleet`, bearer(token))).statusCode, 200, 'a viewer reads');
    assert.equal((await call('DELETE', `${LOC}/registries/fleet`, bearer(token))).statusCode, 403, 'but does not write');

    // Wrong sub: signed with reader's key but claiming another account; wrong audience; too long.
    assert.equal((await call('GET', `${LOC}/registries/fleet`, bearer(await signServiceJwt(k.priv, { project: 'demo', account: 'other' })))).statusCode, 401);
    assert.equal((await call('GET', `${LOC}/registries/fleet`, bearer(await signServiceJwt(k.priv, { project: 'elsewhere', account: 'reader' })))).statusCode, 401);
    const expired = await signServiceJwt(k.priv, { project: 'demo', account: 'reader', lifetimeSeconds: 60, now: new Date(Date.now() - 7200_000) });
    assert.equal((await call('GET', `${LOC}/registries/fleet`, bearer(expired))).statusCode, 401);

    assert.equal((await call('PATCH', `${SA}/reader?updateMask=disabled`, ADMIN, { disabled: true })).statusCode, 200);
    assert.equal((await call('GET', `${LOC}/registries/fleet`, bearer(token))).statusCode, 401, 'a disabled account');
    assert.equal((await call('PATCH', `${SA}/reader?updateMask=disabled`, ADMIN, { disabled: false })).statusCode, 200);
    assert.equal((await call('GET', `${LOC}/registries/fleet`, bearer(token))).statusCode, 200);
    assert.equal((await call('DELETE', `${SA}/reader/publicKeys/${added.keyId}`, ADMIN)).statusCode, 200);
    assert.equal((await call('GET', `${LOC}/registries/fleet`, bearer(token))).statusCode, 401, 'a removed key');
  });
});
