/**
 * End to end over real TLS: devices use the HTTP bridge as Google's sample clients do
 * (snake_case bodies, URL-safe or standard base64, `local_version`), their data reaches backend
 * MQTT subscribers and the admin API, and every refusal is the google.rpc envelope with the
 * status the table in the README promises — without telling a stranger which devices exist.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { MqttClient } from 'mqtt';
import { startTestServer, type TestServer } from './support/server.js';
import { connectClient, deviceKeys, devicePath, nowSeconds, signJwt, validToken, type DeviceKeys } from './support/devices.js';
import { PROJECT, REGION, createDevice, createRegistry, devicePathUrl, eventually, registryPath } from './support/fixtures.js';
import { DeviceHttp, urlsafeB64, type DeviceHttpResponse } from './support/device-http.js';

const REGISTRY = 'fleet';

function assertEnvelope(r: DeviceHttpResponse, httpStatus: number, status: string, message?: RegExp): void {
  assert.equal(r.status, httpStatus, JSON.stringify(r.body));
  assert.equal(r.headers['content-type']?.toString().startsWith('application/json'), true, 'a JSON body');
  assert.equal(r.body?.error?.code, httpStatus, JSON.stringify(r.body));
  assert.equal(r.body?.error?.status, status, JSON.stringify(r.body));
  if (message) assert.match(r.body.error.message, message);
}

function nextMessage(client: MqttClient, filter: (topic: string) => boolean = () => true): Promise<{ topic: string; payload: Buffer; userProperties: Record<string, unknown> }> {
  return new Promise((resolve) => {
    const on = (topic: string, payload: Buffer, packet: { properties?: { userProperties?: Record<string, unknown> } }): void => {
      if (!filter(topic)) return;
      client.off('message', on);
      resolve({ topic, payload, userProperties: packet.properties?.userProperties ?? {} });
    };
    client.on('message', on);
  });
}

describe('device HTTP bridge', () => {
  let ts: TestServer;
  let http: DeviceHttp;
  const clients: MqttClient[] = [];
  const path = (device: string, registry = REGISTRY): string => devicePath(PROJECT, REGION, registry, device);

  before(async () => {
    ts = await startTestServer();
    http = new DeviceHttp(ts.server.httpPort, ts.ca);
    await createRegistry(ts, REGISTRY);
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await ts.close();
  });

  async function device(id: string, registry = REGISTRY, body: Record<string, unknown> = {}): Promise<{ keys: DeviceKeys; token: string; numId: string }> {
    const keys = deviceKeys('es256');
    const created = await createDevice(ts, registry, id, keys, body);
    return { keys, token: validToken(keys, PROJECT), numId: created.numId as string };
  }

  async function backend(filter: string): Promise<MqttClient> {
    const client = await connectClient(ts.mqttPort, ts.ca, { clientId: `backend-${clients.length}`, protocolVersion: 5, ...(await ts.backend(PROJECT)) });
    clients.push(client);
    const granted = await client.subscribeAsync(filter, { qos: 1 });
    assert.equal(granted[0]?.qos, 1);
    return client;
  }

  test('events sent as the Python sample sends them reach backend subscribers, with the device attributes', async () => {
    const { token, numId } = await device('py-dev');
    const sub = await backend(`registries/${REGISTRY}/devices/py-dev/#`);
    const payload = Buffer.from([0xfb, 0xff, 0xbf, 0x00, 0x41]);

    let got = nextMessage(sub);
    const r = await http.publishEvent(path('py-dev'), token, { binary_data: urlsafeB64(payload) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, {});
    let m = await got;
    assert.equal(m.topic, `registries/${REGISTRY}/devices/py-dev/events`);
    assert.deepEqual(m.payload, payload);
    assert.deepEqual({ ...m.userProperties }, {
      deviceId: 'py-dev',
      deviceNumId: numId,
      deviceRegistryId: REGISTRY,
      deviceRegistryLocation: REGION,
      projectId: PROJECT,
    });

    // The Node sample's camelCase-free standard base64, a subfolder, and the path ending in the numeric id.
    got = nextMessage(sub);
    const sent = await http.publishEvent(path(numId), token, { binaryData: payload.toString('base64'), subFolder: 'alerts/high' });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    m = await got;
    assert.equal(m.topic, `registries/${REGISTRY}/devices/py-dev/events/alerts/high`);
    assert.deepEqual(m.payload, payload);
    assert.equal(m.userProperties.subFolder, 'alerts/high');

    await eventually(async () => {
      const d = await ts.api('GET', devicePathUrl(REGISTRY, 'py-dev'));
      assert.ok(d.body.lastEventTime, 'lastEventTime is set');
    });
  });

  test('state set over HTTP is stored, shown by the admin API and published to backends', async () => {
    const { token } = await device('state-dev');
    const sub = await backend(`registries/${REGISTRY}/devices/state-dev/state`);
    const got = nextMessage(sub);
    const r = await http.setState(path('state-dev'), token, { state: { binary_data: urlsafeB64('{"on":true}') } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, {});
    assert.equal((await got).payload.toString(), '{"on":true}');
    const states = await ts.api('GET', `${devicePathUrl(REGISTRY, 'state-dev')}/states`);
    assert.equal(Buffer.from(states.body.deviceStates[0].binaryData, 'base64').toString(), '{"on":true}');
  });

  test('config: local_version 0 gets the current one, an older one gets the data, the current one only the version, a newer one OUT_OF_RANGE', async () => {
    const { token } = await device('cfg-dev');
    const url = devicePathUrl(REGISTRY, 'cfg-dev');
    const modified = await ts.api('POST', `${url}:modifyCloudToDeviceConfig`, { binaryData: Buffer.from('v2').toString('base64') });
    assert.equal(modified.status, 200, JSON.stringify(modified.body));

    const current = await http.getConfig(path('cfg-dev'), token, 'local_version=0');
    assert.equal(current.status, 200, JSON.stringify(current.body));
    assert.deepEqual(current.body, { version: '2', binaryData: Buffer.from('v2').toString('base64') });
    assert.deepEqual((await http.getConfig(path('cfg-dev'), token, 'localVersion=1')).body, current.body, 'an older version gets the data');
    assert.deepEqual((await http.getConfig(path('cfg-dev'), token, '')).body, current.body, 'no version is 0');
    assert.deepEqual((await http.getConfig(path('cfg-dev'), token, 'local_version=2')).body, { version: '2' }, 'nothing newer: no data');
    assertEnvelope(await http.getConfig(path('cfg-dev'), token, 'local_version=3'), 400, 'OUT_OF_RANGE');
    assertEnvelope(await http.getConfig(path('cfg-dev'), token, 'local_version=abc'), 400, 'INVALID_ARGUMENT', /'local_version' \(TYPE_INT64\)/);
    assertEnvelope(await http.getConfig(path('cfg-dev'), token, 'local_version=0&fields=x'), 400, 'INVALID_ARGUMENT', /Unknown name "fields"/);

    await eventually(async () => {
      const d = await ts.api('GET', url);
      assert.ok(d.body.lastConfigSendTime, 'sending the data over HTTP sets lastConfigSendTime');
      assert.equal(d.body.lastConfigAckTime, undefined, 'HTTP has no acknowledgment');
    });
  });

  test('a device using HTTP and MQTT in turn sees one state and one config', async () => {
    const { keys, token } = await device('both-dev');
    const url = devicePathUrl(REGISTRY, 'both-dev');
    const mqttDev = await connectClient(ts.mqttPort, ts.ca, { clientId: path('both-dev'), username: 'unused', password: validToken(keys, PROJECT) });
    clients.push(mqttDev);
    const configs: Buffer[] = [];
    mqttDev.on('message', (topic, payload) => {
      if (topic === '/devices/both-dev/config') configs.push(payload);
    });
    await mqttDev.subscribeAsync('/devices/both-dev/config', { qos: 1 });

    await ts.api('POST', `${url}:modifyCloudToDeviceConfig`, { binaryData: Buffer.from('from admin').toString('base64') });
    await eventually(() => assert.equal(configs.at(-1)?.toString(), 'from admin', 'MQTT got the new config'));
    const overHttp = await http.getConfig(path('both-dev'), token);
    assert.deepEqual(overHttp.body, { version: '2', binaryData: Buffer.from('from admin').toString('base64') });

    await mqttDev.publishAsync('/devices/both-dev/state', 'state over mqtt', { qos: 1 });
    const r = await http.setState(path('both-dev'), token, { state: { binaryData: Buffer.from('state over http').toString('base64') } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const states = await ts.api('GET', `${url}/states`);
    assert.deepEqual(
      states.body.deviceStates.map((s: { binaryData: string }) => Buffer.from(s.binaryData, 'base64').toString()),
      ['state over http', 'state over mqtt'],
    );
    const shown = await ts.api('GET', url);
    assert.equal(Buffer.from(shown.body.state.binaryData, 'base64').toString(), 'state over http');
  });

  describe('authentication', () => {
    let token: string;
    let keys: DeviceKeys;
    const stranger = deviceKeys('es256');
    before(async () => {
      ({ token, keys } = await device('auth-dev'));
    });

    test('a missing or bad token, an unknown device or registry are the same 401, and are audited', async () => {
      const body = { binary_data: urlsafeB64('x') };
      const iat = nowSeconds();
      const cases: Array<[string, string, string | undefined, Record<string, string | null>?]> = [
        ['no header', path('auth-dev'), undefined],
        ['not Bearer', path('auth-dev'), undefined, { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
        ['garbage', path('auth-dev'), 'not.a.jwt'],
        ['another key', path('auth-dev'), validToken(stranger, PROJECT)],
        ['another project', path('auth-dev'), validToken(keys, 'other-project')],
        ['expired', path('auth-dev'), signJwt(keys, { iat: iat - 7200, exp: iat - 3600, aud: PROJECT })],
        ['alg none', path('auth-dev'), signJwt(keys, { iat, exp: iat + 600, aud: PROJECT }, 'none')],
        ['HS256 with the public key', path('auth-dev'), signJwt(keys, { iat, exp: iat + 600, aud: PROJECT }, 'HS256')],
        ['unknown device', path('no-such-device'), token],
        ['unknown registry', path('auth-dev', 'no-such-registry'), token],
      ];
      const bodies = new Set<string>();
      for (const [what, devicePathText, t, headers] of cases) {
        const r = await http.publishEvent(devicePathText, t, body, headers ? { headers } : {});
        assertEnvelope(r, 401, 'UNAUTHENTICATED');
        assert.equal(r.headers['www-authenticate'], 'Bearer', what);
        bodies.add(JSON.stringify(r.body));
      }
      assert.equal(bodies.size, 1, 'every 401 reads the same');
      for (const r of [await http.setState(path('no-such-device'), token, { state: {} }), await http.getConfig(path('no-such-device'), token)]) {
        assertEnvelope(r, 401, 'UNAUTHENTICATED');
      }
      await eventually(async () => {
        const q = new URLSearchParams({ kind: 'device.authenticate', outcome: 'denied', actor: path('auth-dev') });
        const entries = (await ts.api('GET', `/v1/audit/entries?${q}`)).body.entries ?? [];
        const reasons = entries.map((e: { reason?: string }) => e.reason ?? '').join('\n');
        assert.match(reasons, /no Authorization header/, 'the missing header is audited');
        assert.match(reasons, /token refused/, 'the bad token is audited');
        assert.equal(entries[0]?.details?.protocol, 'http', 'as an HTTP request');
      });
    });

    test('a blocked device is told so (403) once its token verified; a stranger still gets 401', async () => {
      const blocked = await device('blocked-dev');
      await ts.api('PATCH', `${devicePathUrl(REGISTRY, 'blocked-dev')}?updateMask=blocked`, { blocked: true });
      assertEnvelope(await http.publishEvent(path('blocked-dev'), blocked.token, {}), 403, 'PERMISSION_DENIED', /blocked/);
      assertEnvelope(await http.getConfig(path('blocked-dev'), blocked.token), 403, 'PERMISSION_DENIED');
      assertEnvelope(await http.publishEvent(path('blocked-dev'), validToken(stranger, PROJECT), {}), 401, 'UNAUTHENTICATED');
      await ts.api('PATCH', `${devicePathUrl(REGISTRY, 'blocked-dev')}?updateMask=blocked`, { blocked: false });
      assert.equal((await http.publishEvent(path('blocked-dev'), blocked.token, {})).status, 200, 'unblocked');
    });

    test('a registry with HTTP disabled refuses its devices with 403; one with MQTT disabled still serves HTTP', async () => {
      await createRegistry(ts, 'no-http', { httpConfig: { httpEnabledState: 'HTTP_DISABLED' } });
      const d = await device('dev-a', 'no-http');
      assertEnvelope(await http.publishEvent(path('dev-a', 'no-http'), d.token, {}), 403, 'PERMISSION_DENIED', /HTTP is disabled/);
      assertEnvelope(await http.publishEvent(path('dev-a', 'no-http'), validToken(stranger, PROJECT), {}), 401, 'UNAUTHENTICATED');

      await createRegistry(ts, 'no-mqtt', { mqttConfig: { mqttEnabledState: 'MQTT_DISABLED' } });
      const e = await device('dev-b', 'no-mqtt');
      assert.equal((await http.publishEvent(path('dev-b', 'no-mqtt'), e.token, {})).status, 200);
    });

    test('another device path with a valid token of this device is refused', async () => {
      const other = await device('other-dev');
      assertEnvelope(await http.publishEvent(path('other-dev'), token, {}), 401, 'UNAUTHENTICATED');
      assert.equal((await http.publishEvent(path('other-dev'), other.token, {})).status, 200);
    });
  });

  describe('requests', () => {
    let token: string;
    before(async () => {
      ({ token } = await device('req-dev'));
    });

    test('bad bodies are 400 INVALID_ARGUMENT with the field at fault', async () => {
      const p = path('req-dev');
      assertEnvelope(
        await http.publishEvent(p, token, { binary_data: 'not base64!' }),
        400,
        'INVALID_ARGUMENT',
        /^Invalid value at 'binary_data' \(TYPE_BYTES\), Base64 decoding failed/,
      );
      assertEnvelope(await http.setState(p, token, { state: { binary_data: '%%' } }), 400, 'INVALID_ARGUMENT', /'state\.binary_data' \(TYPE_BYTES\)/);
      assertEnvelope(await http.publishEvent(p, token, { binaryData: 'AA', extra: 1 }), 400, 'INVALID_ARGUMENT', /Unknown name "extra"/);
      assertEnvelope(await http.publishEvent(p, token, { binaryData: 5 }), 400, 'INVALID_ARGUMENT');
      assertEnvelope(await http.publishEvent(p, token, undefined, { raw: '{"binary_data": ' }), 400, 'INVALID_ARGUMENT');
      assertEnvelope(await http.publishEvent(p, token, undefined, { raw: '{"__proto__": {"x": 1}}' }), 400, 'INVALID_ARGUMENT');
      assertEnvelope(await http.publishEvent(p, token, { subFolder: 'a/#' }), 400, 'INVALID_ARGUMENT', /sub_folder/);
      assertEnvelope(await http.setState(p, token, {}), 400, 'INVALID_ARGUMENT', /'state'/);
    });

    test('a JSON body without a JSON content type is still read (curl -d)', async () => {
      const r = await http.publishEvent(path('req-dev'), token, undefined, {
        raw: JSON.stringify({ binary_data: urlsafeB64('x') }),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    });

    test('payloads over the limits are 413, whether the body or the decoded data is too large', async () => {
      const p = path('req-dev');
      assertEnvelope(
        await http.publishEvent(p, token, { binary_data: Buffer.alloc(256 * 1024 + 1).toString('base64') }),
        413,
        'INVALID_ARGUMENT',
        /telemetry event of 262145 bytes exceeds the limit of 262144 bytes/,
      );
      assertEnvelope(await http.setState(p, token, { state: { binary_data: Buffer.alloc(64 * 1024 + 1).toString('base64') } }), 413, 'INVALID_ARGUMENT', /state of 65537 bytes/);
      assertEnvelope(await http.publishEvent(p, token, { binary_data: Buffer.alloc(1024 * 1024).toString('base64') }), 413, 'INVALID_ARGUMENT');
      // At the limit: accepted.
      assert.equal((await http.publishEvent(p, token, { binary_data: Buffer.alloc(256 * 1024).toString('base64') })).status, 200);
    });

    test('an unknown method or path is 404 NOT_FOUND', async () => {
      assertEnvelope(await http.call('POST', `${path('req-dev')}:sendCommand`, token, {}), 404, 'NOT_FOUND');
      assertEnvelope(await http.call('GET', `${path('req-dev')}:publishEvent`, token), 404, 'NOT_FOUND');
      assertEnvelope(await http.call('GET', 'projects/demo', undefined), 404, 'NOT_FOUND');
    });

    test('state updates beyond the rate limit are 429 RESOURCE_EXHAUSTED with Retry-After', async () => {
      const { token: t } = await device('busy-dev');
      let refused: DeviceHttpResponse | undefined;
      // The default limit is 1 state per second with a burst of 3: a quick loop runs into it.
      for (let i = 0; i < 20 && !refused; i++) {
        const r = await http.setState(path('busy-dev'), t, { state: { binary_data: urlsafeB64(`s${i}`) } });
        if (r.status !== 200) refused = r;
      }
      assert.ok(refused, 'a state update was refused');
      assertEnvelope(refused, 429, 'RESOURCE_EXHAUSTED', /state update rate limit of 1 per second\. Retry after \d+ s\./);
      assert.ok(Number(refused.headers['retry-after']) >= 1, `Retry-After: ${String(refused.headers['retry-after'])}`);
      await eventually(async () => {
        const d = await ts.api('GET', devicePathUrl(REGISTRY, 'busy-dev'));
        assert.equal(d.body.lastErrorStatus?.code, 8, `lastErrorStatus is RESOURCE_EXHAUSTED: ${JSON.stringify(d.body.lastErrorStatus)}`);
      });
    });
  });

  test("a Deny in the device's policy takes its topic away over HTTP as over MQTT", async () => {
    await createRegistry(ts, 'guarded');
    const d = await device('quiet-dev', 'guarded');
    const base = `${registryPath('guarded')}/policies`;
    const document = {
      version: '2026-01-01',
      statements: [{ sid: 'no-state', effect: 'Deny', actions: ['publish'], resources: ['/devices/${device.id}/state'] }],
    };
    assert.equal((await ts.api('POST', base, { id: 'no-state', document })).status, 200);
    const attached = await ts.api('POST', `${base}/no-state:attach`, { target: { deviceId: 'quiet-dev' } });
    assert.equal(attached.status, 200, JSON.stringify(attached.body));

    const p = path('quiet-dev', 'guarded');
    assertEnvelope(await http.setState(p, d.token, { state: { binary_data: urlsafeB64('x') } }), 403, 'PERMISSION_DENIED', /publish to topic '\/devices\/quiet-dev\/state'/);
    assert.equal((await http.publishEvent(p, d.token, { binary_data: urlsafeB64('x') })).status, 200, 'events stay allowed');
    assert.equal((await http.getConfig(p, d.token)).status, 200, 'config stays allowed');
    const states = await ts.api('GET', `${devicePathUrl('guarded', 'quiet-dev')}/states`);
    assert.deepEqual(states.body.deviceStates ?? [], [], 'nothing was stored');
  });

  describe('gateways', () => {
    const gateway = (auth: string): Record<string, unknown> => ({ gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: auth } });

    test('a gateway acts for a device bound to it (delegated_device_id): the data is the device’s', async () => {
      const gw = await device('gw-assoc', REGISTRY, gateway('ASSOCIATION_ONLY'));
      await device('leaf-1');
      const bound = await ts.api('POST', `${registryPath(REGISTRY)}:bindDeviceToGateway`, { gatewayId: 'gw-assoc', deviceId: 'leaf-1' });
      assert.equal(bound.status, 200, JSON.stringify(bound.body));
      const sub = await backend(`registries/${REGISTRY}/devices/leaf-1/#`);

      const got = nextMessage(sub);
      const r = await http.publishEvent(path('gw-assoc'), gw.token, { binary_data: urlsafeB64('from leaf'), gateway_info: { delegated_device_id: 'leaf-1' } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const m = await got;
      assert.equal(m.topic, `registries/${REGISTRY}/devices/leaf-1/events`);
      assert.equal(m.userProperties.deviceId, 'leaf-1');

      const s = await http.setState(path('gw-assoc'), gw.token, { state: { binary_data: urlsafeB64('leaf state') }, gatewayInfo: { delegatedDeviceId: 'leaf-1' } });
      assert.equal(s.status, 200, JSON.stringify(s.body));
      const leaf = await ts.api('GET', devicePathUrl(REGISTRY, 'leaf-1'));
      assert.equal(Buffer.from(leaf.body.state.binaryData, 'base64').toString(), 'leaf state');
      const cfg = await http.getConfig(path('gw-assoc'), gw.token, 'local_version=0&gateway_info.delegated_device_id=leaf-1');
      assert.deepEqual(cfg.body, { version: '1', binaryData: '' });
    });

    test('a gateway may not act for a device not bound to it, a gateway, or one whose token it cannot show', async () => {
      const gw = await device('gw-strict', REGISTRY, gateway('ASSOCIATION_ONLY'));
      const tokenOnly = await device('gw-token', REGISTRY, gateway('DEVICE_AUTH_TOKEN_ONLY'));
      const plain = await device('not-a-gw');
      await device('leaf-2');
      const forLeaf = { binary_data: urlsafeB64('x'), gateway_info: { delegated_device_id: 'leaf-2' } };
      assertEnvelope(await http.publishEvent(path('gw-strict'), gw.token, forLeaf), 403, 'PERMISSION_DENIED', /may not act for device 'leaf-2'/);
      assertEnvelope(await http.publishEvent(path('gw-token'), tokenOnly.token, forLeaf), 403, 'PERMISSION_DENIED');
      assertEnvelope(await http.publishEvent(path('not-a-gw'), plain.token, forLeaf), 403, 'PERMISSION_DENIED');
      assertEnvelope(await http.publishEvent(path('gw-strict'), gw.token, { gateway_info: { delegated_device_id: 'gw-token' } }), 403, 'PERMISSION_DENIED');
      assertEnvelope(await http.publishEvent(path('gw-strict'), gw.token, { gateway_info: { delegated_device_id: 'nobody' } }), 403, 'PERMISSION_DENIED');
      assertEnvelope(await http.getConfig(path('gw-strict'), gw.token, 'gatewayInfo.delegatedDeviceId=leaf-2'), 403, 'PERMISSION_DENIED');
      await eventually(async () => {
        const q = new URLSearchParams({ kind: 'device.authorize', outcome: 'denied', actor: path('gw-strict') });
        const entries = (await ts.api('GET', `/v1/audit/entries?${q}`)).body.entries ?? [];
        assert.ok(entries.some((e: { subject?: string }) => e.subject === 'leaf-2'), `the refusal is audited: ${JSON.stringify(entries)}`);
      });
    });

    test('a device says it came through a gateway (gateway_id): only one it may use', async () => {
      await device('gw-relay', REGISTRY, gateway('DEVICE_AUTH_TOKEN_ONLY'));
      await device('gw-closed', REGISTRY, gateway('ASSOCIATION_ONLY'));
      const leaf = await device('leaf-3');
      const sub = await backend(`registries/${REGISTRY}/devices/leaf-3/#`);
      const got = nextMessage(sub);
      const r = await http.publishEvent(path('leaf-3'), leaf.token, { binary_data: urlsafeB64('relayed'), gateway_info: { gateway_id: 'gw-relay' } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal((await got).payload.toString(), 'relayed');
      assertEnvelope(await http.publishEvent(path('leaf-3'), leaf.token, { gateway_info: { gateway_id: 'gw-closed' } }), 403, 'PERMISSION_DENIED', /gateway 'gw-closed'/);
      assertEnvelope(await http.publishEvent(path('leaf-3'), leaf.token, { gateway_info: { gateway_id: 'req-dev' } }), 403, 'PERMISSION_DENIED');
      assertEnvelope(await http.getConfig(path('leaf-3'), leaf.token, 'gateway_info.gateway_id=no-such-gw'), 403, 'PERMISSION_DENIED');
      await eventually(async () => {
        const d = await ts.api('GET', devicePathUrl(REGISTRY, 'leaf-3'));
        assert.equal(d.body.gatewayConfig?.lastAccessedGatewayId, 'gw-relay', `lastAccessedGatewayId: ${JSON.stringify(d.body.gatewayConfig)}`);
      });
    });
  });

  describe('transport', () => {
    test('plain HTTP gets no HTTP response', async () => {
      const received = await new Promise<Buffer>((resolve, reject) => {
        const socket = netConnect(ts.server.httpPort, '127.0.0.1', () => {
          socket.write(`GET /v1/${path('req-dev')}/config HTTP/1.1\r\nHost: localhost\r\n\r\n`);
        });
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('close', () => resolve(Buffer.concat(chunks)));
        socket.on('error', reject);
      });
      assert.equal(received.toString('latin1').includes('HTTP/'), false, `got: ${received.toString('latin1')}`);
    });

    test('TLS 1.1 is refused, and only HTTP/1.1 is negotiated', async () => {
      await assert.rejects(
        new Promise((resolve, reject) => {
          const s = tlsConnect({ host: '127.0.0.1', port: ts.server.httpPort, ca: ts.ca, servername: 'localhost', maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, () => resolve(s));
          s.on('error', reject);
        }),
      );
      const alpn = await new Promise<string | false>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port: ts.server.httpPort, ca: ts.ca, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] }, () => {
          resolve(s.alpnProtocol ?? false);
          s.end();
        });
        s.on('error', reject);
      });
      assert.equal(alpn, 'http/1.1');
    });
  });
});
