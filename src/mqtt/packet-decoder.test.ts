import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { decodePacket } from './packet-decoder.js';

/** What mqtt-packet's own parser, fresh for each frame, makes of it (as a plain object). */
function reference(frame: Buffer, v5: boolean): Packet | Error {
  const parser = mqttPacket.parser({ protocolVersion: v5 ? 5 : 4 });
  let packet: Packet | undefined;
  let error: Error | undefined;
  parser.on('packet', (p: Packet) => (packet = p));
  parser.on('error', (e: Error) => (error = e));
  parser.parse(frame);
  return error ?? packet ?? new Error('incomplete packet');
}

const plain = (p: Packet | Error): unknown => (p instanceof Error ? 'error' : { ...p });

const publishes = (v5: boolean): Packet[] => [
  { cmd: 'publish', topic: '/devices/d1/events', payload: Buffer.from('hello'), qos: 0, dup: false, retain: false },
  { cmd: 'publish', topic: '/devices/d1/events/a/b', payload: Buffer.alloc(0), qos: 1, messageId: 65535, dup: true, retain: true },
  { cmd: 'publish', topic: 'ünïcødé/☃', payload: Buffer.alloc(300, 1), qos: 1, messageId: 1, dup: false, retain: false },
  { cmd: 'publish', topic: '', payload: Buffer.from('x'), qos: 0, dup: false, retain: true },
  ...(v5
    ? [
        {
          cmd: 'publish',
          topic: 't',
          payload: Buffer.from('p'),
          qos: 1,
          messageId: 7,
          dup: false,
          retain: false,
          properties: { contentType: 'text/plain', userProperties: { a: 'b' } },
        } as Packet,
      ]
    : []),
  { cmd: 'puback', messageId: 42 },
  { cmd: 'pingreq' },
  { cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'a/#', qos: 1 }] },
];

describe('decodePacket', () => {
  for (const v5 of [false, true]) {
    test(`decodes MQTT ${v5 ? '5' : '3.1.1'} packets exactly as mqtt-packet does`, () => {
      for (const packet of publishes(v5)) {
        const frame = mqttPacket.generate(packet, { protocolVersion: v5 ? 5 : 4 });
        assert.deepEqual(plain(decodePacket(frame, v5)), plain(reference(frame, v5)), `${packet.cmd} ${JSON.stringify(packet)}`);
      }
    });

    test(`agrees with mqtt-packet on truncated MQTT ${v5 ? '5' : '3.1.1'} PUBLISH bodies`, () => {
      const frame = mqttPacket.generate(
        { cmd: 'publish', topic: 'abc', payload: Buffer.from('12'), qos: 1, messageId: 9, dup: false, retain: false },
        { protocolVersion: v5 ? 5 : 4 },
      );
      const body = frame.subarray(2);
      for (let keep = 0; keep <= body.length; keep++) {
        const cut = Buffer.concat([Buffer.from([frame[0] as number, keep]), body.subarray(0, keep)]);
        assert.deepEqual(plain(decodePacket(cut, v5)), plain(reference(cut, v5)), `body cut to ${keep} bytes`);
      }
    });
  }

  test('a PUBLISH payload is a view of the frame, not a copy', () => {
    const frame = mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.from('abc'), qos: 0, dup: false, retain: false });
    const packet = decodePacket(frame, false);
    assert.ok(!(packet instanceof Error) && packet.cmd === 'publish', 'a PUBLISH');
    assert.equal((packet.payload as Buffer).buffer, frame.buffer);
  });

  test('the shared parser forgets a CONNECT and recovers from a malformed packet', () => {
    const connect = mqttPacket.generate(
      { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 10, clientId: 'c', properties: { sessionExpiryInterval: 5 } },
      { protocolVersion: 5 },
    );
    const decoded = decodePacket(connect, false);
    assert.ok(!(decoded instanceof Error) && decoded.cmd === 'connect' && decoded.protocolVersion === 5, 'an MQTT 5 CONNECT');
    // The next MQTT 3.1.1 frame is decoded the 3.1.1 way, right after it.
    const subscribe = mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'x', qos: 0 }] });
    assert.deepEqual(plain(decodePacket(subscribe, false)), plain(reference(subscribe, false)));
    // A SUBSCRIBE with its flags right but its body cut short is an error, and the next frame is fine.
    assert.ok(decodePacket(Buffer.from([0x82, 0x01, 0x00]), false) instanceof Error, 'truncated SUBSCRIBE refused');
    assert.deepEqual(plain(decodePacket(subscribe, false)), plain(reference(subscribe, false)));
  });
});
