import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { DeviceMessage, Message } from './message.js';

function parse(bytes: Buffer, v5: boolean): IPublishPacket {
  const parser = mqttPacket.parser({ protocolVersion: v5 ? 5 : 4 });
  let got: Packet | undefined;
  parser.on('packet', (p: Packet) => (got = p));
  parser.parse(bytes);
  assert.equal(got?.cmd, 'publish');
  return got as IPublishPacket;
}

describe('Message encoding', () => {
  const topic = 'a/topic/with/ünïcode';
  const big = new Message(topic, Buffer.alloc(300, 1), 2, false, Infinity, undefined, { contentType: 'text/plain', userProperties: { k: 'v' } });

  test('QoS 0 bytes are shared between subscribers of a protocol version', () => {
    assert.equal(big.encode(false, 0, false, undefined, false, undefined, 0), big.encode(false, 0, false, undefined, false, undefined, 0));
    assert.equal(big.encode(true, 0, false, undefined, false, undefined, 0), big.encode(true, 0, false, undefined, false, undefined, 0));
    assert.notEqual(big.encode(true, 0, false, undefined, false, undefined, 0), big.encode(false, 0, false, undefined, false, undefined, 0));
  });

  test('QoS 1 and 2 copies carry their own packet id and equal a fresh encoding', () => {
    for (const v5 of [false, true]) {
      for (const qos of [2, 1, 2] as const) {
        for (const id of [1, 300, 65535]) {
          const bytes = big.encode(v5, qos, false, id, false, undefined, 0);
          const fresh = mqttPacket.generate(
            { cmd: 'publish', topic, payload: big.payload, qos, dup: false, retain: false, messageId: id, ...(v5 ? { properties: big.properties } : {}) },
            { protocolVersion: v5 ? 5 : 4 },
          );
          assert.deepEqual(bytes, fresh, `v5 ${v5} qos ${qos} id ${id}`);
          const p = parse(bytes, v5);
          assert.equal(p.messageId, id);
          assert.equal(p.qos, qos);
        }
      }
    }
  });

  test('retain, DUP, expiry and subscription identifiers are encoded per delivery', () => {
    const expiring = new Message('t', Buffer.from('x'), 1, true, 10_500, undefined);
    const p = parse(expiring.encode(true, 1, true, 9, true, [3, 4], 1_000), true);
    assert.deepEqual([p.retain, p.dup, p.messageId, p.properties?.messageExpiryInterval, p.properties?.subscriptionIdentifier], [true, true, 9, 10, [3, 4]]);
    const plainV4 = parse(expiring.encode(false, 1, false, 2, false, [3], 1_000), false);
    assert.equal(plainV4.properties, undefined, 'MQTT 3.1.1 has no properties');
  });

  test('a device message carries its attributes to MQTT 5 only, and its expiry as the remaining interval', () => {
    const m = new DeviceMessage('registries/r/devices/d/events/sub', Buffer.from('x'), 1, 61_000, { deviceId: 'd' }, '/sub', {
      messageExpiryInterval: 60,
      userProperties: { deviceId: 'forged', own: 'yes' },
    });
    const v5 = parse(m.encode(true, 1, false, 1, false, undefined, 1_000), true);
    assert.deepEqual({ ...v5.properties?.userProperties }, { own: 'yes', deviceId: 'd', subFolder: 'sub' });
    assert.equal(v5.properties?.messageExpiryInterval, 60);
    assert.equal(parse(m.encode(false, 1, false, 1, false, undefined, 1_000), false).properties, undefined);
  });
});
