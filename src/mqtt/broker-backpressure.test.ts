/**
 * Backpressure end to end: a backend that does not acknowledge its deliveries holds the devices'
 * QoS 1 PUBLISHes back (their PUBACKs wait) instead of letting its session queue overflow, and
 * every message a device got a PUBACK for is delivered once the backend catches up.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket, { type IPublishPacket } from 'mqtt-packet';
import { RawClient } from '../../test/support/raw-client.js';
import { ADMIN_TOKEN, addDevice, eventually, pki, rawDevice, REGISTRY, sleep, startBroker, type Harness } from './broker-harness.test.js';

describe('backpressure from a backend to the devices', () => {
  let h: Harness;
  // One delivery in flight to the backend, and its session queue backlogged at 2 of 8 messages.
  before(async () => {
    h = await startBroker({ maxInflight: 1, sessionQueueMessages: 8 });
  });
  after(async () => {
    await h.close();
  });

  test('a backend that stops acknowledging holds device PUBACKs back; nothing acknowledged is lost', async () => {
    const backend = await RawClient.open(h.port, pki.caCertPem);
    const connack = await backend.connect('slow-backend', ADMIN_TOKEN, 60, 'admin');
    assert.equal(connack.returnCode, 0);
    backend.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `registries/${REGISTRY}/devices/+/events`, qos: 1 }] });
    await backend.next('suback');

    const device = await rawDevice(h, await addDevice(h, 'pressed'));
    const count = 20;
    const publishes = Array.from({ length: count }, (_, i) =>
      mqttPacket.generate({ cmd: 'publish', topic: '/devices/pressed/events', payload: Buffer.from(`m${i}`), qos: 1, messageId: i + 1, dup: false, retain: false }),
    );
    device.send(Buffer.concat(publishes));

    const pubacks = (): number => device.packets.filter((p) => p.cmd === 'puback').length;
    await eventually(() => assert.ok(pubacks() > 0, 'the first PUBLISHes are acknowledged'));
    // Nothing is acknowledged by the backend yet: the device waits for the rest of its PUBACKs.
    await sleep(200);
    const heldAt = pubacks();
    assert.ok(heldAt < count, `only ${heldAt} of ${count} acknowledged while the backend is behind`);

    // The backend catches up: it acknowledges everything it gets, as it gets it.
    const received: string[] = [];
    const drain = async (): Promise<void> => {
      while (received.length < count) {
        const delivery = (await backend.next('publish')) as IPublishPacket;
        received.push(delivery.payload.toString());
        backend.send({ cmd: 'puback', messageId: delivery.messageId as number });
      }
    };
    await drain();
    assert.deepEqual(received, Array.from({ length: count }, (_, i) => `m${i}`), 'every message, once, in order');
    await eventually(() => assert.equal(pubacks(), count, 'every PUBLISH acknowledged in the end'));
    device.end();
    backend.end();
  });
});
