/**
 * The session engine in the backend namespace, over real TLS: persistent backend sessions get the
 * QoS 1 telemetry they missed, shared subscriptions split a registry's telemetry between workers,
 * a second CONNECT with the same client id takes the session over.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IConnackPacket, IDisconnectPacket, IPublishPacket, ISubackPacket } from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import {
  BACKEND_KEY,
  BACKEND_USER,
  addDevice,
  connectBackend,
  connectDevice,
  eventually,
  inbox,
  mqttConnect,
  pki,
  REGISTRY,
  sleep,
  startBroker,
  type Harness,
} from './broker-harness.test.js';
import { RawClient, type ProtocolVersion } from '../../test/support/raw-client.js';

describe('backend sessions', () => {
  let h: Harness;
  const clients: MqttClient[] = [];
  const sockets: RawClient[] = [];
  const track = <T extends MqttClient | RawClient>(c: T): T => {
    if (c instanceof RawClient) sockets.push(c);
    else clients.push(c);
    return c;
  };

  before(async () => {
    h = await startBroker();
  });
  after(async () => {
    for (const c of clients) c.end(true);
    for (const s of sockets) s.end();
    await h.close();
  });

  async function backendSocket(clientId: string, version: ProtocolVersion, fields: Record<string, unknown> = {}): Promise<{ s: RawClient; connack: IConnackPacket }> {
    const s = track(await RawClient.open(h.port, pki.caCertPem, version));
    const connack = await s.connectWith({ clientId, username: BACKEND_USER, password: Buffer.from(BACKEND_KEY), ...fields });
    return { s, connack };
  }

  test('a persistent backend session (clean session 0) receives the QoS 1 telemetry it missed, and unacknowledged messages again with DUP', async () => {
    const d = await addDevice(h, 'persist-dev');
    const first = await backendSocket('worker-persist', 4, { clean: false });
    assert.equal(first.connack.returnCode, 0);
    assert.equal(first.connack.sessionPresent, false);
    first.s.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `registries/${REGISTRY}/devices/+/events`, qos: 1 }] });
    assert.deepEqual(((await first.s.next('suback')) as ISubackPacket).granted, [1]);
    first.s.send({ cmd: 'disconnect' });
    await first.s.closedWithin(5000);

    const device = track(await connectDevice(h, d));
    for (const n of ['1', '2', '3']) await device.publishAsync(`/devices/${d.id}/events`, n, { qos: 1 });

    const second = await backendSocket('worker-persist', 4, { clean: false });
    assert.equal(second.connack.sessionPresent, true, 'the session was kept');
    const missed: IPublishPacket[] = [];
    for (let i = 0; i < 3; i++) missed.push((await second.s.next('publish')) as IPublishPacket);
    assert.deepEqual(missed.map((p) => [p.topic, p.payload.toString(), p.qos]), [
      [`registries/${REGISTRY}/devices/${d.id}/events`, '1', 1],
      [`registries/${REGISTRY}/devices/${d.id}/events`, '2', 1],
      [`registries/${REGISTRY}/devices/${d.id}/events`, '3', 1],
    ]);
    // Acknowledge only the first, then drop the connection: the other two come again with DUP.
    second.s.send({ cmd: 'puback', messageId: missed[0]?.messageId as number });
    await sleep(50);
    second.s.end();
    await second.s.closed;

    const third = await backendSocket('worker-persist', 4, { clean: false });
    assert.equal(third.connack.sessionPresent, true);
    const again = [(await third.s.next('publish')) as IPublishPacket, (await third.s.next('publish')) as IPublishPacket];
    assert.deepEqual(again.map((p) => [p.payload.toString(), p.dup, p.messageId]), [
      ['2', true, missed[1]?.messageId],
      ['3', true, missed[2]?.messageId],
    ]);
    for (const p of again) third.s.send({ cmd: 'puback', messageId: p.messageId as number });

    // A clean session 1 CONNECT discards it.
    third.s.send({ cmd: 'disconnect' });
    await third.s.closedWithin(5000);
    const fresh = await backendSocket('worker-persist', 4, { clean: true });
    assert.equal(fresh.connack.sessionPresent, false);
  });

  test('an MQTT 5 backend keeps its session for its session expiry interval; CONNACK says what the engine supports', async () => {
    const d = await addDevice(h, 'expiry-dev');
    const first = await backendSocket('worker-v5', 5, { clean: false, properties: { sessionExpiryInterval: 300 } });
    assert.equal(first.connack.reasonCode, 0);
    const props = first.connack.properties ?? {};
    assert.equal(props.sharedSubscriptionAvailable, true);
    assert.equal(props.subscriptionIdentifiersAvailable, true);
    assert.equal(props.retainAvailable, false, 'nothing is retained in the backend namespace');
    assert.equal(props.maximumQoS, 1);
    first.s.send({ cmd: 'subscribe', messageId: 1, properties: { subscriptionIdentifier: 9 }, subscriptions: [{ topic: `registries/${REGISTRY}/devices/${d.id}/state`, qos: 1, nl: false, rap: false, rh: 0 }] });
    await first.s.next('suback');
    first.s.end();
    await first.s.closed;

    const device = track(await connectDevice(h, d));
    await device.publishAsync(`/devices/${d.id}/state`, 'on', { qos: 1 });

    const second = await backendSocket('worker-v5', 5, { clean: false, properties: { sessionExpiryInterval: 300 } });
    assert.equal(second.connack.sessionPresent, true);
    const p = (await second.s.next('publish')) as IPublishPacket;
    assert.equal(p.payload.toString(), 'on');
    assert.equal(p.properties?.subscriptionIdentifier, 9);
    assert.equal(p.properties?.userProperties?.['deviceId'], d.id, 'device attributes still travel');
    second.s.send({ cmd: 'puback', messageId: p.messageId as number });
  });

  test('a shared subscription splits a registry’s telemetry between backend workers, each message to one', async () => {
    const d = await addDevice(h, 'shared-dev');
    const filter = `$share/workers/registries/${REGISTRY}/devices/+/events`;
    const workers = [track(await connectBackend(h)), track(await connectBackend(h))];
    const boxes = workers.map((w) => inbox(w));
    for (const w of workers) assert.deepEqual((await w.subscribeAsync(filter, { qos: 1 })).map((g) => g.qos), [1]);
    const device = track(await connectDevice(h, d));
    for (let i = 0; i < 10; i++) await device.publishAsync(`/devices/${d.id}/events`, String(i), { qos: 1 });
    await eventually(() => assert.equal(boxes[0]!.length + boxes[1]!.length, 10, 'all ten delivered'));
    await sleep(100);
    assert.equal(boxes[0]!.length, 5, 'round robin');
    assert.equal(boxes[1]!.length, 5);
    const all = [...boxes[0]!, ...boxes[1]!].map((m) => m.payload.toString()).sort((a, b) => Number(a) - Number(b));
    assert.deepEqual(all, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'], 'each message exactly once');
  });

  test('a shared filter outside registries/ is refused like a plain one', async () => {
    const { s } = await backendSocket('worker-shared-refused', 5);
    s.send({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: ['$share/workers/#', '$share/workers/devices/+/events', '$share//registries/#', `$share/w/registries/${REGISTRY}/devices/+/state`].map((topic) => ({
        topic,
        qos: 1 as const,
        nl: false,
        rap: false,
        rh: 0,
      })),
    });
    assert.deepEqual(((await s.next('suback')) as ISubackPacket).granted, [0x87, 0x87, 0x8f, 1]);
  });

  test('a second CONNECT with the same client id takes the session over: MQTT 5 gets DISCONNECT 0x8E', async () => {
    const first = await backendSocket('worker-takeover', 5);
    const second = await backendSocket('worker-takeover', 5);
    assert.equal(second.connack.reasonCode, 0);
    const disconnect = (await first.s.next('disconnect')) as IDisconnectPacket;
    assert.equal(disconnect.reasonCode, 0x8e);
    await first.s.closedWithin(5000);
    second.s.send({ cmd: 'pingreq' });
    await second.s.next('pingresp');
  });

  test('backends never publish and never take part in QoS 2', async () => {
    const client = track(await mqttConnect(h.port, { clientId: 'worker-pub', username: BACKEND_USER, password: BACKEND_KEY, protocolVersion: 5 }));
    const gone = new Promise<number | undefined>((resolve) => client.once('disconnect', (p) => resolve(p.reasonCode)));
    client.publish(`registries/${REGISTRY}/devices/x/events`, 'forged', { qos: 1 });
    assert.equal(await gone, 0x87);
    const { s } = await backendSocket('worker-qos2', 5);
    s.send({ cmd: 'pubrel', messageId: 4 });
    await s.closedWithin(5000);
  });
});
