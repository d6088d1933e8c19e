/** A device touches only its own topics: anything else ends its connection. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { startTestServer, type TestServer } from './support/server.js';
import { closed, connectClient, deviceKeys, devicePath, validToken, type DeviceKeys } from './support/devices.js';
import { PROJECT, REGION, createDevice, createRegistry, devicePathUrl } from './support/fixtures.js';

const REGISTRY = 'topics';

describe('topic rules', () => {
  let ts: TestServer;
  let keys: DeviceKeys;
  const clients: MqttClient[] = [];
  before(async () => {
    ts = await startTestServer();
    // Each rule is tried on a fresh connection of the same device: more than a real one makes.
    await createRegistry(ts, REGISTRY, { rateLimits: { connectionsPerSecond: 100 } });
    keys = deviceKeys('es256');
    await createDevice(ts, REGISTRY, 'mine', keys);
    await createDevice(ts, REGISTRY, 'victim', deviceKeys('es256'));
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await ts.close();
  });

  const connectMe = async (): Promise<MqttClient> => {
    const c = await connectClient(ts.mqttPort, ts.ca, { clientId: devicePath(PROJECT, REGION, REGISTRY, 'mine'), username: 'unused', password: validToken(keys, PROJECT) });
    clients.push(c);
    return c;
  };

  test("publishing to another device's topic closes the connection and nothing reaches the backend", async () => {
    const backend = await connectClient(ts.mqttPort, ts.ca, { clientId: 'watcher', ...(await ts.backend(PROJECT)) });
    clients.push(backend);
    await backend.subscribeAsync(`registries/${REGISTRY}/devices/#`, { qos: 1 });
    const seen: string[] = [];
    backend.on('message', (t) => seen.push(t));

    const c = await connectMe();
    const gone = closed(c);
    c.publish('/devices/victim/events', 'spoofed', { qos: 1 });
    await gone;
    const c2 = await connectMe();
    const gone2 = closed(c2);
    c2.publish('/devices/victim/state', 'spoofed', { qos: 0 });
    await gone2;
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(seen, []);
    const victim = await ts.api('GET', devicePathUrl(REGISTRY, 'victim'));
    assert.equal(victim.body.lastEventTime, undefined);
    assert.equal(victim.body.state, undefined);
  });

  for (const filter of ['#', '/devices/victim/config', '/devices/+/commands/#', 'registries/topics/devices/#', '$SYS/#']) {
    test(`subscribing to ${filter} closes the connection`, async () => {
      const c = await connectMe();
      const gone = closed(c);
      c.subscribe(filter, { qos: 0 });
      await gone;
    });
  }

  for (const [name, topic, opts] of [
    ['QoS 2 publish', '/devices/mine/events', { qos: 2 }],
    ['an arbitrary topic', 'some/topic', { qos: 0 }],
    ['a topic without the leading slash', 'devices/mine/events', { qos: 0 }],
    ['state with a subfolder', '/devices/mine/state/x', { qos: 0 }],
  ] as const) {
    test(`${name} closes the connection`, async () => {
      const c = await connectMe();
      const gone = closed(c);
      c.publish(topic, 'x', opts);
      await gone;
    });
  }

  test('oversized payloads close the connection: events over 256 KB, state over 64 KB', async () => {
    let c = await connectMe();
    let gone = closed(c);
    c.publish('/devices/mine/state', Buffer.alloc(64 * 1024 + 1), { qos: 1 });
    await gone;
    c = await connectMe();
    gone = closed(c);
    c.publish('/devices/mine/events', Buffer.alloc(256 * 1024 + 1), { qos: 1 });
    await gone;
    // At the limit is fine.
    c = await connectMe();
    await c.publishAsync('/devices/mine/state', Buffer.alloc(64 * 1024), { qos: 1 });
    await c.publishAsync('/devices/mine/events', Buffer.alloc(256 * 1024), { qos: 1 });
    assert.equal(c.connected, true);
  });

  test('a backend subscriber may not subscribe to everything nor publish', async () => {
    const b = await connectClient(ts.mqttPort, ts.ca, { clientId: 'nosy', ...(await ts.backend(PROJECT)) });
    clients.push(b);
    // mqtt.js rejects a SUBACK that refuses any filter; the packet says what was granted.
    const refused = await b.subscribeAsync(['#', '/devices/mine/config'], { qos: 1 }).then(
      () => assert.fail('subscription granted'),
      (e: { packet?: { granted?: number[] } }) => e.packet?.granted,
    );
    assert.deepEqual(refused, [128, 128]);
    assert.equal(b.connected, true);
    const gone = closed(b);
    b.publish('/devices/mine/commands', 'x', { qos: 0 });
    await gone;
  });
});
