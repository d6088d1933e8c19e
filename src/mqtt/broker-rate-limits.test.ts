/**
 * The registry's rate limits on the broker (registry/device-quotas, publish-quotas), over real
 * TLS with the real device manager. Each test has its registry set low; the limiter's clock is the
 * test's, so nothing depends on how fast the machine is. Over a limit: MQTT 5 QoS 1 gets PUBACK
 * 0x97 and stays connected, MQTT 5 QoS 0 gets DISCONNECT 0x97, MQTT 3.1.1 is disconnected; every
 * time the device's lastErrorStatus says RESOURCE_EXHAUSTED. Connections over a limit get
 * CONNACK 0x9F (MQTT 5) or 3 (MQTT 3.1.1).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IConnackPacket, IDisconnectPacket, IPubackPacket } from 'mqtt-packet';
import type { RateLimits } from '../domain/resources.js';
import { DeviceRateLimiter } from '../registry/device-quotas.js';
import { RawClient, type ProtocolVersion } from '../../test/support/raw-client.js';
import { signDeviceJwt } from '../identity/device-jwt.js';
import { errorQueue } from '../../test/support/gateway-errors.js';
import {
  PROJECT,
  addDevice,
  connectBackend,
  connectDevice,
  keyPair,
  eventually,
  inbox,
  lastError,
  pki,
  REG,
  startBroker,
  type Harness,
  type TestDevice,
} from './broker-harness.test.js';

const QUOTA_EXCEEDED = 0x97;
const CONNECTION_RATE_EXCEEDED = 0x9f;
const SERVER_UNAVAILABLE_V4 = 3;
const RESOURCE_EXHAUSTED = 8;

describe('registry rate limits on MQTT', () => {
  let h: Harness;
  /** The limiter's clock, in milliseconds: it moves only when a test moves it. */
  let now = 0;
  const clients: RawClient[] = [];
  let nextId = 1;

  before(async () => {
    h = await startBroker({}, undefined, { quotas: new DeviceRateLimiter({ clock: () => now }) });
  });
  after(async () => {
    for (const c of clients) c.end();
    await h.close();
  });

  async function registry(id: string, rateLimits: Partial<RateLimits>): Promise<string> {
    await h.service.createRegistry(REG, id, { rateLimits });
    return id;
  }

  async function open(d: TestDevice, version: ProtocolVersion): Promise<{ c: RawClient; connack: IConnackPacket }> {
    const c = await RawClient.open(h.port, pki.caCertPem, version);
    clients.push(c);
    const connack = await c.connect(d.clientId, await d.token());
    return { c, connack };
  }

  async function connected(d: TestDevice, version: ProtocolVersion): Promise<RawClient> {
    const { c, connack } = await open(d, version);
    assert.equal(version === 5 ? connack.reasonCode : connack.returnCode, 0, `${d.id} connected`);
    return c;
  }

  /** Publishes at QoS 1 and returns the PUBACK's reason code (0 when it has none). */
  async function publish1(c: RawClient, topic: string, payload: Buffer | string = 'x'): Promise<number> {
    const messageId = nextId++;
    c.send({ cmd: 'publish', topic, payload, qos: 1, dup: false, retain: false, messageId });
    const ack = (await c.next('puback')) as IPubackPacket;
    assert.equal(ack.messageId, messageId);
    return ack.reasonCode ?? 0;
  }

  function publish0(c: RawClient, topic: string, payload: Buffer | string = 'x'): void {
    c.send({ cmd: 'publish', topic, payload, qos: 0, dup: false, retain: false });
  }

  async function stillConnected(c: RawClient): Promise<void> {
    c.send({ cmd: 'pingreq' });
    await c.next('pingresp');
  }

  async function exhausted(d: TestDevice, pattern: RegExp): Promise<void> {
    const error = await lastError(h, d);
    assert.equal(error?.code, RESOURCE_EXHAUSTED, `lastErrorStatus of ${d.id}: ${JSON.stringify(error)}`);
    assert.match(error?.message ?? '', pattern);
  }

  const state = (d: TestDevice): string => `/devices/${d.id}/state`;
  const events = (d: TestDevice, sub = ''): string => `/devices/${d.id}/events${sub}`;

  test('state updates, MQTT 3.1.1: over the limit the connection closes; the count survives a reconnect; other devices are unaffected', async () => {
    const reg = await registry('states-v4', { stateUpdatesPerSecond: 1 });
    const d = await addDevice(h, 'thermostat', { registry: reg });
    const other = await addDevice(h, 'neighbour', { registry: reg });
    const c = await connected(d, 4);
    // A burst of three (a state on connect, and a couple more) passes at 1/s.
    for (let i = 0; i < 3; i++) assert.equal(await publish1(c, state(d), `s${i}`), 0);
    c.send({ cmd: 'publish', topic: state(d), payload: 'over', qos: 1, dup: false, retain: false, messageId: nextId++ });
    await c.closedWithin(5000);
    await exhausted(d, /^mqtt: The device exceeded its state update rate limit of 1 per second\.$/);
    assert.equal((await h.service.listStates(d.name)).length, 3, 'the refused state was not stored');

    const again = await connected(d, 4);
    publish0(again, state(d), 'still over');
    await again.closedWithin(5000);

    const n = await connected(other, 4);
    assert.equal(await publish1(n, state(other)), 0, 'another device of the registry has its own allowance');
    now += 1000;
    const back = await connected(d, 4);
    assert.equal(await publish1(back, state(d), 'a second later'), 0, 'one state a second later');
  });

  test('state updates, MQTT 5: QoS 1 over the limit gets PUBACK 0x97 and stays connected; QoS 0 gets DISCONNECT 0x97', async () => {
    const reg = await registry('states-v5', { stateUpdatesPerSecond: 1 });
    const d = await addDevice(h, 'valve', { registry: reg });
    const c = await connected(d, 5);
    for (let i = 0; i < 3; i++) assert.equal(await publish1(c, state(d)), 0);
    assert.equal(await publish1(c, state(d)), QUOTA_EXCEEDED);
    await stillConnected(c);
    await exhausted(d, /state update rate limit/);
    assert.equal((await h.service.listStates(d.name)).length, 3);
    publish0(c, state(d));
    const disconnect = (await c.next('disconnect')) as IDisconnectPacket;
    assert.equal(disconnect.reasonCode, QUOTA_EXCEEDED);
    await c.closedWithin(5000);
  });

  test('telemetry messages per connection: refused events are not forwarded; a new connection has its own allowance', async () => {
    const reg = await registry('chatty', { telemetryMessagesPerSecond: 2 });
    const d = await addDevice(h, 'sensor', { registry: reg });
    const backend = await connectBackend(h);
    const received = inbox(backend);
    await backend.subscribeAsync(`registries/${reg}/devices/+/events/#`, { qos: 1 });
    try {
      const c = await connected(d, 5);
      // Two seconds' worth at 2/s: a backlog after a reconnect drains.
      for (let i = 0; i < 4; i++) assert.equal(await publish1(c, events(d), `e${i}`), 0);
      assert.equal(await publish1(c, events(d), 'refused'), QUOTA_EXCEEDED);
      await exhausted(d, /telemetry rate limit of 2 messages per second/);

      const fresh = await connected(d, 5);
      assert.equal(await publish1(fresh, events(d), 'marker'), 0, 'the limit is the connection\'s');
      await eventually(() => assert.ok(received.some((m) => m.payload.toString() === 'marker'), 'the marker event reached the backend'));
      assert.deepEqual(received.map((m) => m.payload.toString()), ['e0', 'e1', 'e2', 'e3', 'marker'], 'the refused event was never forwarded');

      const v4 = await connected(d, 4);
      for (let i = 0; i < 4; i++) publish0(v4, events(d));
      publish0(v4, events(d), 'over');
      await v4.closedWithin(5000);
    } finally {
      backend.end(true);
    }
  });

  test('telemetry bytes per device: the allowance is the device\'s across connections', async () => {
    const reg = await registry('heavy', { telemetryBytesPerSecond: 1000 });
    const d = await addDevice(h, 'camera', { registry: reg });
    const other = await addDevice(h, 'camera-2', { registry: reg });
    const c = await connected(d, 5);
    assert.equal(await publish1(c, events(d), Buffer.alloc(1500)), 0, 'two seconds\' worth at 1000 B/s');
    assert.equal(await publish1(c, events(d), Buffer.alloc(1000)), QUOTA_EXCEEDED, 'only 500 bytes left');
    await exhausted(d, /telemetry throughput limit of 1000 bytes per second/);
    const again = await connected(d, 5);
    assert.equal(await publish1(again, events(d), Buffer.alloc(600)), QUOTA_EXCEEDED, 'a reconnect does not refill it');
    assert.equal(await publish1(again, events(d), Buffer.alloc(400)), 0);
    const o = await connected(other, 5);
    assert.equal(await publish1(o, events(other), Buffer.alloc(1500)), 0, 'another device has its own');
  });

  test('registry publishes per minute count every device\'s events and states; another registry is unaffected', async () => {
    const reg = await registry('busy', { registryPublishesPerMinute: 3 });
    const a = await addDevice(h, 'a-meter', { registry: reg });
    const b = await addDevice(h, 'b-meter', { registry: reg });
    const elsewhere = await addDevice(h, 'c-meter', { registry: await registry('quiet', {}) });
    const ca = await connected(a, 5);
    const cb = await connected(b, 5);
    assert.equal(await publish1(ca, events(a)), 0);
    assert.equal(await publish1(cb, state(b)), 0);
    assert.equal(await publish1(ca, events(a)), 0);
    assert.equal(await publish1(cb, events(b)), QUOTA_EXCEEDED);
    await exhausted(b, /registry exceeded its publish rate limit of 3 per minute/);
    const ce = await connected(elsewhere, 5);
    assert.equal(await publish1(ce, events(elsewhere)), 0);
    now += 20_000;
    assert.equal(await publish1(cb, events(b)), 0, 'one publish back after 20 s at 3 per minute');
  });

  test('registry connections per minute: CONNACK 0x9F (MQTT 5) or 3 (MQTT 3.1.1); another registry is unaffected', async () => {
    const reg = await registry('crowded', { registryConnectionsPerMinute: 2 });
    const devices = await Promise.all(['dev-1', 'dev-2', 'dev-3'].map((id) => addDevice(h, id, { registry: reg })));
    const [d1, d2, d3] = devices as [TestDevice, TestDevice, TestDevice];
    await connected(d1, 5);
    await connected(d2, 4);
    assert.equal((await open(d3, 5)).connack.reasonCode, CONNECTION_RATE_EXCEEDED);
    assert.equal((await open(d3, 4)).connack.returnCode, SERVER_UNAVAILABLE_V4);
    await connected(await addDevice(h, 'dev-4', { registry: await registry('roomy', {}) }), 5);
  });

  test('connections per device: a reconnect loop is refused after its burst; another device is not', async () => {
    const reg = await registry('flappy', { connectionsPerSecond: 1 });
    const d = await addDevice(h, 'looper', { registry: reg });
    const steady = await addDevice(h, 'steady', { registry: reg });
    // Ten seconds' worth at 1/s: a firmware restart or a network flap reconnects freely.
    for (let i = 0; i < 10; i++) (await connected(d, 4)).end();
    assert.equal((await open(d, 4)).connack.returnCode, SERVER_UNAVAILABLE_V4);
    assert.equal((await open(d, 5)).connack.reasonCode, CONNECTION_RATE_EXCEEDED);
    await connected(steady, 5);
    now += 1000;
    await connected(d, 5);
  });

  test('a bad token does not use up the connections of the device it names', async () => {
    const reg = await registry('guarded', { connectionsPerSecond: 1 });
    const d = await addDevice(h, 'target', { registry: reg });
    for (let i = 0; i < 12; i++) {
      const c = await RawClient.open(h.port, pki.caCertPem, 4);
      clients.push(c);
      assert.equal((await c.connect(d.clientId, 'not-a-jwt')).returnCode, 5);
    }
    await connected(d, 4);
  });

  test('new limits of the registry apply from the device\'s next connection', async () => {
    const reg = await registry('tuned', { stateUpdatesPerSecond: 1 });
    const d = await addDevice(h, 'tunable', { registry: reg });
    const c = await connected(d, 5);
    for (let i = 0; i < 3; i++) assert.equal(await publish1(c, state(d)), 0);
    assert.equal(await publish1(c, state(d)), QUOTA_EXCEEDED);
    await h.service.patchRegistry({ ...REG, registry: reg }, { rateLimits: { stateUpdatesPerSecond: 100 } }, ['rate_limits.state_updates_per_second']);
    now += 100;
    const retuned = await connected(d, 5);
    for (let i = 0; i < 5; i++) assert.equal(await publish1(retuned, state(d)), 0, `state ${i} at 100/s`);
  });

  test('a device attached to a gateway: over its limit it is detached (MQTT 3.1.1) or refused with 0x97 (MQTT 5); the gateway stays', async () => {
    const reg = await registry('relayed', { stateUpdatesPerSecond: 1 });
    const regName = { ...REG, registry: reg };
    const gwKeys = keyPair();
    await h.service.createDevice(regName, 'gw-relay', {
      credentials: [{ publicKey: { format: gwKeys.format, key: gwKeys.publicPem } }],
      gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: 'ASSOCIATION_ONLY' },
    });
    const gw: TestDevice = {
      id: 'gw-relay',
      name: { ...regName, device: 'gw-relay' },
      clientId: `projects/${PROJECT}/locations/${REG.location}/registries/${reg}/devices/gw-relay`,
      privatePem: gwKeys.privatePem,
      fingerprint: gwKeys.fingerprint,
      token: (lifetimeSeconds = 3600) => signDeviceJwt(gwKeys.privatePem, { audience: PROJECT, lifetimeSeconds }),
    };
    const leaf = await addDevice(h, 'relayed-leaf', { registry: reg });
    await h.service.bindDeviceToGateway(regName, gw.id, leaf.id);

    const v4 = await connectDevice(h, gw);
    const errors = errorQueue(v4, gw.id);
    try {
      await v4.subscribeAsync(`/devices/${gw.id}/errors`, { qos: 0 });
      await v4.publishAsync(`/devices/${leaf.id}/attach`, '{}', { qos: 1 });
      for (let i = 0; i < 3; i++) await v4.publishAsync(state(leaf), `s${i}`, { qos: 1 });
      v4.publish(state(leaf), 'over', { qos: 1 });
      const error = await errors.next();
      assert.equal(error.error_type, 'GATEWAY_DETACHMENT_DEVICE_ERROR');
      assert.equal(error.device_id, leaf.id);
      await exhausted(leaf, /state update rate limit of 1 per second/);
      await v4.publishAsync(state(gw), 'the gateway\'s own', { qos: 1 });
      assert.equal(v4.connected, true, 'the gateway keeps its connection');
    } finally {
      v4.end(true);
    }

    now += 3000;
    const v5 = await connectDevice(h, gw, { protocolVersion: 5 });
    try {
      await v5.publishAsync(`/devices/${leaf.id}/attach`, '{}', { qos: 1 });
      for (let i = 0; i < 3; i++) await v5.publishAsync(state(leaf), `t${i}`, { qos: 1 });
      await assert.rejects(v5.publishAsync(state(leaf), 'over', { qos: 1 }), (e: { code?: number }) => e.code === QUOTA_EXCEEDED);
      now += 1000;
      await v5.publishAsync(state(leaf), 'a second later', { qos: 1 });
      assert.equal(v5.connected, true);
    } finally {
      v5.end(true);
    }
  });
});
