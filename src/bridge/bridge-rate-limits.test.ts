/**
 * The registry's rate limits over HTTPS, with the real device manager and one DeviceRateLimiter
 * shared with a real broker, as the server wires them: a device meets the same limits, and the
 * same counts, whichever way it comes in. Over a limit: 429 RESOURCE_EXHAUSTED with Retry-After,
 * and the device's lastErrorStatus. The limiter's clock is the test's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { IPubackPacket } from 'mqtt-packet';
import type { RateLimits } from '../domain/resources.js';
import { DeviceRateLimiter } from '../registry/device-quotas.js';
import { RawClient } from '../../test/support/raw-client.js';
import { addDevice, lastError, pki, REG, startBroker, type Harness, type TestDevice } from '../mqtt/broker-harness.test.js';
import { createDeviceBridge, type DeviceBridge } from './device-bridge.js';

describe('registry rate limits over HTTPS, shared with MQTT', () => {
  let h: Harness;
  let bridge: DeviceBridge;
  let now = 0;
  const clients: RawClient[] = [];

  before(async () => {
    const quotas = new DeviceRateLimiter({ clock: () => now });
    h = await startBroker({}, undefined, { quotas });
    bridge = await createDeviceBridge({
      gateway: h.service,
      messages: h.broker.deviceMessages,
      quotas,
      tls: { cert: pki.certPem, key: pki.keyPem },
      logger: pino({ level: 'silent' }),
    });
  });
  after(async () => {
    for (const c of clients) c.end();
    await bridge.close();
    await h.close();
  });

  async function registry(id: string, rateLimits: Partial<RateLimits>): Promise<string> {
    await h.service.createRegistry(REG, id, { rateLimits });
    return id;
  }

  async function call(d: TestDevice, verb: 'publishEvent' | 'setState', data: Buffer | string = 'x') {
    const binaryData = Buffer.from(data).toString('base64');
    const body = verb === 'setState' ? { state: { binaryData } } : { binaryData };
    return bridge.app.inject({
      method: 'POST',
      url: `/v1/${d.clientId}:${verb}`,
      headers: { authorization: `Bearer ${await d.token()}`, 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });
  }

  type Reply = Awaited<ReturnType<typeof call>>;
  function tooMany(r: Reply, retryAfter: string, message: RegExp): void {
    assert.equal(r.statusCode, 429, r.body);
    assert.equal(r.headers['retry-after'], retryAfter);
    const error = r.json().error as { status: string; message: string };
    assert.equal(error.status, 'RESOURCE_EXHAUSTED');
    assert.match(error.message, message);
  }

  async function mqttDevice(d: TestDevice): Promise<RawClient> {
    const c = await RawClient.open(h.port, pki.caCertPem, 5);
    clients.push(c);
    assert.equal((await c.connect(d.clientId, await d.token())).reasonCode, 0);
    return c;
  }

  let nextId = 1;
  async function publish1(c: RawClient, topic: string, payload: Buffer | string = 'x'): Promise<number> {
    c.send({ cmd: 'publish', topic, payload, qos: 1, dup: false, retain: false, messageId: nextId++ });
    return ((await c.next('puback')) as IPubackPacket).reasonCode ?? 0;
  }

  it('state updates: 429 with Retry-After past the burst, counted with the device\'s MQTT states; other devices unaffected', async () => {
    const reg = await registry('http-states', { stateUpdatesPerSecond: 1 });
    const d = await addDevice(h, 'boiler', { registry: reg });
    const other = await addDevice(h, 'boiler-2', { registry: reg });
    const c = await mqttDevice(d);
    assert.equal(await publish1(c, `/devices/${d.id}/state`), 0);
    assert.equal((await call(d, 'setState')).statusCode, 200);
    assert.equal((await call(d, 'setState')).statusCode, 200);
    tooMany(await call(d, 'setState'), '1', /state update rate limit of 1 per second/);
    const error = await lastError(h, d);
    assert.equal(error?.code, 8, JSON.stringify(error));
    assert.match(error?.message ?? '', /^http: /);
    assert.equal(await publish1(c, `/devices/${d.id}/state`), 0x97, 'MQTT sees the same count');
    assert.equal((await call(other, 'setState')).statusCode, 200);
    now += 1000;
    assert.equal((await call(d, 'setState')).statusCode, 200, 'one more a second later');
  });

  it('telemetry messages per device over HTTPS', async () => {
    const reg = await registry('http-chatty', { telemetryMessagesPerSecond: 2 });
    const d = await addDevice(h, 'beacon', { registry: reg });
    for (let i = 0; i < 4; i++) assert.equal((await call(d, 'publishEvent')).statusCode, 200, `event ${i}`);
    tooMany(await call(d, 'publishEvent'), '1', /telemetry rate limit of 2 messages per second/);
  });

  it('telemetry bytes per device, counted across MQTT and HTTPS', async () => {
    const reg = await registry('http-heavy', { telemetryBytesPerSecond: 1000 });
    const d = await addDevice(h, 'recorder', { registry: reg });
    const c = await mqttDevice(d);
    assert.equal(await publish1(c, `/devices/${d.id}/events`, Buffer.alloc(1500)), 0);
    tooMany(await call(d, 'publishEvent', Buffer.alloc(1000)), '1', /throughput limit of 1000 bytes per second/);
    assert.equal((await call(d, 'publishEvent', Buffer.alloc(400))).statusCode, 200);
  });

  it('registry requests per minute count MQTT connections and HTTPS requests together; another registry is unaffected', async () => {
    const reg = await registry('http-crowded', { registryConnectionsPerMinute: 2 });
    const a = await addDevice(h, 'door-1', { registry: reg });
    const b = await addDevice(h, 'door-2', { registry: reg });
    await mqttDevice(a);
    assert.equal((await call(b, 'publishEvent')).statusCode, 200);
    tooMany(await call(b, 'publishEvent'), '30', /registry exceeded its connection and request rate limit of 2 per minute/);
    const elsewhere = await addDevice(h, 'door-3', { registry: await registry('http-roomy', { registryConnectionsPerMinute: 2 }) });
    assert.equal((await call(elsewhere, 'publishEvent')).statusCode, 200);
  });

  it('registry publishes per minute count events and states of every device, over both protocols', async () => {
    const reg = await registry('http-busy', { registryPublishesPerMinute: 3 });
    const a = await addDevice(h, 'gauge-1', { registry: reg });
    const b = await addDevice(h, 'gauge-2', { registry: reg });
    const c = await mqttDevice(a);
    assert.equal(await publish1(c, `/devices/${a.id}/events`), 0);
    assert.equal((await call(b, 'setState')).statusCode, 200);
    assert.equal((await call(b, 'publishEvent')).statusCode, 200);
    tooMany(await call(b, 'publishEvent'), '20', /registry exceeded its publish rate limit of 3 per minute/);
    assert.equal(await publish1(c, `/devices/${a.id}/events`), 0x97);
  });
});
