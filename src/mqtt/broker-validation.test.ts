/**
 * Invalid input and the connection-time bound over real TLS, as a client sees them: CONNACK 0x81
 * and 0x82 for malformed MQTT 5 CONNECTs, a silent close for ill-formed MQTT 3.1.1 strings,
 * DISCONNECT 0x81 and 0x82 for ill-formed packets after CONNECT, SUBACK 0x97 over the
 * subscription quota, and DISCONNECT 0xA0 at the maximum connect time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket, { type IConnackPacket, type IDisconnectPacket, type ISubackPacket, type Packet } from 'mqtt-packet';
import { RawClient } from '../../test/support/raw-client.js';
import { BACKEND_KEY, BACKEND_USER, REGISTRY, addDevice, eventually, pki, startBroker, type Harness, type TestDevice } from './broker-harness.test.js';
import { frame, rawConnect, str } from './fuzz-cases.js';

const V5 = { protocolVersion: 5 } as const;

/** Everything the server sent, parsed as MQTT 5 (RawClient's own parser speaks 3.1.1). */
function packetsV5(raw: RawClient): Packet[] {
  const parser = mqttPacket.parser(V5);
  const packets: Packet[] = [];
  parser.on('packet', (p: Packet) => packets.push(p));
  parser.on('error', () => undefined);
  parser.parse(Buffer.concat(raw.bytes));
  return packets;
}

/** The first packet of `cmd` the server sent, waiting for it. */
const nextV5 = (raw: RawClient, cmd: Packet['cmd']): Promise<Packet> =>
  eventually(() => {
    const packet = packetsV5(raw).find((p) => p.cmd === cmd);
    assert.ok(packet, `no ${cmd} from the server`);
    return packet;
  });

const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);

/** A device's MQTT 5 CONNECT with raw property bytes, which mqtt-packet would not encode. */
async function connectV5Raw(d: TestDevice, props: Buffer): Promise<Buffer> {
  const body = Buffer.concat([str('MQTT'), Buffer.from([5, 0xc2]), u16(60), Buffer.from([props.length]), props, str(d.clientId), str('u'), str(await d.token())]);
  return frame(0x10, body);
}

const connectV5 = async (d: TestDevice): Promise<Packet> => ({
  cmd: 'connect',
  protocolId: 'MQTT',
  protocolVersion: 5,
  clean: true,
  clientId: d.clientId,
  keepalive: 60,
  username: 'u',
  password: Buffer.from(await d.token()),
});

describe('invalid input and connection bounds', () => {
  let h: Harness;
  const raws: RawClient[] = [];
  const open = async (port = h.port): Promise<RawClient> => {
    const raw = await RawClient.open(port, pki.caCertPem);
    raws.push(raw);
    return raw;
  };
  before(async () => {
    h = await startBroker({ maxBackendSubscriptions: 2 });
  });
  after(async () => {
    for (const r of raws) r.end();
    await h.close();
  });

  test('a malformed MQTT 5 CONNECT gets CONNACK 0x81, one breaking a property rule 0x82, and the connection closes', async () => {
    const d = await addDevice(h, 'bad-connect');
    const cases: Array<[string, Buffer, number]> = [
      ['an unknown property id', Buffer.from([0x7f, 0x00]), 0x81],
      ['a PUBLISH-only property (topic alias)', Buffer.from([0x23, 0x00, 0x01]), 0x81],
      ['a user property with ill-formed UTF-8', Buffer.concat([Buffer.from([0x26]), str(Buffer.from([0xff])), str('v')]), 0x81],
      ['receive maximum 0', Buffer.from([0x21, 0x00, 0x00]), 0x82],
      ['receive maximum twice', Buffer.from([0x21, 0x00, 0x01, 0x21, 0x00, 0x02]), 0x82],
      // The CONNACK must still be sent: the client's limit of 0 is not applied to the refusal.
      ['maximum packet size 0', Buffer.from([0x27, 0x00, 0x00, 0x00, 0x00]), 0x82],
    ];
    for (const [name, props, code] of cases) {
      const raw = await open();
      raw.send(await connectV5Raw(d, props));
      const connack = (await nextV5(raw, 'connack')) as IConnackPacket;
      assert.equal(connack.reasonCode, code, name);
      await raw.closedWithin(5000);
      assert.deepEqual(packetsV5(raw).map((p) => p.cmd), ['connack'], `${name}: nothing but the CONNACK`);
    }
  });

  test('ill-formed UTF-8 or U+0000 in an MQTT 3.1.1 client id or user name closes the connection without accepting it', async () => {
    const d = await addDevice(h, 'bad-utf8');
    const cases: Array<[string, Buffer]> = [
      ['an overlong NUL in a device client id', rawConnect(Buffer.concat([Buffer.from(d.clientId), Buffer.from([0xc0, 0x80])]), 'unused', await d.token())],
      ['U+0000 in a backend client id', rawConnect(Buffer.from('backend-\u0000'), BACKEND_USER, BACKEND_KEY)],
      ['U+0000 in the service account user name', rawConnect('backend', `${BACKEND_USER}\u0000`, BACKEND_KEY)],
    ];
    for (const [name, bytes] of cases) {
      const raw = await open();
      raw.send(bytes);
      await raw.closedWithin(5000);
      assert.equal(raw.packets.length, 0, `${name}: no CONNACK`);
    }
  });

  test('ill-formed packets after CONNECT end an MQTT 5 connection with DISCONNECT 0x81 or 0x82', async () => {
    const d = await addDevice(h, 'bad-packets');
    const events = `/devices/${d.id}/events`;
    const cases: Array<[string, Buffer, number]> = [
      ['SUBSCRIBE without topic filters', Buffer.from([0x82, 0x03, 0x00, 0x01, 0x00]), 0x82],
      ['UNSUBSCRIBE without topic filters', Buffer.from([0xa2, 0x03, 0x00, 0x01, 0x00]), 0x82],
      ['PINGREQ with a body', Buffer.from([0xc0, 0x01, 0x00]), 0x81],
      ['PUBLISH to a topic with ill-formed UTF-8', frame(0x30, Buffer.concat([str(Buffer.concat([Buffer.from(`${events}/`), Buffer.from([0xed, 0xa0, 0x80])])), Buffer.from([0]), Buffer.from('x')])), 0x81],
      ['PUBLISH with a session expiry interval', frame(0x30, Buffer.concat([str(events), Buffer.from([0x05, 0x11, 0, 0, 0, 1]), Buffer.from('x')])), 0x81],
      ['PUBLISH with two content types', frame(0x30, Buffer.concat([str(events), Buffer.from([0x08, 0x03]), str('a'), Buffer.from([0x03]), str('b'), Buffer.from('x')])), 0x82],
    ];
    for (const [name, bytes, code] of cases) {
      const raw = await open();
      raw.send(await connectV5(d));
      assert.equal(((await nextV5(raw, 'connack')) as IConnackPacket).reasonCode, 0, name);
      raw.send(bytes);
      const disconnect = (await nextV5(raw, 'disconnect')) as IDisconnectPacket;
      assert.equal(disconnect.reasonCode, code, name);
      await raw.closedWithin(5000);
    }
  });

  test('a user property cut short ends the publisher with 0x81 and never reaches an MQTT 5 backend', async () => {
    const d = await addDevice(h, 'bad-user-property');
    const backend = await open();
    backend.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: 'v5-backend', keepalive: 0, username: BACKEND_USER, password: Buffer.from(BACKEND_KEY) } as Packet);
    backend.send(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `registries/${REGISTRY}/devices/+/events`, qos: 0 }] }, V5));
    await nextV5(backend, 'suback');

    const device = await open();
    device.send(await connectV5(d));
    await nextV5(device, 'connack');
    const events = `/devices/${d.id}/events`;
    const good = mqttPacket.generate({ cmd: 'publish', topic: events, payload: Buffer.from('x'.repeat(40)), qos: 0, dup: false, retain: false, properties: { userProperties: { a: 'b' } } }, V5);
    const overrun = Buffer.from(good);
    // The key's length runs past the properties, so the codec parses a user property without a value.
    overrun[overrun.indexOf(Buffer.from([0x26, 0x00, 0x01, 0x61])) + 2] = 0x21;
    device.send(overrun);
    assert.equal(((await nextV5(device, 'disconnect')) as IDisconnectPacket).reasonCode, 0x81);
    await device.closedWithin(5000);

    const after = await open();
    after.send(await connectV5(d));
    await nextV5(after, 'connack');
    after.send(mqttPacket.generate({ cmd: 'publish', topic: events, payload: Buffer.from('fine'), qos: 1, messageId: 1, dup: false, retain: false }, V5));
    await nextV5(after, 'puback');
    const delivered = (await eventually(() => {
      const publishes = packetsV5(backend).filter((p) => p.cmd === 'publish');
      assert.equal(publishes.length, 1, 'one delivery');
      return publishes[0];
    })) as Packet & { payload: Buffer };
    assert.equal(delivered.payload.toString(), 'fine', 'only the well-formed message is delivered');
    assert.equal(backend.isClosed, false, 'the backend stays connected');
  });

  test('a backend over its subscription quota gets SUBACK 0x97 (MQTT 5) or 0x80 (MQTT 3.1.1) for the filters beyond it', async () => {
    const filters = ['events', 'state', 'events/#'].map((level) => ({ topic: `registries/${REGISTRY}/devices/+/${level}`, qos: 1 as const }));
    const v5 = await open();
    v5.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: 'quota-v5', keepalive: 0, username: BACKEND_USER, password: Buffer.from(BACKEND_KEY) } as Packet);
    v5.send(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: filters }, V5));
    assert.deepEqual(((await nextV5(v5, 'suback')) as ISubackPacket).granted, [1, 1, 0x97]);

    const v4 = await open();
    assert.equal((await v4.connect('quota-v4', BACKEND_KEY, 0, BACKEND_USER)).returnCode, 0);
    v4.send({ cmd: 'subscribe', messageId: 1, subscriptions: filters });
    assert.deepEqual(((await v4.next('suback')) as ISubackPacket).granted, [1, 1, 0x80]);
  });

  test('a connection lasts at most the maximum connect time, then MQTT 5 gets DISCONNECT 0xA0', async () => {
    const short = await startBroker({ maxConnectTimeMs: 1500 });
    try {
      const d = await addDevice(short, 'connect-time');
      const device = await open(short.port);
      device.send({ ...(await connectV5(d)), keepalive: 0 } as Packet);
      assert.equal(((await nextV5(device, 'connack')) as IConnackPacket).reasonCode, 0);
      const backend = await open(short.port);
      assert.equal((await backend.connect('connect-time-v4', BACKEND_KEY, 0, BACKEND_USER)).returnCode, 0);

      const disconnect = (await nextV5(device, 'disconnect')) as IDisconnectPacket;
      assert.equal(disconnect.reasonCode, 0xa0);
      await device.closedWithin(5000);
      // MQTT 3.1.1 has no server DISCONNECT: the connection just closes.
      await backend.closedWithin(5000);
    } finally {
      await short.close();
    }
  });
});
