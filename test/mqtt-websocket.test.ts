/**
 * MQTT over secure WebSockets on the real server: `wss://…:{http port}/mqtt` beside the HTTPS
 * bridge on the device HTTPS listener. A device and a backend over WebSockets, traffic across
 * protocols (MQTT/TLS, HTTPS, WebSockets), and a shutdown that does not wait for WebSocket clients.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import { startTestServer, type TestServer } from './support/server.js';
import { connectClient, connectWebSocketClient, deviceKeys, devicePath, validToken, type DeviceKeys } from './support/devices.js';
import { DeviceHttp } from './support/device-http.js';
import { PROJECT, REGION, createDevice, createRegistry, eventually } from './support/fixtures.js';

const REGISTRY = 'wss-fleet';

const wssConnect = (ts: TestServer, options: IClientOptions): Promise<MqttClient> => connectWebSocketClient(ts.server.httpPort, ts.ca, options);

/** Every message a client receives, as `topic payload`. */
function received(client: MqttClient): string[] {
  const got: string[] = [];
  client.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`));
  return got;
}

describe('MQTT over WebSockets on the device HTTPS listener', () => {
  let ts: TestServer;
  const keys = new Map<string, DeviceKeys>();
  const clients: MqttClient[] = [];

  before(async () => {
    ts = await startTestServer();
    await createRegistry(ts, REGISTRY);
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await ts.close();
  });

  async function device(id: string): Promise<{ clientId: string; token: string }> {
    const k = deviceKeys('es256');
    keys.set(id, k);
    await createDevice(ts, REGISTRY, id, k);
    return { clientId: devicePath(PROJECT, REGION, REGISTRY, id), token: validToken(k, PROJECT) };
  }

  async function wssBackend(filter: string): Promise<string[]> {
    const backend = await wssConnect(ts, { clientId: `wss-backend-${clients.length}`, ...(await ts.backend(PROJECT)) });
    clients.push(backend);
    const got = received(backend);
    const granted = await backend.subscribeAsync(filter, { qos: 1 });
    assert.equal(granted[0]?.qos, 1, 'subscribed');
    return got;
  }

  test('a device over WebSockets publishes; a backend over MQTT/TLS receives', async () => {
    const d = await device('wss-dev-1');
    const backend = await connectClient(ts.mqttPort, ts.ca, { clientId: 'tls-backend', ...(await ts.backend(PROJECT)) });
    clients.push(backend);
    const got = received(backend);
    await backend.subscribeAsync(`registries/${REGISTRY}/devices/wss-dev-1/events/#`, { qos: 1 });
    const dev = await wssConnect(ts, { clientId: d.clientId, username: 'unused', password: d.token });
    clients.push(dev);
    await dev.publishAsync('/devices/wss-dev-1/events/a', 'over websockets', { qos: 1 });
    await eventually(() => assert.deepEqual(got, [`registries/${REGISTRY}/devices/wss-dev-1/events/a over websockets`], 'received'));
    // The audit log says which way it came in.
    const login = await eventually(async () => {
      const res = await ts.api('GET', `/v1/audit/entries?kind=device.authenticate&actor=${encodeURIComponent(d.clientId)}`);
      const entry = (res.body.entries ?? [])[0] as { details?: { transport?: string } } | undefined;
      assert.ok(entry, 'the login is audited');
      return entry;
    });
    assert.equal(login.details?.transport, 'websocket');
  });

  test('a backend over WebSockets receives events sent over MQTT/TLS and over the HTTPS bridge', async () => {
    const d = await device('wss-dev-2');
    const got = await wssBackend(`registries/${REGISTRY}/devices/wss-dev-2/events/#`);
    const dev = await connectClient(ts.mqttPort, ts.ca, { clientId: d.clientId, username: 'unused', password: d.token });
    clients.push(dev);
    await dev.publishAsync('/devices/wss-dev-2/events', 'over mqtt', { qos: 1 });
    const http = new DeviceHttp(ts.server.httpPort, ts.ca);
    const res = await http.call('POST', `${d.clientId}:publishEvent`, d.token, { binaryData: Buffer.from('over https').toString('base64') });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await eventually(() =>
      assert.deepEqual(
        [...got].sort(),
        [`registries/${REGISTRY}/devices/wss-dev-2/events over https`, `registries/${REGISTRY}/devices/wss-dev-2/events over mqtt`],
        'both received',
      ),
    );
  });

  test('the HTTPS bridge still answers beside the WebSockets, and other upgrade paths get 404', async () => {
    const http = new DeviceHttp(ts.server.httpPort, ts.ca);
    const res = await http.call('GET', 'nothing-here', undefined);
    assert.equal(res.status, 404);
    await assert.rejects(wssConnect(ts, { clientId: 'x', path: '/ws' }), 'no MQTT on another path');
  });
});

describe('shutting down with WebSocket clients connected', () => {
  test('the server stops, and the WebSocket client is disconnected (MQTT 5: 0x8B)', async () => {
    const ts = await startTestServer();
    await createRegistry(ts, REGISTRY);
    const client = await wssConnect(ts, { clientId: 'wss-shutdown', ...(await ts.backend(PROJECT)) });
    const disconnect = new Promise<number | undefined>((resolve) => client.once('disconnect', (p) => resolve(p.reasonCode)));
    const gone = new Promise<void>((resolve) => client.once('close', () => resolve()));
    await ts.close();
    assert.equal(await disconnect, 0x8b, 'server shutting down');
    await gone;
  });
});
