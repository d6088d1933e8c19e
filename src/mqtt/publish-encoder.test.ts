import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket from 'mqtt-packet';
import { encodePublish } from './publish-encoder.js';
import type { QoS } from './topic-trie.js';

describe('encodePublish', () => {
  test('makes the same bytes as mqtt-packet, for both protocol levels and every remaining-length size', () => {
    const topics = ['t', 'registries/r/devices/d/events/a/b', 'ünï/☃', ''];
    for (const v5 of [false, true]) {
      for (const topic of topics) {
        for (const size of [0, 1, 60, 200, 20_000, 300_000]) {
          for (const qos of [0, 1, 2] as QoS[]) {
            const payload = Buffer.alloc(size, size % 251);
            const flags = { dup: qos > 0 && size % 2 === 0, retain: size === 1 };
            const messageId = qos > 0 ? 1 + (size % 65535) : undefined;
            const expected = mqttPacket.generate(
              { cmd: 'publish', topic, payload, qos, ...flags, ...(messageId === undefined ? {} : { messageId }) },
              { protocolVersion: v5 ? 5 : 4 },
            );
            const actual = encodePublish(topic, payload, qos, flags.dup, flags.retain, messageId, v5);
            assert.ok(actual.equals(expected), `v5=${v5} topic=${topic} size=${size} qos=${qos}`);
          }
        }
      }
    }
  });

  test('refuses a QoS 1 PUBLISH without a packet id', () => {
    assert.throws(() => encodePublish('t', Buffer.alloc(1), 1, false, false, undefined, false), /packet id/);
  });
});
