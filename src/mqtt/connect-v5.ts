/**
 * The MQTT 5 parts of CONNECT (MQTT 5 §3.1, §3.2): where the credential is, and what the server
 * announces in its CONNACK. Only `keyway-jwt` is an authentication method: the device JWT travels
 * as the password or as the authentication data, and a later AUTH packet may replace it.
 */
import type { IConnackPacket, IConnectPacket } from 'mqtt-packet';
import type { BrokerContext } from './context.js';
import type { PacketProblem } from './packet-validation.js';
import { REASON_V5 } from './reason-codes.js';

export const AUTH_METHOD = 'keyway-jwt';

type ConnackProperties = NonNullable<IConnackPacket['properties']>;

/** The properties a CONNECT may carry (MQTT 5 §3.1.2.11); any other is a malformed packet. */
export const CONNECT_PROPERTIES: ReadonlySet<string> = new Set([
  'sessionExpiryInterval',
  'receiveMaximum',
  'maximumPacketSize',
  'topicAliasMaximum',
  'requestResponseInformation',
  'requestProblemInformation',
  'userProperties',
  'authenticationMethod',
  'authenticationData',
]);

/** The properties of a will message (MQTT 5 §3.1.3.2). Wills are discarded, but must be well-formed. */
export const WILL_PROPERTIES: ReadonlySet<string> = new Set([
  'willDelayInterval',
  'payloadFormatIndicator',
  'messageExpiryInterval',
  'contentType',
  'responseTopic',
  'correlationData',
  'userProperties',
]);

/**
 * The value rules of CONNECT properties that are well-formed and allowed there (MQTT 5
 * §3.1.2.11): a receive maximum or maximum packet size of 0, and authentication data without a
 * method, are protocol errors (CONNACK 0x82).
 */
export function connectPropertyProblem(props: NonNullable<IConnectPacket['properties']>): PacketProblem | undefined {
  if (props.receiveMaximum === 0) return { code: REASON_V5.protocolError, reason: 'receive maximum 0' };
  if (props.maximumPacketSize === 0) return { code: REASON_V5.protocolError, reason: 'maximum packet size 0' };
  if (props.authenticationData !== undefined && props.authenticationMethod === undefined) {
    return { code: REASON_V5.protocolError, reason: 'authentication data without an authentication method' };
  }
  return undefined;
}

/** The credential of a CONNECT, or 'bad-method' for an authentication method we do not offer. */
export function connectCredential(packet: IConnectPacket): string | undefined | 'bad-method' {
  const props = packet.properties;
  const method = props?.authenticationMethod;
  if (method !== undefined && method !== AUTH_METHOD) return 'bad-method';
  const bytes = packet.password ?? (method === AUTH_METHOD ? props?.authenticationData : undefined);
  return bytes && bytes.length > 0 ? bytes.toString('utf8') : undefined;
}

/**
 * The keep-alive a device connection runs with: a device must send a PUBLISH or PINGREQ within
 * the idle limit anyway, so a longer (or no) keep-alive is overridden and the device told so.
 */
export function deviceKeepAlive(ctx: BrokerContext, requested: number): number {
  const cap = Math.max(1, Math.min(0xffff, Math.floor(ctx.limits.idleLimitMs / 1000)));
  return requested === 0 || requested > cap ? cap : requested;
}

/** CONNACK properties: what this server supports and the bounds it enforces. */
export function connackProperties(
  ctx: BrokerContext,
  packet: IConnectPacket,
  keepAlive: number,
): ConnackProperties {
  const props: ConnackProperties = {
    maximumPacketSize: ctx.limits.maxPacketBytes,
    receiveMaximum: ctx.limits.receiveMaximum,
    topicAliasMaximum: ctx.limits.topicAliasMaximum,
    maximumQoS: 1,
    // Devices retain on custom topics where their policy grants `retain` (device-spaces); client-connect sets its namespace's.
    retainAvailable: true,
    // Devices need it for `/devices/{id}/commands/#`; backends for registry-wide filters.
    wildcardSubscriptionAvailable: true,
    subscriptionIdentifiersAvailable: false,
    sharedSubscriptionAvailable: false,
  };
  if (keepAlive !== (packet.keepalive ?? 0)) props.serverKeepAlive = keepAlive;
  if (packet.properties?.authenticationMethod !== undefined) props.authenticationMethod = AUTH_METHOD;
  return props;
}
