/**
 * The development open listener over real sockets: plaintext, loopback only, anonymous clients in
 * their own namespace with the whole protocol (QoS 2, retained messages, wills, sessions).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IConnackPacket, IDisconnectPacket, IPublishPacket, ISubackPacket } from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import pino from 'pino';
import { LocalBus } from '../bus/local-bus.js';
import { isKeywayError } from '../domain/errors.js';
import { BACKEND_KEY, BACKEND_USER, addDevice, connectBackend, connectDevice, eventually, inbox, mqttConnect, pki, sleep, startBroker, type Harness } from './broker-harness.test.js';
import { Broker } from './broker.js';
import type { DeviceGateway } from '../registry/device-manager.js';
import { RawClient, type ProtocolVersion } from '../../test/support/raw-client.js';

const RECEIVE_MAXIMUM = 5;

describe('development open listener', () => {
  let h: Harness;
  let openPort: number;
  const clients: MqttClient[] = [];
  const sockets: RawClient[] = [];

  before(async () => {
    h = await startBroker({ receiveMaximum: RECEIVE_MAXIMUM }, undefined, { openListener: { host: '127.0.0.1', port: 0 } });
    openPort = h.openPort as number;
  });
  after(async () => {
    for (const c of clients) c.end(true);
    for (const s of sockets) s.end();
    await h.close();
  });

  const open = async (clientId: string, options: Record<string, unknown> = {}): Promise<MqttClient> => {
    const client = await mqttConnect(openPort, { protocol: 'mqtt', clientId, protocolVersion: 5, ...options });
    clients.push(client);
    return client;
  };
  const raw = async (version: ProtocolVersion): Promise<RawClient> => {
    const s = await RawClient.plain(openPort, version);
    sockets.push(s);
    return s;
  };

  test('a non-loopback host is refused before anything listens', () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.com']) {
      assert.throws(
        () =>
          new Broker({
            gateway: {} as DeviceGateway,
            bus: new LocalBus(),
            tls: { cert: pki.certPem, key: pki.keyPem },
            host: '127.0.0.1',
            port: 0,
            logger: pino({ level: 'silent' }),
            openListener: { host, port: 0 },
          }),
        (e: unknown) => isKeywayError(e) && e.status === 'INVALID_ARGUMENT',
        host,
      );
    }
    assert.equal(typeof openPort, 'number');
    assert.notEqual(openPort, h.port);
  });

  test('QoS 2 round trip: the subscriber receives the message once, at QoS 2', async () => {
    const sub = await open('qos2-sub');
    const got = inbox(sub);
    assert.deepEqual((await sub.subscribeAsync('test/qos2', { qos: 2 })).map((g) => g.qos), [2]);
    const pub = await open('qos2-pub', { protocolVersion: 4, username: 'ignored', password: 'ignored' });
    await pub.publishAsync('test/qos2', 'exactly once', { qos: 2 });
    await eventually(() => assert.equal(got.length, 1, 'delivered'));
    await sleep(100);
    assert.deepEqual(got.map((m) => [m.topic, m.payload.toString(), m.qos]), [['test/qos2', 'exactly once', 2]]);
  });

  test('a QoS 2 PUBLISH repeated before PUBREL is delivered once; PUBREL of an unknown id gets PUBCOMP 0x92', async () => {
    const sub = await open('dedup-sub');
    const got = inbox(sub);
    await sub.subscribeAsync('test/dedup', { qos: 2 });
    const s = await raw(5);
    assert.equal((await s.connectWith({ clientId: 'dedup-pub' })).reasonCode, 0);
    const publish = { cmd: 'publish', topic: 'test/dedup', payload: Buffer.from('once'), qos: 2, dup: false, retain: false, messageId: 7 } as const;
    s.send(publish);
    assert.equal(((await s.next('pubrec')) as { messageId: number }).messageId, 7);
    s.send({ ...publish, dup: true });
    await s.next('pubrec');
    s.send({ cmd: 'pubrel', messageId: 7 });
    assert.equal(((await s.next('pubcomp')) as { reasonCode?: number }).reasonCode ?? 0, 0);
    s.send({ cmd: 'pubrel', messageId: 7 });
    assert.equal(((await s.next('pubcomp')) as { reasonCode?: number }).reasonCode, 0x92);
    await eventually(() => assert.equal(got.length, 1, 'delivered'));
    await sleep(100);
    assert.equal(got.length, 1, 'not twice');
  });

  test('more unreleased QoS 2 PUBLISHes than the receive maximum end the connection with 0x93', async () => {
    const s = await raw(5);
    const connack = await s.connectWith({ clientId: 'flood' });
    assert.equal(connack.properties?.receiveMaximum, RECEIVE_MAXIMUM);
    for (let id = 1; id <= RECEIVE_MAXIMUM + 1; id++) {
      s.send({ cmd: 'publish', topic: 'test/flood', payload: Buffer.from('x'), qos: 2, dup: false, retain: false, messageId: id });
    }
    assert.equal(((await s.next('disconnect')) as IDisconnectPacket).reasonCode, 0x93);
    await s.closedWithin(5000);
  });

  test('retained messages: sent on subscribe with the retain flag, replaced, deleted by an empty payload', async () => {
    const pub = await open('retain-pub');
    await pub.publishAsync('test/retained/a', 'first', { qos: 1, retain: true });
    await pub.publishAsync('test/retained/a', 'second', { qos: 1, retain: true });
    await pub.publishAsync('test/retained/b', 'other', { qos: 0, retain: true });
    const s = await raw(4);
    await s.connectWith({ clientId: 'retain-sub' });
    s.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'test/retained/+', qos: 1 }] });
    await s.next('suback');
    const retained = [(await s.next('publish')) as IPublishPacket, (await s.next('publish')) as IPublishPacket];
    assert.deepEqual(retained.map((p) => [p.topic, p.payload.toString(), p.retain, p.qos]).sort(), [
      ['test/retained/a', 'second', true, 1],
      ['test/retained/b', 'other', true, 0],
    ]);
    for (const p of retained) if (p.messageId !== undefined) s.send({ cmd: 'puback', messageId: p.messageId });
    // A live message to a subscriber is not flagged retained.
    await pub.publishAsync('test/retained/a', 'live', { qos: 0, retain: true });
    const live = (await s.next('publish')) as IPublishPacket;
    assert.deepEqual([live.payload.toString(), live.retain], ['live', false]);

    await pub.publishAsync('test/retained/a', '', { qos: 0, retain: true });
    await pub.publishAsync('test/retained/b', '', { qos: 0, retain: true });
    const late = await open('retain-late');
    const got = inbox(late);
    await late.subscribeAsync('test/retained/#', { qos: 1 });
    await sleep(200);
    assert.deepEqual(got, [], 'deleted');
  });

  test('the will goes out when a client vanishes without DISCONNECT, not after a normal one', async () => {
    const watcher = await open('will-watcher');
    const got = inbox(watcher);
    await watcher.subscribeAsync('test/will/#', { qos: 1 });
    const s = await raw(5);
    await s.connectWith({ clientId: 'will-abrupt', will: { topic: 'test/will/abrupt', payload: Buffer.from('gone'), qos: 1, retain: false, properties: { userProperties: { why: 'abrupt' } } } });
    const polite = await raw(4);
    await polite.connectWith({ clientId: 'will-polite', will: { topic: 'test/will/polite', payload: Buffer.from('never'), qos: 1, retain: false } });
    polite.send({ cmd: 'disconnect' });
    await polite.closedWithin(5000);
    s.end();
    await eventually(() => assert.equal(got.length, 1, 'the will arrived'));
    await sleep(100);
    assert.deepEqual(got.map((m) => [m.topic, m.payload.toString()]), [['test/will/abrupt', 'gone']]);
  });

  test('DISCONNECT 0x04 asks for the will; a session expiry set on DISCONNECT after none on CONNECT is a protocol error (and the will goes out)', async () => {
    const watcher = await open('will5-watcher');
    const got = inbox(watcher);
    await watcher.subscribeAsync('test/will5/#', { qos: 1 });
    const withWill = await raw(5);
    await withWill.connectWith({ clientId: 'will5-04', will: { topic: 'test/will5/asked', payload: Buffer.from('asked'), qos: 1, retain: false } });
    withWill.send({ cmd: 'disconnect', reasonCode: 0x04 });
    await withWill.closedWithin(5000);
    const cheat = await raw(5);
    await cheat.connectWith({ clientId: 'will5-cheat', will: { topic: 'test/will5/cheat', payload: Buffer.from('cheat'), qos: 1, retain: false } });
    cheat.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 60 } });
    assert.equal(((await cheat.next('disconnect')) as IDisconnectPacket).reasonCode, 0x82);
    await eventually(() => assert.equal(got.length, 2, 'both wills arrived'));
    assert.deepEqual(got.map((m) => m.payload.toString()).sort(), ['asked', 'cheat']);
  });

  test('a takeover ends the old connection with 0x8E and publishes its will; the session carries over', async () => {
    const watcher = await open('takeover-watcher');
    const got = inbox(watcher);
    await watcher.subscribeAsync('test/takeover/#', { qos: 1 });
    const first = await raw(5);
    await first.connectWith({
      clientId: 'takeover',
      clean: true,
      properties: { sessionExpiryInterval: 60 },
      will: { topic: 'test/takeover/will', payload: Buffer.from('first'), qos: 1, retain: false },
    });
    first.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'test/takeover/data', qos: 1, nl: false, rap: false, rh: 0 }] });
    await first.next('suback');
    const second = await raw(5);
    const connack = await second.connectWith({ clientId: 'takeover', clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(connack.sessionPresent, true);
    assert.equal(((await first.next('disconnect')) as IDisconnectPacket).reasonCode, 0x8e);
    await eventually(() => assert.equal(got.length, 1, 'the will of the old connection'));
    await watcher.publishAsync('test/takeover/data', 'for-second', { qos: 1 });
    assert.equal(((await second.next('publish')) as IPublishPacket).payload.toString(), 'for-second');
  });

  test('SUBSCRIBE to test/nosubscribe is refused with 0x80 in both versions (the Paho subscribe-failure probe)', async () => {
    for (const version of [4, 5] as const) {
      const s = await raw(version);
      await s.connectWith({ clientId: `nosub-${version}` });
      s.send({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [
          { topic: 'test/nosubscribe', qos: 2 },
          { topic: 'test/fine', qos: 2 },
        ],
      });
      assert.deepEqual(((await s.next('suback')) as ISubackPacket).granted, [0x80, 2], `version ${version}`);
    }
  });

  test('a zero-length client id: assigned with clean session 1 (and announced in MQTT 5), refused with clean session 0 in 3.1.1', async () => {
    const v4 = await raw(4);
    assert.equal((await v4.connectWith({ clientId: 'placeholder', clean: true })).returnCode, 0);
    const empty = await raw(4);
    // mqtt-packet refuses to encode an empty id with clean session 0, so the packet is written by hand.
    empty.socket.write(Buffer.from([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x00, 0, 60, 0, 0]));
    assert.equal(((await empty.next('connack')) as IConnackPacket).returnCode, 2);
    await empty.closedWithin(5000);
    const anon = await raw(4);
    assert.equal((await anon.connectWith({ clientId: '', clean: true })).returnCode, 0);
    const v5 = await raw(5);
    const connack = await v5.connectWith({ clientId: '' });
    assert.match(connack.properties?.assignedClientIdentifier ?? '', /^keyway-/);
  });

  test('CONNACK announces the whole protocol; an MQTT 5 keep-alive over 60 s is answered with Server Keep Alive 60', async () => {
    const s = await raw(5);
    const props = (await s.connectWith({ clientId: 'keepalive', keepalive: 120 })).properties ?? {};
    assert.equal(props.serverKeepAlive, 60);
    assert.equal(props.maximumQoS, undefined, 'QoS 2 is served');
    assert.equal(props.retainAvailable, true);
    assert.equal(props.sharedSubscriptionAvailable, true);
    assert.equal(props.subscriptionIdentifiersAvailable, true);
    const kept = await raw(5);
    assert.equal((await kept.connectWith({ clientId: 'keepalive-kept', keepalive: 30 })).properties?.serverKeepAlive, undefined);
  });

  test('open clients and device or backend traffic never meet', async () => {
    const d = await addDevice(h, 'open-isolation');
    const spy = await open('spy');
    const spied = inbox(spy);
    await spy.subscribeAsync('#', { qos: 1 });
    const backend = await connectBackend(h);
    clients.push(backend);
    const backendGot = inbox(backend);
    await backend.subscribeAsync('registries/#', { qos: 1 });
    const device = await connectDevice(h, d);
    clients.push(device);
    await device.publishAsync(`/devices/${d.id}/events`, 'real', { qos: 1 });
    const forger = await open('forger');
    await forger.publishAsync(`registries/fleet/devices/${d.id}/events`, 'forged', { qos: 1 });
    await eventually(() => assert.equal(backendGot.length, 1, 'the backend got the device event'));
    await eventually(() => assert.equal(spied.length, 1, 'the spy got the open message'));
    await sleep(100);
    assert.deepEqual(backendGot.map((m) => m.payload.toString()), ['real']);
    assert.deepEqual(spied.map((m) => m.payload.toString()), ['forged']);
  });

  test('device and admin credentials mean nothing on the open listener, and the TLS listener still refuses the anonymous', async () => {
    const d = await addDevice(h, 'open-creds');
    const s = await raw(4);
    assert.equal((await s.connectWith({ clientId: d.clientId, username: BACKEND_USER, password: Buffer.from(BACKEND_KEY) })).returnCode, 0);
    s.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'registries/#', qos: 1 }] });
    assert.deepEqual(((await s.next('suback')) as ISubackPacket).granted, [1], 'an open subscription, to open traffic only');
    const tls = await RawClient.open(h.port, pki.caCertPem, 4);
    sockets.push(tls);
    assert.equal((await tls.connectWith({ clientId: 'anonymous' })).returnCode, 5);
  });
});
