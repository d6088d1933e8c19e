/**
 * Backpressure end to end: a backend that does not acknowledge its deliveries holds back the QoS 1
 * PUBLISHes of the devices that feed it (their PUBACKs wait) instead of letting its session queue
 * overflow, and every message a device got a PUBACK for is delivered once the backend catches up.
 * Only those devices wait: devices whose messages go elsewhere, and everything fed by a slow client
 * of the open listener, go on.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import mqttPacket, { type IPublishPacket } from 'mqtt-packet';
import { RawClient } from '../../test/support/raw-client.js';
import {
  BACKEND_KEY,
  BACKEND_USER,
  addDevice,
  addRegistry,
  connectBackend,
  eventually,
  inbox,
  pki,
  rawDevice,
  REGISTRY,
  sleep,
  startBroker,
  type Harness,
} from './broker-harness.test.js';

const COUNT = 20;

/** COUNT QoS 1 PUBLISHes of `payload{i}` to `topic`, in one write. */
function burst(topic: string, prefix: string): Buffer {
  return Buffer.concat(
    Array.from({ length: COUNT }, (_, i) =>
      mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from(`${prefix}${i}`), qos: 1, messageId: i + 1, dup: false, retain: false }),
    ),
  );
}

const expected = (prefix: string): string[] => Array.from({ length: COUNT }, (_, i) => `${prefix}${i}`);
const pubacks = (client: { packets: readonly { cmd: string }[] }): number => client.packets.filter((p) => p.cmd === 'puback').length;

/** A backend that subscribes to `filter` at QoS 1 and never acknowledges anything. */
async function slowBackend(h: Harness, clientId: string, filter: string): Promise<RawClient> {
  const backend = await RawClient.open(h.port, pki.caCertPem);
  assert.equal((await backend.connect(clientId, BACKEND_KEY, 60, BACKEND_USER)).returnCode, 0);
  backend.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 1 }] });
  await backend.next('suback');
  return backend;
}

/** A backend that acknowledges everything it gets, as it gets it. */
async function fastBackend(h: Harness, filter: string): Promise<{ client: MqttClient; payloads: () => string[] }> {
  const client = await connectBackend(h);
  const received = inbox(client);
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, payloads: () => received.map((m) => m.payload.toString()) };
}

/** Waits until `client` has had some PUBACKs, then checks that it stays short of COUNT: it is held. */
async function assertHeld(client: { packets: readonly { cmd: string }[] }, what: string): Promise<number> {
  await eventually(() => assert.ok(pubacks(client) > 0, `${what}: the first PUBLISHes are acknowledged`));
  // Nothing is acknowledged by its subscriber: the rest of its PUBACKs wait (for up to slowConsumerMs).
  await sleep(200);
  const heldAt = pubacks(client);
  assert.ok(heldAt < COUNT, `${what}: only ${heldAt} of ${COUNT} acknowledged while its subscriber is behind`);
  return heldAt;
}

describe('backpressure from a subscriber to the publishers that feed it', () => {
  let h: Harness;
  // One delivery in flight to each subscriber, and its session queue backlogged at 2 of 8 messages.
  before(async () => {
    h = await startBroker({ maxInflight: 1, sessionQueueMessages: 8 }, undefined, { openListener: { host: '127.0.0.1', port: 0 } });
    await addRegistry(h, 'other');
  });
  after(async () => {
    await h.close();
  });

  test('a backend that stops acknowledging holds device PUBACKs back; nothing acknowledged is lost', async () => {
    const backend = await slowBackend(h, 'slow-backend', `registries/${REGISTRY}/devices/+/events`);
    const device = await rawDevice(h, await addDevice(h, 'pressed'));
    device.send(burst('/devices/pressed/events', 'm'));
    await assertHeld(device, 'the device');

    // The backend catches up: it acknowledges everything it gets, as it gets it.
    const received: string[] = [];
    while (received.length < COUNT) {
      const delivery = (await backend.next('publish')) as IPublishPacket;
      received.push(delivery.payload.toString());
      backend.send({ cmd: 'puback', messageId: delivery.messageId as number });
    }
    assert.deepEqual(received, expected('m'), 'every message, once, in order');
    await eventually(() => assert.equal(pubacks(device), COUNT, 'every PUBLISH acknowledged in the end'));
    device.end();
    backend.end();
  });

  test("a slow backend of one registry holds that registry's device only; it resumes when the backend leaves", async () => {
    const slow = await slowBackend(h, 'slow-fleet', `registries/${REGISTRY}/devices/+/events`);
    const fast = await fastBackend(h, 'registries/other/devices/+/events');
    const held = await rawDevice(h, await addDevice(h, 'held'));
    const free = await rawDevice(h, await addDevice(h, 'free', { registry: 'other' }));

    held.send(burst('/devices/held/events', 'h'));
    const heldAt = await assertHeld(held, 'the device of the slow backend');

    free.send(burst('/devices/free/events', 'f'));
    await eventually(() => assert.equal(pubacks(free), COUNT, 'the other registry’s device is acknowledged throughout'));
    await eventually(() => assert.deepEqual(fast.payloads(), expected('f'), 'and its messages delivered, in order'));
    assert.equal(pubacks(held), heldAt, 'the slow backend’s device is still held');

    // The slow backend goes away (its session ends with it): nothing holds the device any more.
    slow.end();
    await eventually(() => assert.equal(pubacks(held), COUNT, 'the held device resumes once its backend is gone'));
    held.end();
    free.end();
    fast.client.end(true);
  });

  test('a slow client of the open listener holds its own publishers, never a device', async () => {
    const slow = await RawClient.plain(h.openPort as number, 4);
    await slow.connectWith({ clientId: 'slow-open' });
    slow.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'slow/#', qos: 1 }] });
    await slow.next('suback');
    const publisher = await RawClient.plain(h.openPort as number, 4);
    await publisher.connectWith({ clientId: 'open-publisher' });
    publisher.socket.write(burst('slow/t', 'o'));
    await assertHeld(publisher, 'the open-listener publisher');

    const fast = await fastBackend(h, `registries/${REGISTRY}/devices/+/events`);
    const device = await rawDevice(h, await addDevice(h, 'unbothered'));
    device.send(burst('/devices/unbothered/events', 'd'));
    await eventually(() => assert.equal(pubacks(device), COUNT, 'the device is acknowledged throughout'));
    await eventually(() => assert.deepEqual(fast.payloads(), expected('d'), 'and its messages delivered, in order'));

    slow.end();
    await eventually(() => assert.equal(pubacks(publisher), COUNT, 'the open-listener publisher resumes once its subscriber is gone'));
    publisher.end();
    device.end();
    fast.client.end(true);
  });
});
