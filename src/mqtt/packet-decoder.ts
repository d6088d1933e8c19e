/**
 * Decodes one complete MQTT frame (the frame reader only ever hands over whole packets). The two
 * packets that make up nearly all traffic, PUBLISH without MQTT 5 properties and a bare PUBACK,
 * are decoded here directly into the very objects mqtt-packet would produce; everything else goes
 * to mqtt-packet's parser. That parser is shared by every connection: it is fed whole frames
 * synchronously, so it holds nothing between two calls, and a connection needs no parser of its
 * own (about 1.6 KB each, plus the CONNECT it would keep referencing).
 */
import mqttPacket, { type IPubackPacket, type Packet } from 'mqtt-packet';

interface SharedParser {
  parse(frame: Buffer): number;
  on(event: 'packet', listener: (packet: Packet) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** What the parser decodes by; parsing a CONNECT replaces it with that packet. */
  settings: object;
}

const V311 = { protocolVersion: 4 } as const;
const V5 = { protocolVersion: 5 } as const;

let parser: SharedParser = newParser();
let parsed: Packet | undefined;
let failure: Error | undefined;

function newParser(): SharedParser {
  const p = mqttPacket.parser(V311) as unknown as SharedParser;
  p.on('packet', (packet) => (parsed = packet));
  p.on('error', (error) => (failure = error));
  return p;
}

/**
 * The packet in `frame`, decoded as MQTT 5 when `v5`, or the Error that says why it is malformed.
 * `frame` must be exactly one packet, fixed header included.
 */
export function decodePacket(frame: Buffer, v5: boolean): Packet | Error {
  const type = (frame[0] as number) >> 4;
  if (type === 3) return decodePublish(frame, v5) ?? decodeWithParser(frame, v5);
  if (type === 4 && frame.length === 4) {
    // PUBACK without reason code: MQTT 5 §3.4.2.1 reads it as 0x00 (success), as mqtt-packet does.
    const puback = { cmd: 'puback', retain: false, qos: 0, dup: false, length: 2, topic: null, payload: null, messageId: frame.readUInt16BE(2) } as IPubackPacket;
    if (v5) puback.reasonCode = 0;
    return puback;
  }
  return decodeWithParser(frame, v5);
}

/** A PUBLISH the fast way, or undefined for anything unusual (MQTT 5 properties, a short frame): the parser decides those. */
function decodePublish(frame: Buffer, v5: boolean): Packet | undefined {
  const first = frame[0] as number;
  const qos = (first >> 1) & 3;
  let pos = 1;
  while (((frame[pos++] as number) & 0x80) !== 0);
  const length = frame.length - pos;
  if (frame.length - pos < 2) return undefined;
  const topicLength = frame.readUInt16BE(pos);
  pos += 2;
  const topicEnd = pos + topicLength;
  if (topicEnd > frame.length) return undefined;
  const topic = frame.toString('utf8', pos, topicEnd);
  pos = topicEnd;
  let messageId: number | undefined;
  if (qos > 0) {
    if (pos + 2 > frame.length) return undefined;
    messageId = frame.readUInt16BE(pos);
    pos += 2;
  }
  if (v5) {
    // Only an empty property section is decoded here.
    if (pos >= frame.length || frame[pos] !== 0) return undefined;
    pos++;
  }
  const packet = {
    cmd: 'publish',
    retain: (first & 1) !== 0,
    qos,
    dup: (first & 8) !== 0,
    length,
    topic,
    payload: frame.subarray(pos),
  } as Packet & { messageId?: number };
  if (messageId !== undefined) packet.messageId = messageId;
  return packet;
}

function decodeWithParser(frame: Buffer, v5: boolean): Packet | Error {
  const p = parser;
  p.settings = v5 ? V5 : V311;
  parsed = undefined;
  failure = undefined;
  let left = 0;
  try {
    left = p.parse(frame);
  } catch (e) {
    failure = e instanceof Error ? e : new Error(String(e));
  }
  const packet = parsed;
  const error = failure;
  parsed = undefined;
  failure = undefined;
  // Whatever CONNECT it just decoded, the parser must not keep referencing it.
  p.settings = V311;
  if (error !== undefined || packet === undefined || left !== 0) {
    // It may hold part of a packet now: the next frame gets a clean parser.
    parser = newParser();
    return error ?? new Error('incomplete packet');
  }
  return packet;
}
