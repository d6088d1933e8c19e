/**
 * Input for the broker's fuzz test: a seeded PRNG and generators of hostile byte streams, each with
 * what the broker may do about it. Only bytes are built here; the test drives them over TLS.
 */
import mqttPacket, { type Packet } from 'mqtt-packet';

/** mulberry32: small, fast and deterministic, so a seed reproduces a whole run. */
export class Prng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)] as T;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }
}

/** Before CONNECT, or right after a successful CONNECT of a device or a backend. */
export type Phase = 'pre' | 'device' | 'backend';

/**
 * - `close`: the input is malformed or forbidden: the broker closes at once, sending nothing but
 *   the CONNACK codes listed in `connack` (before CONNECT) or a DISCONNECT (MQTT 5).
 * - `any`: the outcome depends on the bytes: whatever the broker sends must be well-formed, and the
 *   connection must end within the liveness bounds (or be accepted, for a CONNECT with credentials).
 */
export type Expectation = 'close' | 'any';

export interface FuzzCase {
  readonly name: string;
  readonly phase: Phase;
  /** Written one after the other, so that packets also arrive split across reads. */
  readonly chunks: readonly Buffer[];
  readonly expect: Expectation;
  /** CONNACK codes the broker may answer with (MQTT 3.1.1 return codes or MQTT 5 reason codes). */
  readonly connack: readonly number[];
  /** The CONNECT in play is MQTT 5: the broker may answer in MQTT 5. */
  readonly v5: boolean;
  /** For well-formed input: packet types the broker must answer with, in this order (others may come between). */
  readonly answers?: readonly number[];
  /** An MQTT 5 backend subscribed to the registry's events is connected while the case runs. */
  readonly subscriber?: boolean;
}

/** What a case may use to build packets the broker would accept. */
export interface Identity {
  readonly deviceId: string;
  readonly clientId: string;
  readonly token: string;
  /** A backend's service account (`{project}/{id}`) and API key. */
  readonly backendUser: string;
  readonly backendKey: string;
  readonly backendClientId: string;
}

// ---- raw encoding ------------------------------------------------------------------------------

export function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    out.push((n % 128) | (n >= 128 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return Buffer.from(out);
}

export const frame = (header: number, body: Buffer): Buffer =>
  Buffer.concat([Buffer.from([header]), remainingLength(body.length), body]);

/** An MQTT string from raw bytes, which need not be UTF-8. */
export const str = (bytes: Buffer | string): Buffer => {
  const b = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};

const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);

/** A 3.1.1 CONNECT laid out by hand, so the client id and user name may be any bytes. */
export function rawConnect(clientId: Buffer | string, username?: string, password?: string, keepalive = 1, extraFlags = 0): Buffer {
  const flags = (username !== undefined ? 0x80 : 0) | (password !== undefined ? 0x40 : 0) | 0x02 | extraFlags;
  const parts = [str('MQTT'), Buffer.from([4, flags]), u16(keepalive), str(clientId)];
  if (username !== undefined) parts.push(str(username));
  if (password !== undefined) parts.push(str(password));
  return frame(0x10, Buffer.concat(parts));
}

const v4 = (p: Packet): Buffer => mqttPacket.generate(p);
const v5 = (p: Packet): Buffer => mqttPacket.generate(p, { protocolVersion: 5 });

/** Ill-formed UTF-8 (MQTT 3.1.1 §1.5.3: an overlong NUL, a lone surrogate, a stray continuation, 0xFF) and the forbidden U+0000. */
export const BAD_UTF8: readonly Buffer[] = [
  Buffer.from([0xc0, 0x80]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0x80]),
  Buffer.from([0xff]),
  Buffer.from([0x00]),
];

// ---- the catalogue: every kind of malformed input, once ------------------------------------------

const [CONNACK, PUBACK, SUBACK, UNSUBACK, PINGRESP] = [2, 4, 9, 11, 13];
const V4_REFUSED = [1, 5] as const;
/** MQTT 5 CONNACK reason codes a refused or not (yet) served MQTT 5 CONNECT may get. */
const V5_REFUSED = [0x80, 0x81, 0x82, 0x84, 0x86, 0x87, 0x8c, 0x95] as const;

function connectV5(id: Identity, properties: Record<string, unknown>, credentials: boolean, keepalive = 1): Buffer {
  return v5({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 5,
    clean: true,
    clientId: credentials ? id.clientId : 'fuzz-v5',
    keepalive,
    username: 'unused',
    ...(credentials ? { password: Buffer.from(id.token) } : {}),
    properties,
  } as Packet);
}

/** A device's MQTT 5 CONNECT (keep-alive 0) with raw property bytes, which mqtt-packet would not encode. */
function connectV5WithRawProperties(id: Identity, props: Buffer): Buffer {
  const body = Buffer.concat([
    str('MQTT'),
    Buffer.from([5, 0xc2]),
    u16(0),
    remainingLength(props.length),
    props,
    str(id.clientId),
    str('unused'),
    str(id.token),
  ]);
  return frame(0x10, body);
}

export function catalogue(id: Identity): FuzzCase[] {
  const cases: FuzzCase[] = [];
  const add = (c: Partial<FuzzCase> & Pick<FuzzCase, 'name' | 'phase' | 'chunks'>): void => {
    cases.push({ expect: 'close', connack: [], v5: false, ...c });
  };
  const events = `/devices/${id.deviceId}/events`;

  // Every packet type but CONNECT before CONNECT, well-formed apart from being first.
  const beforeConnect: Array<[string, Buffer]> = [
    ['CONNACK', Buffer.from([0x20, 0x02, 0x00, 0x00])],
    ['PUBLISH', v4({ cmd: 'publish', topic: events, payload: Buffer.from('x'), qos: 0, dup: false, retain: false })],
    ['PUBACK', Buffer.from([0x40, 0x02, 0x00, 0x01])],
    ['PUBREC', Buffer.from([0x50, 0x02, 0x00, 0x01])],
    ['PUBREL', Buffer.from([0x62, 0x02, 0x00, 0x01])],
    ['PUBCOMP', Buffer.from([0x70, 0x02, 0x00, 0x01])],
    ['SUBSCRIBE', v4({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'registries/#', qos: 0 }] })],
    ['SUBACK', Buffer.from([0x90, 0x03, 0x00, 0x01, 0x00])],
    ['UNSUBSCRIBE', v4({ cmd: 'unsubscribe', messageId: 1, unsubscriptions: ['registries/#'] })],
    ['UNSUBACK', Buffer.from([0xb0, 0x02, 0x00, 0x01])],
    ['PINGREQ', Buffer.from([0xc0, 0x00])],
    ['PINGRESP', Buffer.from([0xd0, 0x00])],
    ['DISCONNECT', Buffer.from([0xe0, 0x00])],
    ['AUTH', Buffer.from([0xf0, 0x00])],
    ['reserved type 0', Buffer.from([0x00, 0x00])],
  ];
  for (const [name, bytes] of beforeConnect) add({ name: `${name} before CONNECT`, phase: 'pre', chunks: [bytes] });

  // Packets a server never receives, or that belong to QoS 2 flows, after CONNECT.
  const serverOnly: Array<[string, Buffer]> = [
    ['CONNACK', Buffer.from([0x20, 0x02, 0x00, 0x00])],
    ['PUBREC', Buffer.from([0x50, 0x02, 0x00, 0x01])],
    ['PUBREL', Buffer.from([0x62, 0x02, 0x00, 0x01])],
    ['PUBCOMP', Buffer.from([0x70, 0x02, 0x00, 0x01])],
    ['SUBACK', Buffer.from([0x90, 0x03, 0x00, 0x01, 0x00])],
    ['UNSUBACK', Buffer.from([0xb0, 0x02, 0x00, 0x01])],
    ['PINGRESP', Buffer.from([0xd0, 0x00])],
    ['AUTH', Buffer.from([0xf0, 0x00])],
    ['reserved type 0', Buffer.from([0x00, 0x00])],
    ['second CONNECT', rawConnect(id.clientId, 'unused', id.token)],
  ];
  for (const phase of ['device', 'backend'] as const) {
    for (const [name, bytes] of serverOnly) add({ name: `${name} after CONNECT (${phase})`, phase, chunks: [bytes] });
  }

  // Reserved flag bits (MQTT 3.1.1 §2.2.2) and reserved CONNECT flag (§3.1.2.3).
  const reservedFlags: Array<[string, Buffer]> = [
    ['PUBACK 0x41', Buffer.from([0x41, 0x02, 0x00, 0x01])],
    ['SUBSCRIBE 0x80', frame(0x80, Buffer.concat([u16(1), str(`/devices/${id.deviceId}/config`), Buffer.from([0])]))],
    ['SUBSCRIBE 0x83', frame(0x83, Buffer.concat([u16(1), str(`/devices/${id.deviceId}/config`), Buffer.from([0])]))],
    ['UNSUBSCRIBE 0xA0', frame(0xa0, Buffer.concat([u16(1), str(`/devices/${id.deviceId}/config`)]))],
    ['PINGREQ 0xC1', Buffer.from([0xc1, 0x00])],
    ['PINGREQ 0xC8', Buffer.from([0xc8, 0x00])],
    ['DISCONNECT 0xE2', Buffer.from([0xe2, 0x00])],
    ['PUBLISH QoS 3', frame(0x36, Buffer.concat([str(events), u16(1), Buffer.from('x')]))],
    ['SUBSCRIBE options bits 7-2', frame(0x82, Buffer.concat([u16(1), str(`/devices/${id.deviceId}/config`), Buffer.from([0x04])]))],
    ['SUBSCRIBE QoS 3', frame(0x82, Buffer.concat([u16(1), str(`/devices/${id.deviceId}/config`), Buffer.from([0x03])]))],
  ];
  for (const phase of ['device', 'backend'] as const) {
    // A SUBSCRIBE or UNSUBSCRIBE must carry at least one filter (MQTT 3.1.1 §3.8.3, §3.10.3).
    add({ name: `SUBSCRIBE without topic filters (${phase})`, phase, chunks: [Buffer.from([0x82, 0x02, 0x00, 0x01])] });
    add({ name: `UNSUBSCRIBE without topic filters (${phase})`, phase, chunks: [Buffer.from([0xa2, 0x02, 0x00, 0x01])] });
    for (const [name, bytes] of reservedFlags) add({ name: `reserved bits: ${name} (${phase})`, phase, chunks: [bytes] });
  }
  add({ name: 'reserved bits: CONNECT 0x11', phase: 'pre', chunks: [Buffer.concat([Buffer.from([0x11]), rawConnect(id.clientId, 'unused', id.token).subarray(1)])] });
  add({ name: 'reserved bits: CONNECT flags bit 0', phase: 'pre', chunks: [rawConnect(id.clientId, 'unused', id.token, 1, 0x01)] });

  // Remaining length: five bytes, over the bound, and truncated.
  for (const phase of ['pre', 'device', 'backend'] as const) {
    const type = phase === 'pre' ? 0x10 : 0x30;
    add({ name: `remaining length of five bytes (${phase})`, phase, chunks: [Buffer.from([type, 0xff, 0xff, 0xff, 0xff, 0x7f])] });
    add({ name: `remaining length of five zero-valued bytes (${phase})`, phase, chunks: [Buffer.from([type, 0x80, 0x80, 0x80, 0x80, 0x00])] });
    add({ name: `remaining length of 256 MB, the maximum (${phase})`, phase, chunks: [Buffer.from([type, 0xff, 0xff, 0xff, 0x7f])] });
    add({ name: `remaining length over the packet bound, body withheld (${phase})`, phase, chunks: [Buffer.from([type, 0x80, 0x80, 0x80, 0x01])] });
    add({ name: `truncated remaining length (${phase})`, phase, chunks: [Buffer.from([type, 0xff, 0xff])], expect: 'any' });
  }

  // Invalid UTF-8 and U+0000 in client ids, topics and filters: MQTT 3.1.1 §1.5.3 closes the connection.
  BAD_UTF8.forEach((bad, i) => {
    const tag = `#${i} ${bad.toString('hex')}`;
    const deviceIdWithBad = Buffer.concat([Buffer.from(id.clientId), bad]);
    add({ name: `invalid UTF-8 in a device client id ${tag}`, phase: 'pre', chunks: [rawConnect(deviceIdWithBad, 'unused', id.token)], connack: V4_REFUSED });
    add({ name: `invalid UTF-8 in a backend client id ${tag}`, phase: 'pre', chunks: [rawConnect(Buffer.concat([Buffer.from('fuzz-'), bad]), id.backendUser, id.backendKey)], connack: V4_REFUSED });
    add({ name: `invalid UTF-8 in a will topic ${tag}`, phase: 'pre', chunks: [frame(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0xc6]), u16(1), str(id.clientId), str(Buffer.concat([Buffer.from('w/'), bad])), str('will'), str('unused'), str(id.token)]))], connack: V4_REFUSED });
    add({ name: `invalid UTF-8 in a user name ${tag}`, phase: 'pre', chunks: [frame(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0xc2]), u16(1), str(id.clientId), str(Buffer.concat([Buffer.from('u'), bad])), str(id.token)]))], connack: V4_REFUSED });
    add({ name: `invalid UTF-8 in a device's own event subfolder ${tag}`, phase: 'device', chunks: [frame(0x32, Buffer.concat([str(Buffer.concat([Buffer.from(`${events}/`), bad])), u16(7), Buffer.from('x')]))] });
    add({ name: `invalid UTF-8 in a device topic ${tag}`, phase: 'device', chunks: [frame(0x30, Buffer.concat([str(Buffer.concat([Buffer.from('/devices/'), bad, Buffer.from('/events')])), Buffer.from('x')]))] });
    add({ name: `invalid UTF-8 in a device filter ${tag}`, phase: 'device', chunks: [frame(0x82, Buffer.concat([u16(1), str(Buffer.concat([Buffer.from(`/devices/${id.deviceId}/config`), bad])), Buffer.from([0])]))] });
    add({ name: `invalid UTF-8 in a backend filter ${tag}`, phase: 'backend', chunks: [frame(0x82, Buffer.concat([u16(1), str(Buffer.concat([Buffer.from('registries/fleet/devices/'), bad, Buffer.from('/events')])), Buffer.from([0])]))] });
    add({ name: `invalid UTF-8 in a backend unsubscribe ${tag}`, phase: 'backend', chunks: [frame(0xa2, Buffer.concat([u16(1), str(Buffer.concat([Buffer.from('registries/'), bad]))]))] });
  });

  // MQTT 5 CONNECTs with properties (all well-formed, then malformed ones).
  const wellFormed: Array<[string, Record<string, unknown>]> = [
    ['session expiry, receive maximum, maximum packet size', { sessionExpiryInterval: 60, receiveMaximum: 10, maximumPacketSize: 4096 }],
    ['topic alias maximum, request response and problem information', { topicAliasMaximum: 5, requestResponseInformation: true, requestProblemInformation: false }],
    ['user properties', { userProperties: { a: 'b', c: ['d', 'e'] } }],
    ['authentication method and data', { authenticationMethod: 'JWT', authenticationData: Buffer.from('x') }],
  ];
  for (const [name, properties] of wellFormed) {
    add({ name: `MQTT 5 CONNECT with ${name}, device credentials`, phase: 'pre', chunks: [connectV5(id, properties, true)], expect: 'any', connack: [0x00, ...V5_REFUSED], v5: true });
    add({ name: `MQTT 5 CONNECT with ${name}, no credentials`, phase: 'pre', chunks: [connectV5(id, properties, false)], connack: V5_REFUSED, v5: true });
  }
  const badProperties: Array<[string, Buffer]> = [
    ['a will-only property (payload format indicator)', Buffer.from([0x01, 0x01])],
    ['a PUBLISH-only property (topic alias)', Buffer.from([0x23, 0x00, 0x01])],
    ['a CONNACK-only property (maximum QoS)', Buffer.from([0x24, 0x01])],
    ['an unknown property id', Buffer.from([0x7f, 0x00])],
    ['receive maximum 0', Buffer.from([0x21, 0x00, 0x00])],
    ['maximum packet size 0', Buffer.from([0x27, 0x00, 0x00, 0x00, 0x00])],
    ['receive maximum twice', Buffer.from([0x21, 0x00, 0x01, 0x21, 0x00, 0x02])],
    ['a property cut short', Buffer.from([0x11, 0x00])],
    ['a user property with invalid UTF-8', Buffer.concat([Buffer.from([0x26]), str(Buffer.from([0xff])), str('v')])],
    ['a user property value with U+0000', Buffer.concat([Buffer.from([0x26]), str('k'), str(Buffer.from([0x76, 0x00]))])],
    ['session expiry interval twice', Buffer.from([0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2])],
    ['authentication data and no method', Buffer.concat([Buffer.from([0x16]), str('x')])],
    ['a DISCONNECT-only property (server reference)', Buffer.concat([Buffer.from([0x1c]), str('s')])],
  ];
  for (const [name, props] of badProperties) {
    add({ name: `MQTT 5 CONNECT with ${name}`, phase: 'pre', chunks: [connectV5WithRawProperties(id, props)], connack: V5_REFUSED, v5: true });
  }
  // Properties on packets that do not allow them: after an MQTT 5 CONNECT (in the same write, so
  // they arrive while the CONNECT is being authenticated), and in an MQTT 3.1.1 session.
  // Keep-alive 0: only the broker's answer to the bad packet may close the connection promptly.
  const connect5 = connectV5(id, {}, true, 0);
  const withProperties: Array<[string, Buffer]> = [
    ['PINGREQ with a property length', Buffer.from([0xc0, 0x01, 0x00])],
    ['SUBSCRIBE with a payload format indicator', frame(0x82, Buffer.concat([u16(1), Buffer.from([0x02, 0x01, 0x01]), str(`/devices/${id.deviceId}/config`), Buffer.from([0x01])]))],
    ['PUBLISH with a session expiry interval', frame(0x30, Buffer.concat([str(events), Buffer.from([0x05, 0x11, 0, 0, 0, 1]), Buffer.from('x')]))],
    ['PUBLISH with topic alias 0', frame(0x30, Buffer.concat([str(events), Buffer.from([0x03, 0x23, 0x00, 0x00]), Buffer.from('x')]))],
    ['DISCONNECT with a will delay interval', Buffer.from([0xe0, 0x07, 0x00, 0x05, 0x18, 0, 0, 0, 1])],
    ['PUBLISH with an empty topic and an unmapped topic alias', v5({ cmd: 'publish', topic: '', payload: Buffer.from('x'), qos: 0, dup: false, retain: false, properties: { topicAlias: 3 } })],
    ['PUBLISH with topic alias 65535, over any maximum', v5({ cmd: 'publish', topic: events, payload: Buffer.from('x'), qos: 0, dup: false, retain: false, properties: { topicAlias: 65535 } })],
    ['PUBLISH with an empty topic and no alias', v5({ cmd: 'publish', topic: '', payload: Buffer.from('x'), qos: 0, dup: false, retain: false })],
    ['PUBLISH with two content types', frame(0x30, Buffer.concat([str(events), Buffer.from([0x08, 0x03]), str('a'), Buffer.from([0x03]), str('b'), Buffer.from('x')]))],
    ['PUBLISH with a subscription identifier', frame(0x30, Buffer.concat([str(events), Buffer.from([0x02, 0x0b, 0x01]), Buffer.from('x')]))],
    ['PUBLISH with a message expiry interval cut short', frame(0x30, Buffer.concat([str(events), Buffer.from([0x01, 0x02])]))],
    ['SUBSCRIBE with subscription identifier 0', frame(0x82, Buffer.concat([u16(1), Buffer.from([0x02, 0x0b, 0x00]), str(`/devices/${id.deviceId}/config`), Buffer.from([0x01])]))],
    ['UNSUBSCRIBE with a reason string', frame(0xa2, Buffer.concat([u16(1), Buffer.concat([Buffer.from([0x04, 0x1f]), str('r')]), str(`/devices/${id.deviceId}/config`)]))],
    ['PUBACK with a content type', Buffer.concat([Buffer.from([0x40, 0x08]), u16(1), Buffer.from([0x00, 0x04, 0x03]), str('c')])],
    ['DISCONNECT with a server reference', Buffer.concat([Buffer.from([0xe0, 0x06, 0x00, 0x04, 0x1c]), str('s')])],
    ['AUTH with authentication data and no method', Buffer.concat([Buffer.from([0xf0, 0x06, 0x19, 0x04, 0x16]), str('t')])],
    ['SUBSCRIBE without topic filters', Buffer.from([0x82, 0x03, 0x00, 0x01, 0x00])],
    ['UNSUBSCRIBE without topic filters', Buffer.from([0xa2, 0x03, 0x00, 0x01, 0x00])],
  ];
  // A user property whose key length runs past the property section: mqtt-packet parses it as a
  // key with a null value, which a delivery to an MQTT 5 subscriber would carry on.
  const overrun = v5({ cmd: 'publish', topic: events, payload: Buffer.from('x'.repeat(40)), qos: 0, dup: false, retain: false, properties: { userProperties: { a: 'b' } } });
  overrun[overrun.indexOf(Buffer.from([0x26, 0x00, 0x01, 0x61])) + 2] = 0x21;
  add({ name: 'MQTT 5 PUBLISH with a user property longer than its properties, to an MQTT 5 subscriber', phase: 'pre', chunks: [Buffer.concat([connect5, overrun])], connack: [0x00, ...V5_REFUSED], v5: true, subscriber: true });
  for (const [name, bytes] of withProperties) {
    add({ name: `MQTT 5 ${name}`, phase: 'pre', chunks: [Buffer.concat([connect5, bytes])], connack: [0x00, ...V5_REFUSED], v5: true });
  }
  add({ name: 'MQTT 3.1.1 PINGREQ with a body', phase: 'device', chunks: [Buffer.from([0xc0, 0x01, 0x00])] });
  for (const phase of ['device', 'backend'] as const) {
    // Packet ids are non-zero (MQTT 3.1.1 §2.3.1); acknowledgements have no more than the id.
    add({ name: `SUBSCRIBE with packet id 0 (${phase})`, phase, chunks: [frame(0x82, Buffer.concat([u16(0), str(`/devices/${id.deviceId}/config`), Buffer.from([0])]))] });
    add({ name: `UNSUBSCRIBE with packet id 0 (${phase})`, phase, chunks: [frame(0xa2, Buffer.concat([u16(0), str(`/devices/${id.deviceId}/config`)]))] });
    add({ name: `PUBLISH QoS 1 with packet id 0 (${phase})`, phase, chunks: [frame(0x32, Buffer.concat([str(events), u16(0), Buffer.from('x')]))] });
    add({ name: `MQTT 3.1.1 PUBACK with a reason code (${phase})`, phase, chunks: [Buffer.from([0x40, 0x03, 0x00, 0x01, 0x00])] });
  }
  add({ name: 'MQTT 3.1.1 DISCONNECT with a reason code', phase: 'device', chunks: [Buffer.from([0xe0, 0x01, 0x8e])], expect: 'any' });

  // Every packet a client may send after CONNECT, well-formed, in one write: each is answered.
  const [ping, puback, unsubscribe, ...deviceOnly] = seeds(id, 'device');
  const disconnect = Buffer.from([0xe0, 0x00]);
  add({
    name: 'well-formed MQTT 3.1.1 device packets',
    phase: 'device',
    chunks: [Buffer.concat([...deviceOnly, ping as Buffer, puback as Buffer, unsubscribe as Buffer, disconnect])],
    expect: 'any',
    answers: [PUBACK, PUBACK, SUBACK, PINGRESP, UNSUBACK],
  });
  const backendOnly = seeds(id, 'backend').slice(3);
  add({
    name: 'well-formed MQTT 3.1.1 backend packets',
    phase: 'backend',
    chunks: [Buffer.concat([...backendOnly, ping as Buffer, puback as Buffer, unsubscribe as Buffer, disconnect])],
    expect: 'any',
    answers: [SUBACK, UNSUBACK, PINGRESP, UNSUBACK],
  });

  // The well-formed MQTT 5 sessions the random cases mutate, served as they are.
  const [deviceSession, authSession, backendSession] = v5Sessions(id);
  const served: Array<[string, Buffer | undefined, number[]]> = [
    ['device session', deviceSession, [CONNACK, PUBACK, SUBACK, UNSUBACK, PINGRESP]],
    ['device authenticating in the CONNECT and again in AUTH', authSession, [CONNACK, PINGRESP]],
    ['backend session', backendSession, [CONNACK, SUBACK, UNSUBACK]],
  ];
  for (const [name, bytes, answers] of served) {
    add({ name: `well-formed MQTT 5 ${name}`, phase: 'pre', chunks: [bytes as Buffer], expect: 'any', connack: [0], v5: true, answers });
  }

  // A CONNECT with credentials followed by garbage in the same write.
  add({ name: 'device CONNECT followed by garbage', phase: 'pre', chunks: [Buffer.concat([rawConnect(id.clientId, 'unused', id.token), Buffer.from([0xff, 0x00, 0xde, 0xad])])], connack: [0] });
  add({ name: 'backend CONNECT followed by garbage', phase: 'pre', chunks: [Buffer.concat([rawConnect(id.backendClientId, id.backendUser, id.backendKey), Buffer.from([0x00, 0xff, 0xbe, 0xef])])], connack: [0] });
  add({ name: 'device CONNECT followed by a PUBLISH with both QoS bits', phase: 'pre', chunks: [rawConnect(id.clientId, 'unused', id.token), Buffer.from([0x36, 0x03, 0x00, 0x01, 0x61])], connack: [0] });
  return cases;
}

// ---- random and mutated cases --------------------------------------------------------------------

/** Well-formed packets a client may send in a phase, to be mutated. */
function seeds(id: Identity, phase: Phase): Buffer[] {
  const config = `/devices/${id.deviceId}/config`;
  const events = `/devices/${id.deviceId}/events`;
  if (phase === 'pre') {
    return [
      rawConnect(id.clientId, 'unused', id.token),
      rawConnect(id.backendClientId, id.backendUser, id.backendKey),
      rawConnect('fuzz', 'nobody', 'nothing'),
      connectV5(id, { sessionExpiryInterval: 10, userProperties: { k: 'v' } }, true),
      ...v5Sessions(id),
    ];
  }
  const common = [
    Buffer.from([0xc0, 0x00]),
    Buffer.from([0x40, 0x02, 0x00, 0x01]),
    v4({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: [config] }),
  ];
  if (phase === 'device') {
    return [
      ...common,
      v4({ cmd: 'publish', topic: events, payload: Buffer.from('telemetry'), qos: 1, messageId: 3, dup: false, retain: false }),
      v4({ cmd: 'publish', topic: `${events}/sub/folder`, payload: Buffer.from('t'), qos: 0, dup: false, retain: false }),
      v4({ cmd: 'publish', topic: `/devices/${id.deviceId}/state`, payload: Buffer.from('{"on":true}'), qos: 1, messageId: 4, dup: false, retain: false }),
      v4({ cmd: 'subscribe', messageId: 5, subscriptions: [{ topic: config, qos: 1 }, { topic: `/devices/${id.deviceId}/commands/#`, qos: 0 }] }),
    ];
  }
  return [
    ...common,
    v4({ cmd: 'subscribe', messageId: 6, subscriptions: [{ topic: 'registries/fleet/devices/+/events/#', qos: 1 }, { topic: '#', qos: 0 }] }),
    v4({ cmd: 'unsubscribe', messageId: 7, unsubscriptions: ['registries/fleet/devices/+/state'] }),
  ];
}

/** MQTT 5 CONNECTs followed by the packets of a session, so mutations reach the MQTT 5 handlers. */
function v5Sessions(id: Identity): Buffer[] {
  const config = `/devices/${id.deviceId}/config`;
  const events = `/devices/${id.deviceId}/events`;
  const jwt = Buffer.from(id.token);
  return [
    Buffer.concat([
      connectV5(id, { topicAliasMaximum: 5, receiveMaximum: 5, requestProblemInformation: true }, true),
      v5({
        cmd: 'publish', topic: events, payload: Buffer.from('t'), qos: 1, messageId: 1, dup: false, retain: false,
        properties: { topicAlias: 1, payloadFormatIndicator: true, messageExpiryInterval: 60, contentType: 'text/plain', responseTopic: events, correlationData: Buffer.from('c'), userProperties: { a: 'b' } },
      }),
      v5({ cmd: 'publish', topic: '', payload: Buffer.from('u'), qos: 0, dup: false, retain: false, properties: { topicAlias: 1 } }),
      v5({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: config, qos: 1, nl: true, rap: true, rh: 1 }], properties: { userProperties: { s: 't' } } }),
      v5({ cmd: 'puback', messageId: 1, reasonCode: 0x10, properties: { reasonString: 'r' } }),
      v5({ cmd: 'unsubscribe', messageId: 3, unsubscriptions: [config] }),
      v5({ cmd: 'pingreq' }),
      v5({ cmd: 'disconnect', reasonCode: 0x04, properties: { sessionExpiryInterval: 0 } }),
    ]),
    Buffer.concat([
      v5({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: id.clientId, keepalive: 1, properties: { authenticationMethod: 'keyway-jwt', authenticationData: jwt } } as Packet),
      v5({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'keyway-jwt', authenticationData: jwt } }),
      v5({ cmd: 'pingreq' }),
    ]),
    Buffer.concat([
      v5({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: false, clientId: id.backendClientId, keepalive: 1, username: id.backendUser, password: Buffer.from(id.backendKey), properties: { sessionExpiryInterval: 30, receiveMaximum: 2 } } as Packet),
      v5({ cmd: 'subscribe', messageId: 4, subscriptions: [{ topic: 'registries/fleet/devices/+/events/#', qos: 1, nl: false, rap: false, rh: 0 }, { topic: '$share/g/registries/#', qos: 1 }] }),
      v5({ cmd: 'unsubscribe', messageId: 5, unsubscriptions: ['registries/#'], properties: { userProperties: { u: 'v' } } }),
    ]),
  ];
}

function mutate(rng: Prng, input: Buffer): { how: string; bytes: Buffer } {
  const bytes = Buffer.from(input);
  switch (rng.int(0, 4)) {
    case 0: {
      const flips = rng.int(1, 3);
      for (let i = 0; i < flips; i++) {
        const at = rng.int(0, bytes.length - 1);
        bytes[at] = (bytes[at] as number) ^ (1 << rng.int(0, 7));
      }
      return { how: `${flips} bit flip(s)`, bytes };
    }
    case 1:
      return { how: 'truncated', bytes: bytes.subarray(0, rng.int(1, bytes.length - 1)) };
    case 2:
      return { how: 'extended', bytes: Buffer.concat([bytes, rng.bytes(rng.int(1, 32))]) };
    case 3: {
      const at = rng.int(0, bytes.length - 1);
      bytes[at] = rng.pick([0x00, 0x7f, 0x80, 0xff, rng.int(0, 255)]);
      return { how: `byte ${at} replaced`, bytes };
    }
    default: {
      // A remaining length that disagrees with the body: shorter or longer by a little.
      const delta = rng.pick([-2, -1, 1, 2, 100]);
      const body = bytes.subarray(2);
      return { how: `remaining length off by ${delta}`, bytes: Buffer.concat([Buffer.from([bytes[0] as number]), remainingLength(Math.max(0, body.length + delta)), body]) };
    }
  }
}

/** Splits into up to three writes at random points. */
function split(rng: Prng, bytes: Buffer): Buffer[] {
  if (bytes.length < 2 || rng.next() < 0.5) return [bytes];
  const a = rng.int(1, bytes.length - 1);
  const b = rng.int(a, bytes.length);
  return [bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)].filter((c) => c.length > 0);
}

/** One random case: random bytes, or a valid packet of the phase mutated. */
export function randomCase(rng: Prng, id: Identity, n: number): FuzzCase {
  const phase = rng.pick(['pre', 'device', 'backend'] as const);
  // Credentials may survive a mutation: a CONNECT may then be accepted, in either protocol version.
  const connack = phase === 'pre' ? [0, ...V4_REFUSED, ...V5_REFUSED] : [];
  if (rng.next() < 0.25) {
    // Random bytes, sometimes behind a plausible first byte so they get past the fixed header.
    const lead = rng.next() < 0.5 ? Buffer.from([rng.pick(phase === 'pre' ? [0x10] : [0x30, 0x32, 0x40, 0x82, 0xa2, 0xc0, 0xe0])]) : Buffer.alloc(0);
    const bytes = Buffer.concat([lead, rng.bytes(rng.int(1, 48))]);
    return { name: `#${n} random bytes (${phase})`, phase, chunks: split(rng, bytes), expect: 'any', connack, v5: phase === 'pre' };
  }
  // One packet, or a few in a row so that a mutation may land in a later one.
  const pool = seeds(id, phase);
  const base = Buffer.concat(Array.from({ length: rng.next() < 0.7 ? 1 : rng.int(2, 4) }, () => rng.pick(pool)));
  const { how, bytes } = mutate(rng, base);
  return { name: `#${n} mutated packet 0x${(base[0] as number).toString(16)}, ${how} (${phase})`, phase, chunks: split(rng, bytes), expect: 'any', connack, v5: phase === 'pre' };
}
