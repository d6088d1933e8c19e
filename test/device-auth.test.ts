/**
 * Every way a device token can be wrong gets CONNACK 5 and nothing else: the raw bytes the
 * server sends before closing are exactly one CONNACK with return code 5.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { deviceKeys, devicePath, nowSeconds, rawConnect, signJwt, validToken, type DeviceKeys } from './support/devices.js';
import { PROJECT, REGION, createDevice, createRegistry, devicePathUrl } from './support/fixtures.js';

const REGISTRY = 'auth';
const NOT_AUTHORISED = Buffer.from([0x20, 0x02, 0x00, 0x05]);
const ACCEPTED = Buffer.from([0x20, 0x02, 0x00, 0x00]);

describe('device authentication', () => {
  let ts: TestServer;
  let es: DeviceKeys;
  let rsa: DeviceKeys;
  let other: DeviceKeys;
  const path = (id: string): string => devicePath(PROJECT, REGION, REGISTRY, id);

  before(async () => {
    ts = await startTestServer();
    await createRegistry(ts, REGISTRY);
    es = deviceKeys('es256');
    rsa = deviceKeys('rs256');
    other = deviceKeys('es256');
    await createDevice(ts, REGISTRY, 'es-dev', es);
    await createDevice(ts, REGISTRY, 'rsa-dev', rsa);
    await createDevice(ts, REGISTRY, 'other-dev', other);
    const expired = deviceKeys('es256');
    await createDevice(ts, REGISTRY, 'expired-cred-dev', [], {
      credentials: [{ ...expired.credential, expirationTime: new Date(Date.now() - 60_000).toISOString() }],
    });
    const blocked = deviceKeys('es256');
    await createDevice(ts, REGISTRY, 'blocked-dev', blocked, { blocked: true });
    keysById.set('expired-cred-dev', expired);
    keysById.set('blocked-dev', blocked);
  });
  after(() => ts.close());
  const keysById = new Map<string, DeviceKeys>();

  const expectRefused = async (clientId: string, password: string | undefined): Promise<void> => {
    const bytes = await rawConnect(ts.mqttPort, ts.ca, clientId, password);
    assert.deepEqual([...bytes], [...NOT_AUTHORISED]);
  };

  test('a valid ES256 token, and a valid RS256 token, are accepted (and by numeric id)', async () => {
    assert.deepEqual([...(await rawConnect(ts.mqttPort, ts.ca, path('es-dev'), validToken(es, PROJECT)))].slice(0, 4), [...ACCEPTED]);
    assert.deepEqual([...(await rawConnect(ts.mqttPort, ts.ca, path('rsa-dev'), validToken(rsa, PROJECT)))].slice(0, 4), [...ACCEPTED]);
    const numId = (await ts.api('GET', devicePathUrl(REGISTRY, 'es-dev'))).body.numId as string;
    assert.deepEqual([...(await rawConnect(ts.mqttPort, ts.ca, path(numId), validToken(es, PROJECT)))].slice(0, 4), [...ACCEPTED]);
  });

  const iat = nowSeconds;
  const cases: Array<[string, () => [string, string | undefined]]> = [
    ['alg none', () => [path('es-dev'), signJwt(es, { iat: iat(), exp: iat() + 600, aud: PROJECT }, 'none')]],
    ['HS256 signed with the public key as secret', () => [path('es-dev'), signJwt(es, { iat: iat(), exp: iat() + 600, aud: PROJECT }, 'HS256')]],
    ['RS256 header on an ES256 key', () => [path('es-dev'), signJwt(rsa, { iat: iat(), exp: iat() + 600, aud: PROJECT }, 'RS256')]],
    ['expired beyond the skew', () => [path('es-dev'), signJwt(es, { iat: iat() - 7200, exp: iat() - 3600, aud: PROJECT })]],
    ['iat in the future beyond the skew', () => [path('es-dev'), signJwt(es, { iat: iat() + 1200, exp: iat() + 3600, aud: PROJECT })]],
    ['lifetime over 24 h', () => [path('es-dev'), signJwt(es, { iat: iat(), exp: iat() + 86_400 + 120, aud: PROJECT })]],
    ['wrong audience', () => [path('es-dev'), signJwt(es, { iat: iat(), exp: iat() + 600, aud: 'someone-else' })]],
    ['missing exp', () => [path('es-dev'), signJwt(es, { iat: iat(), aud: PROJECT })]],
    ['missing iat', () => [path('es-dev'), signJwt(es, { exp: iat() + 600, aud: PROJECT })]],
    ['missing aud', () => [path('es-dev'), signJwt(es, { iat: iat(), exp: iat() + 600 })]],
    ["another device's key", () => [path('es-dev'), validToken(other, PROJECT)]],
    ['a credential past its expirationTime', () => [path('expired-cred-dev'), validToken(keysById.get('expired-cred-dev')!, PROJECT)]],
    ['a blocked device', () => [path('blocked-dev'), validToken(keysById.get('blocked-dev')!, PROJECT)]],
    ['a malformed token', () => [path('es-dev'), 'not.a.jwt']],
    ['garbage base64 segments', () => [path('es-dev'), '@@@.###.$$$']],
    ['no password', () => [path('es-dev'), undefined]],
    ['an unknown device', () => [path('nobody'), validToken(es, PROJECT)]],
    ['an unknown registry', () => [devicePath(PROJECT, REGION, 'nowhere', 'es-dev'), validToken(es, PROJECT)]],
    ['another project', () => [devicePath('other', REGION, REGISTRY, 'es-dev'), validToken(es, 'other')]],
    ['a client id that is not a device path', () => ['es-dev', validToken(es, PROJECT)]],
    ['the admin token presented as a device', () => [path('es-dev'), ts.adminToken]],
  ];
  for (const [name, make] of cases) {
    test(`refused with CONNACK 5 and nothing else: ${name}`, async () => {
      const [clientId, password] = make();
      await expectRefused(clientId, password);
    });
  }

  test('a token signed within the clock skew is accepted', async () => {
    const token = signJwt(es, { iat: iat() + 300, exp: iat() + 900, aud: PROJECT });
    assert.deepEqual([...(await rawConnect(ts.mqttPort, ts.ca, path('es-dev'), token))].slice(0, 4), [...ACCEPTED]);
  });

  test("a backend needs its service account's exact API key; the admin token is no MQTT login", async () => {
    const login = await ts.backend(PROJECT);
    const backend = async (password: string, username = login.username): Promise<Buffer> => {
      const { connect } = await import('node:tls');
      const mqttPacket = (await import('mqtt-packet')).default;
      return new Promise((resolve) => {
        const s = connect({ host: '127.0.0.1', port: ts.mqttPort, servername: 'localhost', ca: [ts.ca] }, () =>
          s.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'backend', keepalive: 60, username, password: Buffer.from(password) })),
        );
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => {
          chunks.push(c);
          if (Buffer.concat(chunks).length >= 4) s.end();
        });
        s.on('close', () => resolve(Buffer.concat(chunks)));
      });
    };
    assert.deepEqual([...(await backend(login.password))].slice(0, 4), [...ACCEPTED]);
    assert.deepEqual([...(await backend(`${login.password}x`))], [...NOT_AUTHORISED]);
    assert.deepEqual([...(await backend(''))], [...NOT_AUTHORISED]);
    assert.deepEqual([...(await backend(ts.adminToken, 'admin'))], [...NOT_AUTHORISED]);
    assert.deepEqual([...(await backend(ts.adminToken))], [...NOT_AUTHORISED]);
  });
});
