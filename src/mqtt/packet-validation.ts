/**
 * Well-formedness rules of client packets that the codec (mqtt-packet) does not enforce, checked
 * once per packet before any handler runs. mqtt-packet already refuses bad fixed-header flags,
 * QoS 3, unknown property ids, bad reason codes, subscription option bits and truncated fields
 * outside property sections; what it lets through is checked here:
 * - strings it decoded with U+FFFD (its rendering of ill-formed UTF-8, MQTT 3.1.1 §1.5.3,
 *   MQTT 5 §1.5.4) or containing U+0000, in client ids, user names, will topics, topic names,
 *   filters and string properties. The raw bytes are gone by then, so a U+FFFD the client really
 *   sent is refused too: no Cloud IoT Core id or topic contains one;
 * - SUBSCRIBE and UNSUBSCRIBE without a filter, packet id 0, PINGREQ (and MQTT 3.1.1 DISCONNECT
 *   and acknowledgements) with a body;
 * - MQTT 5 properties not allowed on the packet type (§2.2.2.2, 0x81), given twice (0x82), or cut
 *   short, which the codec returns as null or -1 and its encoder would later throw on.
 * What a client may do (topics, QoS, wildcards, quotas) is left to the handlers.
 */
import type { IAuthPacket, IConnectPacket, Packet } from 'mqtt-packet';
import mqttPacket from 'mqtt-packet';
import { CONNECT_PROPERTIES, WILL_PROPERTIES, connectPropertyProblem } from './connect-v5.js';
import type { Connection } from './connection.js';
import { clip } from './device-errors.js';
import { PROTOCOL_LEVEL, REASON_V5 } from './reason-codes.js';

/** Why a packet is refused: the MQTT 5 reason code, and a line for the log. */
export interface PacketProblem {
  readonly code: number;
  readonly reason: string;
}

const malformed = (reason: string): PacketProblem => ({ code: REASON_V5.malformedPacket, reason });
const protocolError = (reason: string): PacketProblem => ({ code: REASON_V5.protocolError, reason });

/** Whether a decoded MQTT string was well-formed UTF-8 without U+0000. Two native scans: cheap on PUBLISH. */
export const isWellFormedString = (s: string): boolean => !s.includes('\u0000') && !s.includes('\uFFFD');

type PropertyType = 'byte' | 'int16' | 'int32' | 'var' | 'string' | 'binary' | 'pair';

/** The wire types of the properties a client may send on some packet (MQTT 5 §2.2.2.2). */
const PROPERTY_TYPES: Readonly<Record<string, PropertyType>> = {
  payloadFormatIndicator: 'byte',
  messageExpiryInterval: 'int32',
  contentType: 'string',
  responseTopic: 'string',
  correlationData: 'binary',
  subscriptionIdentifier: 'var',
  sessionExpiryInterval: 'int32',
  topicAlias: 'int16',
  receiveMaximum: 'int16',
  maximumPacketSize: 'int32',
  topicAliasMaximum: 'int16',
  requestResponseInformation: 'byte',
  requestProblemInformation: 'byte',
  willDelayInterval: 'int32',
  authenticationMethod: 'string',
  authenticationData: 'binary',
  reasonString: 'string',
  userProperties: 'pair',
};

const PUBLISH_PROPERTIES: ReadonlySet<string> = new Set([
  'payloadFormatIndicator',
  'messageExpiryInterval',
  'topicAlias',
  'responseTopic',
  'correlationData',
  'userProperties',
  'contentType',
]);
const ACK_PROPERTIES: ReadonlySet<string> = new Set(['reasonString', 'userProperties']);
const SUBSCRIBE_PROPERTIES: ReadonlySet<string> = new Set(['subscriptionIdentifier', 'userProperties']);
const UNSUBSCRIBE_PROPERTIES: ReadonlySet<string> = new Set(['userProperties']);
const DISCONNECT_PROPERTIES: ReadonlySet<string> = new Set(['sessionExpiryInterval', 'reasonString', 'userProperties']);
const AUTH_PROPERTIES: ReadonlySet<string> = new Set(['authenticationMethod', 'authenticationData', 'reasonString', 'userProperties']);

/** A value the codec produced for a property of `type` that was complete and well-formed. */
function isWellFormedValue(type: PropertyType, value: unknown): boolean {
  switch (type) {
    case 'byte':
      return typeof value === 'boolean';
    case 'int16':
    case 'int32':
    case 'var':
      // The codec returns -1 (or false for a variable byte integer) when the value is cut short.
      return typeof value === 'number' && value >= 0;
    case 'string':
      return typeof value === 'string' && isWellFormedString(value);
    case 'binary':
      return Buffer.isBuffer(value);
    case 'pair':
      return userPropertiesWellFormed(value);
  }
}

/** User properties as the codec returns them: name → value, or → values for a repeated name. */
function userPropertiesWellFormed(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  for (const [name, v] of Object.entries(value)) {
    if (!isWellFormedString(name)) return false;
    if (Array.isArray(v)) {
      for (const item of v) if (typeof item !== 'string' || !isWellFormedString(item)) return false;
    } else if (typeof v !== 'string' || !isWellFormedString(v)) {
      return false;
    }
  }
  return true;
}

/**
 * Why a packet's MQTT 5 properties make it malformed (an id not allowed on `packetName`, a value cut
 * short or ill-formed) or a protocol error (a property other than a user property given twice).
 */
export function propertiesProblem(props: object, allowed: ReadonlySet<string>, packetName: string): PacketProblem | undefined {
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined) continue;
    const type = PROPERTY_TYPES[name];
    if (type === undefined || !allowed.has(name)) return malformed(`property ${name} is not allowed on ${packetName}`);
    // The codec collects a repeated property into an array; only user properties may repeat.
    if (type !== 'pair' && Array.isArray(value)) return protocolError(`property ${name} given more than once on ${packetName}`);
    if (!isWellFormedValue(type, value)) return malformed(`property ${name} on ${packetName} is cut short or ill-formed`);
  }
  return undefined;
}

/**
 * Why `packet` must be refused before any handler sees it, or undefined. `v5`: the connection
 * speaks MQTT 5 (for a CONNECT, its own protocol level counts).
 */
export function packetProblem(packet: Packet, v5: boolean): PacketProblem | undefined {
  switch (packet.cmd) {
    case 'publish': {
      if (!isWellFormedString(packet.topic)) return malformed('ill-formed UTF-8 or U+0000 in a topic name');
      if (packet.qos > 0 && packet.messageId === 0) return protocolError('PUBLISH with packet id 0');
      const props = packet.properties;
      return v5 && props !== undefined ? propertiesProblem(props, PUBLISH_PROPERTIES, 'PUBLISH') : undefined;
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      if (packet.messageId === 0) return protocolError(`${packet.cmd.toUpperCase()} with packet id 0`);
      if (!v5) return packet.length === 2 ? undefined : malformed(`${packet.cmd.toUpperCase()} with a remaining length other than 2`);
      return packet.properties === undefined ? undefined : propertiesProblem(packet.properties, ACK_PROPERTIES, packet.cmd.toUpperCase());
    case 'subscribe':
      if (packet.subscriptions.length === 0) return protocolError('SUBSCRIBE without topic filters');
      if (packet.messageId === 0) return protocolError('SUBSCRIBE with packet id 0');
      for (const { topic } of packet.subscriptions) {
        if (!isWellFormedString(topic)) return malformed('ill-formed UTF-8 or U+0000 in a topic filter');
      }
      return v5 && packet.properties !== undefined ? subscribePropertiesProblem(packet.properties) : undefined;
    case 'unsubscribe':
      if (packet.unsubscriptions.length === 0) return protocolError('UNSUBSCRIBE without topic filters');
      if (packet.messageId === 0) return protocolError('UNSUBSCRIBE with packet id 0');
      for (const filter of packet.unsubscriptions) {
        if (!isWellFormedString(filter)) return malformed('ill-formed UTF-8 or U+0000 in a topic filter');
      }
      return v5 && packet.properties !== undefined ? propertiesProblem(packet.properties, UNSUBSCRIBE_PROPERTIES, 'UNSUBSCRIBE') : undefined;
    case 'pingreq':
      return packet.length === 0 ? undefined : malformed('PINGREQ with a body');
    case 'disconnect':
      if (!v5) return packet.length === 0 ? undefined : malformed('DISCONNECT with a body');
      return packet.properties === undefined ? undefined : propertiesProblem(packet.properties, DISCONNECT_PROPERTIES, 'DISCONNECT');
    case 'auth':
      return packet.properties === undefined ? undefined : authPropertiesProblem(packet.properties);
    case 'connect':
      return connectProblem(packet);
    default:
      // Packets a client never sends: the dispatcher refuses them as they are.
      return undefined;
  }
}

function subscribePropertiesProblem(props: object): PacketProblem | undefined {
  const problem = propertiesProblem(props, SUBSCRIBE_PROPERTIES, 'SUBSCRIBE');
  if (problem !== undefined) return problem;
  // MQTT 5 §3.8.2.1.2: a subscription identifier runs from 1.
  return (props as { subscriptionIdentifier?: number }).subscriptionIdentifier === 0 ? protocolError('subscription identifier 0') : undefined;
}

function authPropertiesProblem(props: NonNullable<IAuthPacket['properties']>): PacketProblem | undefined {
  const problem = propertiesProblem(props, AUTH_PROPERTIES, 'AUTH');
  if (problem !== undefined) return problem;
  return props.authenticationData !== undefined && props.authenticationMethod === undefined
    ? protocolError('AUTH with authentication data and no method')
    : undefined;
}

function connectProblem(packet: IConnectPacket): PacketProblem | undefined {
  if (!isWellFormedString(packet.clientId)) return malformed('ill-formed UTF-8 or U+0000 in the client id');
  if (packet.username !== undefined && !isWellFormedString(packet.username)) return malformed('ill-formed UTF-8 or U+0000 in the user name');
  const will = packet.will;
  if (will !== undefined && !isWellFormedString(will.topic)) return malformed('ill-formed UTF-8 or U+0000 in the will topic');
  if (packet.protocolVersion !== PROTOCOL_LEVEL.mqtt5) return undefined;
  const props = packet.properties;
  if (props !== undefined) {
    const problem = propertiesProblem(props, CONNECT_PROPERTIES, 'CONNECT') ?? connectPropertyProblem(props);
    if (problem !== undefined) return problem;
  }
  return will?.properties === undefined ? undefined : propertiesProblem(will.properties, WILL_PROPERTIES, 'the will');
}

/**
 * Ends the connection over a refused packet. A refused first CONNECT gets CONNACK with the reason
 * (MQTT 5; written as encoded here, since the client's announced limits are not to be trusted) or
 * just the close MQTT 3.1.1 §1.5.3 asks for; later packets get DISCONNECT with the reason (MQTT 5).
 */
export function refuseInvalidPacket(conn: Connection, packet: Packet, problem: PacketProblem): void {
  if (packet.cmd === 'connect' && conn.state.phase === 'awaiting-connect') {
    conn.log.info({ clientId: clip(packet.clientId), code: problem.code, reason: problem.reason }, 'connection refused: invalid CONNECT');
    if (packet.protocolVersion === PROTOCOL_LEVEL.mqtt5) {
      const connack = { cmd: 'connack', reasonCode: problem.code, sessionPresent: false } as const;
      conn.write(mqttPacket.generate(connack, { protocolVersion: 5 }));
    }
    conn.close(`invalid CONNECT: ${problem.reason}`);
    return;
  }
  conn.close(`invalid ${packet.cmd}: ${problem.reason}`, { level: 'info', code: problem.code });
}
