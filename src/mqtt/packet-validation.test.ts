import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { BAD_UTF8, frame, rawConnect, remainingLength, str } from './fuzz-cases.js';
import { isWellFormedString, packetProblem } from './packet-validation.js';

const MALFORMED = 0x81;
const PROTOCOL_ERROR = 0x82;

/** Parses one packet as the broker's codec would on a connection of that protocol level. */
function parse(bytes: Buffer, v5 = false): Packet {
  const parser = mqttPacket.parser({ protocolVersion: v5 ? 5 : 4 });
  const packets: Packet[] = [];
  const errors: Error[] = [];
  parser.on('packet', (p: Packet) => packets.push(p));
  parser.on('error', (e: Error) => errors.push(e));
  parser.parse(bytes);
  assert.deepEqual(errors, [], 'the codec itself accepts the packet');
  assert.equal(packets.length, 1, 'one packet parsed');
  return packets[0] as Packet;
}

const v4 = (p: Packet): Buffer => mqttPacket.generate(p);
const v5 = (p: Packet): Buffer => mqttPacket.generate(p, { protocolVersion: 5 });
const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const props = (bytes: Buffer): Buffer => Buffer.concat([remainingLength(bytes.length), bytes]);

/** The reason code packetProblem gives the packet, or undefined when it passes. */
const codeOf = (bytes: Buffer, isV5 = false): number | undefined => packetProblem(parse(bytes, isV5), isV5)?.code;

/** An MQTT 5 CONNECT with raw property bytes, which mqtt-packet would not encode. */
const connectV5Raw = (properties: Buffer, clientId: Buffer | string = 'c'): Buffer =>
  frame(0x10, Buffer.concat([str('MQTT'), Buffer.from([5, 0x02]), u16(30), props(properties), str(clientId)]));

const TOPIC = '/devices/d1/events';

describe('packet validation', () => {
  test('lets every well-formed client packet through, MQTT 3.1.1 and 5, QoS 2 flows included', () => {
    const wellFormedV4: Buffer[] = [
      rawConnect('projects/p/locations/l/registries/r/devices/d1', 'unused', 'jwt'),
      v4({ cmd: 'connect', clientId: 'c', protocolVersion: 4, will: { topic: 'w', payload: Buffer.from('x'), qos: 0, retain: false } } as Packet),
      v4({ cmd: 'publish', topic: `${TOPIC}/ünï/😀`, payload: Buffer.from('x'), qos: 0, dup: false, retain: false }),
      v4({ cmd: 'publish', topic: TOPIC, payload: Buffer.from('x'), qos: 2, messageId: 7, dup: false, retain: false }),
      v4({ cmd: 'puback', messageId: 1 }),
      v4({ cmd: 'pubrec', messageId: 1 }),
      v4({ cmd: 'pubrel', messageId: 1 }),
      v4({ cmd: 'pubcomp', messageId: 1 }),
      v4({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/+/#', qos: 2 }] }),
      v4({ cmd: 'unsubscribe', messageId: 1, unsubscriptions: ['a/+/#', 'b'] }),
      v4({ cmd: 'pingreq' }),
      v4({ cmd: 'disconnect' }),
    ];
    for (const bytes of wellFormedV4) assert.equal(codeOf(bytes), undefined, bytes.toString('hex'));

    const user = { userProperties: { k: 'v', repeated: ['a', 'b'] } };
    const wellFormedV5: Buffer[] = [
      v5({
        cmd: 'connect', protocolVersion: 5, clientId: 'c', username: 'u', password: Buffer.from('p'),
        properties: { sessionExpiryInterval: 60, receiveMaximum: 1, maximumPacketSize: 100, topicAliasMaximum: 3, requestResponseInformation: true, requestProblemInformation: false, authenticationMethod: 'keyway-jwt', authenticationData: Buffer.from('t'), ...user },
        will: { topic: 'w', payload: Buffer.from('x'), qos: 1, retain: false, properties: { willDelayInterval: 5, payloadFormatIndicator: true, messageExpiryInterval: 9, contentType: 'text/plain', responseTopic: 'r', correlationData: Buffer.from('c'), ...user } },
      } as Packet),
      v5({
        cmd: 'publish', topic: TOPIC, payload: Buffer.from('x'), qos: 1, messageId: 3, dup: false, retain: false,
        properties: { payloadFormatIndicator: true, messageExpiryInterval: 60, topicAlias: 1, responseTopic: 'r', correlationData: Buffer.from('c'), contentType: 'ct', ...user },
      }),
      v5({ cmd: 'publish', topic: '', payload: Buffer.from('x'), qos: 0, dup: false, retain: false, properties: { topicAlias: 1 } }),
      v5({ cmd: 'puback', messageId: 1, reasonCode: 0x10, properties: { reasonString: 'r', ...user } }),
      v5({ cmd: 'pubrec', messageId: 1, reasonCode: 0x00 }),
      v5({ cmd: 'pubrel', messageId: 1, reasonCode: 0x92, properties: { reasonString: 'r' } }),
      v5({ cmd: 'pubcomp', messageId: 1 }),
      v5({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/#', qos: 1, nl: true, rap: true, rh: 2 }], properties: { subscriptionIdentifier: 5, ...user } }),
      v5({ cmd: 'unsubscribe', messageId: 1, unsubscriptions: ['a/#'], properties: user }),
      v5({ cmd: 'pingreq' }),
      v5({ cmd: 'disconnect', reasonCode: 0x04, properties: { sessionExpiryInterval: 0, reasonString: 'bye', ...user } }),
      v5({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'keyway-jwt', authenticationData: Buffer.from('t'), reasonString: 'r', ...user } }),
    ];
    for (const bytes of wellFormedV5) assert.equal(codeOf(bytes, true), undefined, bytes.toString('hex'));
  });

  test('ill-formed UTF-8 and U+0000 in any string a client sends is a malformed packet', () => {
    const withBad = (bad: Buffer, before: string, after = ''): Buffer => Buffer.concat([Buffer.from(before), bad, Buffer.from(after)]);
    for (const bad of BAD_UTF8) {
      const tag = bad.toString('hex');
      const cases: Array<[string, Buffer, boolean]> = [
        ['client id', rawConnect(withBad(bad, 'projects/p/'), 'u', 'p'), false],
        ['user name', frame(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x82]), u16(1), str('c'), str(withBad(bad, 'u'))])), false],
        ['will topic', frame(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x06]), u16(1), str('c'), str(withBad(bad, 'w/')), str('payload')])), false],
        ['MQTT 5 client id', connectV5Raw(Buffer.alloc(0), withBad(bad, 'c')), true],
        ['topic name', frame(0x30, Buffer.concat([str(withBad(bad, `${TOPIC}/`)), Buffer.from('x')])), false],
        ['topic name at QoS 1', frame(0x32, Buffer.concat([str(withBad(bad, '/devices/', '/state')), u16(1), Buffer.from('x')])), false],
        ['filter', frame(0x82, Buffer.concat([u16(1), str('ok'), Buffer.from([0]), str(withBad(bad, 'a/')), Buffer.from([1])])), false],
        ['unsubscribe filter', frame(0xa2, Buffer.concat([u16(1), str(withBad(bad, 'a/', '/#'))])), false],
        ['MQTT 5 topic name', frame(0x30, Buffer.concat([str(withBad(bad, TOPIC)), Buffer.from([0]), Buffer.from('x')])), true],
        ['user property name', frame(0x30, Buffer.concat([str(TOPIC), props(Buffer.concat([Buffer.from([0x26]), str(withBad(bad, 'k')), str('v')])), Buffer.from('x')])), true],
        ['user property value', frame(0x30, Buffer.concat([str(TOPIC), props(Buffer.concat([Buffer.from([0x26]), str('k'), str(withBad(bad, 'v'))])), Buffer.from('x')])), true],
        ['content type', frame(0x30, Buffer.concat([str(TOPIC), props(Buffer.concat([Buffer.from([0x03]), str(withBad(bad, 'text/'))])), Buffer.from('x')])), true],
        ['CONNECT user property', connectV5Raw(Buffer.concat([Buffer.from([0x26]), str(withBad(bad, 'k')), str('v')])), true],
      ];
      for (const [name, bytes, isV5] of cases) assert.equal(codeOf(bytes, isV5), MALFORMED, `${name} with ${tag}`);
    }
    assert.equal(isWellFormedString('ascii/ünïcode/😀'), true);
    assert.equal(isWellFormedString('a\u0000b'), false);
  });

  test('a SUBSCRIBE or UNSUBSCRIBE without filters and packet id 0 are protocol errors', () => {
    for (const isV5 of [false, true]) {
      const noProps = isV5 ? Buffer.from([0]) : Buffer.alloc(0);
      assert.equal(codeOf(frame(0x82, Buffer.concat([u16(1), noProps])), isV5), PROTOCOL_ERROR, 'empty SUBSCRIBE');
      assert.equal(codeOf(frame(0xa2, Buffer.concat([u16(1), noProps])), isV5), PROTOCOL_ERROR, 'empty UNSUBSCRIBE');
      assert.equal(codeOf(frame(0x82, Buffer.concat([u16(0), noProps, str('a'), Buffer.from([0])])), isV5), PROTOCOL_ERROR, 'SUBSCRIBE id 0');
      assert.equal(codeOf(frame(0xa2, Buffer.concat([u16(0), noProps, str('a')])), isV5), PROTOCOL_ERROR, 'UNSUBSCRIBE id 0');
      assert.equal(codeOf(frame(0x32, Buffer.concat([str(TOPIC), u16(0), noProps, Buffer.from('x')])), isV5), PROTOCOL_ERROR, 'PUBLISH id 0');
      assert.equal(codeOf(Buffer.from([0x40, 0x02, 0x00, 0x00]), isV5), PROTOCOL_ERROR, 'PUBACK id 0');
    }
    assert.equal(codeOf(frame(0x30, Buffer.concat([str(TOPIC), Buffer.from('x')]))), undefined, 'QoS 0 carries no packet id');
  });

  test('packets with a body where none belongs are malformed', () => {
    assert.equal(codeOf(Buffer.from([0xc0, 0x01, 0x00])), MALFORMED, 'MQTT 3.1.1 PINGREQ with a body');
    assert.equal(codeOf(Buffer.from([0xc0, 0x01, 0x00]), true), MALFORMED, 'MQTT 5 PINGREQ with a property length');
    assert.equal(codeOf(Buffer.from([0xe0, 0x01, 0x00])), MALFORMED, 'MQTT 3.1.1 DISCONNECT with a body');
    assert.equal(codeOf(Buffer.from([0x40, 0x03, 0x00, 0x01, 0x00])), MALFORMED, 'MQTT 3.1.1 PUBACK of three bytes');
    assert.equal(codeOf(Buffer.from([0x62, 0x03, 0x00, 0x01, 0x00])), MALFORMED, 'MQTT 3.1.1 PUBREL of three bytes');
  });

  test('MQTT 5 properties a packet type does not allow are malformed; repeated ones a protocol error', () => {
    const publish = (p: Buffer): Buffer => frame(0x30, Buffer.concat([str(TOPIC), props(p), Buffer.from('x')]));
    const notAllowed: Array<[string, Buffer]> = [
      ['PUBLISH with a session expiry interval', publish(Buffer.from([0x11, 0, 0, 0, 1]))],
      ['PUBLISH with a subscription identifier', publish(Buffer.from([0x0b, 0x01]))],
      ['PUBLISH with a reason string', publish(Buffer.concat([Buffer.from([0x1f]), str('r')]))],
      ['SUBSCRIBE with a payload format indicator', frame(0x82, Buffer.concat([u16(1), props(Buffer.from([0x01, 0x01])), str('a'), Buffer.from([1])]))],
      ['UNSUBSCRIBE with a subscription identifier', frame(0xa2, Buffer.concat([u16(1), props(Buffer.from([0x0b, 0x01])), str('a')]))],
      ['PUBACK with a content type', Buffer.concat([Buffer.from([0x40]), remainingLength(3 + 1 + 4), u16(1), Buffer.from([0x00]), props(Buffer.concat([Buffer.from([0x03]), str('c')]))])],
      ['DISCONNECT with a will delay interval', Buffer.from([0xe0, 0x07, 0x00, 0x05, 0x18, 0, 0, 0, 1])],
      ['DISCONNECT with a server reference', Buffer.concat([Buffer.from([0xe0, 0x06, 0x00, 0x04, 0x1c]), str('s')])],
      ['AUTH with a topic alias', Buffer.concat([Buffer.from([0xf0, 0x05, 0x19, 0x03, 0x23]), u16(1)])],
    ];
    for (const [name, bytes] of notAllowed) assert.equal(codeOf(bytes, true), MALFORMED, name);

    const twice: Array<[string, Buffer]> = [
      ['PUBLISH with two content types', publish(Buffer.concat([Buffer.from([0x03]), str('a'), Buffer.from([0x03]), str('b')]))],
      ['PUBLISH with two topic aliases', publish(Buffer.from([0x23, 0, 1, 0x23, 0, 2]))],
      ['SUBSCRIBE with two subscription identifiers', frame(0x82, Buffer.concat([u16(1), props(Buffer.from([0x0b, 0x01, 0x0b, 0x02])), str('a'), Buffer.from([1])]))],
    ];
    for (const [name, bytes] of twice) assert.equal(codeOf(bytes, true), PROTOCOL_ERROR, name);

    assert.equal(codeOf(frame(0x82, Buffer.concat([u16(1), props(Buffer.from([0x0b, 0x00])), str('a'), Buffer.from([1])])), true), PROTOCOL_ERROR, 'subscription identifier 0');
    assert.equal(codeOf(Buffer.concat([Buffer.from([0xf0, 0x06, 0x19, 0x04, 0x16]), str('t')]), true), PROTOCOL_ERROR, 'AUTH data without a method');
  });

  test('a user property cut short, which the encoder would throw on when delivering it, is malformed', () => {
    // The key's length runs past the property section, so the codec reads the value as null.
    const good = v5({ cmd: 'publish', topic: TOPIC, payload: Buffer.from('x'.repeat(40)), qos: 0, dup: false, retain: false, properties: { userProperties: { a: 'b' } } });
    const overrun = Buffer.from(good);
    overrun[overrun.indexOf(Buffer.from([0x26, 0x00, 0x01, 0x61])) + 2] = 0x21;
    const packet = parse(overrun, true);
    assert.throws(() => mqttPacket.generate(packet, { protocolVersion: 5 }), 'the codec cannot encode what it parsed');
    assert.equal(packetProblem(packet, true)?.code, MALFORMED);
    // A message expiry interval cut short at the end of the packet parses as -1.
    assert.equal(codeOf(frame(0x30, Buffer.concat([str(TOPIC), Buffer.from([0x01, 0x02])])), true), MALFORMED, 'int32 cut short');
  });

  test('MQTT 5 CONNECT properties: only the CONNECT ones, at most once, and no zero limits', () => {
    const malformed: Array<[string, Buffer]> = [
      ['a will-only property (payload format indicator)', Buffer.from([0x01, 0x01])],
      ['a PUBLISH-only property (topic alias)', Buffer.from([0x23, 0x00, 0x01])],
      ['a CONNACK-only property (maximum QoS)', Buffer.from([0x24, 0x01])],
      ['a DISCONNECT-only property (server reference)', Buffer.concat([Buffer.from([0x1c]), str('s')])],
      ['a reason string', Buffer.concat([Buffer.from([0x1f]), str('r')])],
    ];
    for (const [name, p] of malformed) assert.equal(codeOf(connectV5Raw(p)), MALFORMED, name);
    const protocolErrors: Array<[string, Buffer]> = [
      ['receive maximum 0', Buffer.from([0x21, 0x00, 0x00])],
      ['receive maximum twice', Buffer.from([0x21, 0x00, 0x01, 0x21, 0x00, 0x02])],
      ['maximum packet size 0', Buffer.from([0x27, 0x00, 0x00, 0x00, 0x00])],
      ['session expiry twice', Buffer.from([0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2])],
      ['authentication method twice', Buffer.concat([Buffer.from([0x15]), str('keyway-jwt'), Buffer.from([0x15]), str('keyway-jwt')])],
      ['authentication data without a method', Buffer.concat([Buffer.from([0x16]), str('jwt')])],
    ];
    for (const [name, p] of protocolErrors) assert.equal(codeOf(connectV5Raw(p)), PROTOCOL_ERROR, name);
    assert.equal(codeOf(connectV5Raw(Buffer.concat([Buffer.from([0x26]), str('k'), str('v'), Buffer.from([0x26]), str('k'), str('w')]))), undefined, 'user properties may repeat');

    // Will properties are checked against the will's own list.
    const will = (p: Buffer): Buffer =>
      frame(0x10, Buffer.concat([str('MQTT'), Buffer.from([5, 0x06]), u16(30), props(Buffer.alloc(0)), str('c'), props(p), str('w'), str('x')]));
    assert.equal(codeOf(will(Buffer.from([0x18, 0, 0, 0, 5]))), undefined, 'will delay interval');
    assert.equal(codeOf(will(Buffer.from([0x11, 0, 0, 0, 5]))), MALFORMED, 'session expiry on the will');
    assert.equal(codeOf(will(Buffer.from([0x18, 0, 0, 0, 5, 0x18, 0, 0, 0, 6]))), PROTOCOL_ERROR, 'will delay twice');
  });
});
