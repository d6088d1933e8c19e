/**
 * Backends logging in with a JWT signed by a key registered on their service account: accepted
 * like an API key, refused when any rule is broken, and cut off within a second when the key is
 * removed or the account disabled, and when the key expires.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { BOOTSTRAP_ADMIN } from '../domain/roles.js';
import { signServiceJwt } from '../identity/service-jwt.js';
import { LOCATION, PROJECT, REGISTRY, addDevice, closed, connectDevice, eventually, inbox, keyPair, mqttConnect, refusedWith, startBroker, type Harness } from './broker-harness.test.js';

describe('backend logins with service-account JWTs', () => {
  let h: Harness;
  const clients: MqttClient[] = [];
  const track = (c: MqttClient): MqttClient => {
    clients.push(c);
    return c;
  };
  let n = 0;
  const scope = { kind: 'registry', project: PROJECT, location: LOCATION, registry: REGISTRY } as const;

  before(async () => {
    h = await startBroker();
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await h.close();
  });

  /** An account reaching REGISTRY with one public key (`pair`, by default a fresh P-256 key). */
  async function account(pair = keyPair(), expiresAt?: Date) {
    const id = `jwt-${++n}`;
    await h.accounts.create(PROJECT, id, { bindings: [{ role: 'viewer', scope }] }, BOOTSTRAP_ADMIN);
    const key = await h.accounts.addPublicKey(PROJECT, id, { format: pair.format, key: pair.publicPem, ...(expiresAt ? { expiresAt } : {}) });
    const token = (o: { project?: string; account?: string; lifetimeSeconds?: number; now?: Date } = {}) =>
      signServiceJwt(pair.privatePem, { project: o.project ?? PROJECT, account: o.account ?? id, ...o });
    return { id, user: `${PROJECT}/${id}`, keyId: key.keyId, pair, token };
  }
  const login = (user: string, password: string, extra: Record<string, unknown> = {}) =>
    mqttConnect(h.port, { clientId: `jb-${++n}`, username: user, password, ...extra });

  test('a signed token logs a backend in, and it receives its registry’s events', async () => {
    const a = await account(keyPair('rs256'));
    const backend = track(await login(a.user, await a.token({ lifetimeSeconds: 1800 })));
    const got = inbox(backend);
    await backend.subscribeAsync(`registries/${REGISTRY}/devices/+/events/#`, { qos: 1 });
    const d = await addDevice(h, 'jwt-probe');
    const dev = track(await connectDevice(h, d));
    await dev.publishAsync('/devices/jwt-probe/events', 'hello', { qos: 1 });
    await eventually(() => assert.equal(got.length, 1, 'the event arrives'));
  });

  test('refuses wrong audience, wrong sub, expired, too long, alg none, HS256 with the public key, and A’s token as B', async () => {
    const a = await account();
    const nowS = Math.floor(Date.now() / 1000);
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const claims = { aud: PROJECT, sub: a.id, iat: nowS, exp: nowS + 600 };
    const hsInput = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
    const cases: Array<[string, string, string]> = [
      ['wrong audience', a.user, await a.token({ project: 'globex' })],
      ['wrong sub', a.user, await a.token({ account: 'someone-else' })],
      ['expired', a.user, await a.token({ lifetimeSeconds: 60, now: new Date(Date.now() - 3600_000) })],
      ['lifetime too long', a.user, await tooLong(a.pair.privatePem, a.id)],
      ['alg none', a.user, `${b64({ alg: 'none' })}.${b64(claims)}.AAAA`],
      ['HS256 with the public key as secret', a.user, `${hsInput}.${createHmac('sha256', a.pair.publicPem).update(hsInput).digest('base64url')}`],
    ];
    // Account B holds A's very key: only the `sub` claim binds a token to its account.
    const b = await account(a.pair);
    cases.push(['A’s token with B’s user name', b.user, await a.token()]);
    cases.push(['B’s token with A’s user name', a.user, await b.token()]);
    for (const [what, user, token] of cases) await assert.rejects(login(user, token), refusedWith(5), what);
    await assert.rejects(login(b.user, await a.token(), { protocolVersion: 5 }), refusedWith(0x86), 'MQTT 5: bad user name or password');
    track(await login(a.user, await a.token()));
  });

  test('a removed key and a disabled account are refused', async () => {
    const a = await account();
    await h.accounts.removePublicKey(PROJECT, a.id, a.keyId);
    await assert.rejects(login(a.user, await a.token()), refusedWith(5), 'a removed key');
    const d = await account();
    await h.accounts.update(PROJECT, d.id, { disabled: true }, BOOTSTRAP_ADMIN);
    await assert.rejects(login(d.user, await d.token()), refusedWith(5), 'a disabled account');
  });

  for (const [what, change] of [
    ['its public key is removed', (a: { id: string; keyId: string }) => h.accounts.removePublicKey(PROJECT, a.id, a.keyId)],
    ['the account is disabled', async (a: { id: string }) => void (await h.accounts.update(PROJECT, a.id, { disabled: true }, BOOTSTRAP_ADMIN))],
  ] as const) {
    test(`a live JWT connection ends within a second when ${what}`, async () => {
      const a = await account();
      const backend = track(await login(a.user, await a.token()));
      const started = Date.now();
      await change(a);
      await closed(backend, 1000);
      assert.ok(Date.now() - started < 1000);
    });
  }

  test('the connection ends when the key it logged in with expires', async () => {
    const a = await account(keyPair(), new Date(Date.now() + 1500));
    const backend = track(await login(a.user, await a.token()));
    assert.equal(backend.connected, true);
    await closed(backend, 3000);
  });
});

/** A correctly signed token valid for more than the 1-hour maximum. */
async function tooLong(privatePem: string, account: string): Promise<string> {
  const { SignJWT } = await import('jose');
  const { createPrivateKey } = await import('node:crypto');
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: account }).setProtectedHeader({ alg: 'ES256' }).setIssuedAt(iat).setExpirationTime(iat + 3601).setAudience(PROJECT).sign(createPrivateKey(privatePem));
}
