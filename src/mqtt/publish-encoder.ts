/**
 * Encodes a PUBLISH without MQTT 5 properties straight into one buffer. mqtt-packet's generator
 * streams through an emitter with debug hooks and copies twice; this is the packet a broker sends
 * most (every delivery to an MQTT 3.1.1 subscriber), so it gets a direct path with the same bytes.
 */
import type { QoS } from './topic-trie.js';

/**
 * The PUBLISH bytes. `messageId` is required for QoS 1 and 2. `v5` adds the empty property section
 * MQTT 5 requires; a PUBLISH with properties must go through mqtt-packet.
 */
export function encodePublish(
  topic: string,
  payload: Buffer,
  qos: QoS,
  dup: boolean,
  retain: boolean,
  messageId: number | undefined,
  v5: boolean,
): Buffer {
  const topicBytes = Buffer.byteLength(topic, 'utf8');
  const length = 2 + topicBytes + (qos > 0 ? 2 : 0) + (v5 ? 1 : 0) + payload.length;
  const lengthBytes = length < 0x80 ? 1 : length < 0x4000 ? 2 : length < 0x200000 ? 3 : 4;
  const out = Buffer.allocUnsafe(1 + lengthBytes + length);
  out[0] = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0);
  let pos = 1;
  let rest = length;
  do {
    const digit = rest % 0x80;
    rest = Math.floor(rest / 0x80);
    out[pos++] = rest > 0 ? digit | 0x80 : digit;
  } while (rest > 0);
  out.writeUInt16BE(topicBytes, pos);
  pos += 2;
  pos += out.write(topic, pos, 'utf8');
  if (qos > 0) {
    if (messageId === undefined) throw new Error('a QoS 1 or 2 PUBLISH needs a packet id');
    out.writeUInt16BE(messageId, pos);
    pos += 2;
  }
  if (v5) out[pos++] = 0;
  payload.copy(out, pos);
  return out;
}
