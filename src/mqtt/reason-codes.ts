/**
 * Return and reason codes the broker sends. MQTT 3.1.1 has CONNACK return codes and the SUBACK
 * failure code; MQTT 5 replaces them with reason codes on every acknowledgement, which join here.
 */

/** CONNACK return codes, MQTT 3.1.1 §3.2.2.3. */
export const CONNACK_RC = {
  accepted: 0,
  unacceptableProtocolVersion: 1,
  identifierRejected: 2,
  serverUnavailable: 3,
  badUsernameOrPassword: 4,
  notAuthorized: 5,
} as const;

export type ConnackReturnCode = (typeof CONNACK_RC)[keyof typeof CONNACK_RC];

/** MQTT 5 reason codes the broker sends (MQTT 5 §2.4). */
export const REASON_V5 = {
  success: 0x00,
  unspecifiedError: 0x80,
  malformedPacket: 0x81,
  protocolError: 0x82,
  unsupportedProtocolVersion: 0x84,
  clientIdentifierNotValid: 0x85,
  badUserNameOrPassword: 0x86,
  notAuthorized: 0x87,
  serverUnavailable: 0x88,
  serverShuttingDown: 0x8b,
  badAuthenticationMethod: 0x8c,
  keepAliveTimeout: 0x8d,
  sessionTakenOver: 0x8e,
  noMatchingSubscribers: 0x10,
  noSubscriptionExisted: 0x11,
  disconnectWithWill: 0x04,
  topicFilterInvalid: 0x8f,
  topicNameInvalid: 0x90,
  packetIdentifierNotFound: 0x92,
  receiveMaximumExceeded: 0x93,
  topicAliasInvalid: 0x94,
  packetTooLarge: 0x95,
  quotaExceeded: 0x97,
  payloadFormatInvalid: 0x99,
  administrativeAction: 0x98,
  qosNotSupported: 0x9b,
  maximumConnectTime: 0xa0,
  connectionRateExceeded: 0x9f,
  reAuthenticate: 0x19,
} as const;

/**
 * Why a CONNECT is refused, and the code each protocol level gets for it. A credential that does
 * not verify (a device JWT, for any reason, or a backend API key) is "bad user name or password";
 * a client with no identity we serve (neither a device client id nor a service account's user
 * name) is "not authorised". MQTT 3.1.1 has one code for both.
 */
export const REFUSAL = {
  badCredentials: { v4: CONNACK_RC.notAuthorized, v5: REASON_V5.badUserNameOrPassword },
  notAuthorized: { v4: CONNACK_RC.notAuthorized, v5: REASON_V5.notAuthorized },
  unavailable: { v4: CONNACK_RC.serverUnavailable, v5: REASON_V5.serverUnavailable },
  badAuthenticationMethod: { v4: CONNACK_RC.notAuthorized, v5: REASON_V5.badAuthenticationMethod },
  unsupportedProtocol: { v4: CONNACK_RC.unacceptableProtocolVersion, v5: REASON_V5.unsupportedProtocolVersion },
  rateExceeded: { v4: CONNACK_RC.serverUnavailable, v5: REASON_V5.connectionRateExceeded },
} as const;

export type Refusal = (typeof REFUSAL)[keyof typeof REFUSAL];

/** SUBACK return code for a refused filter, MQTT 3.1.1 §3.9.3. */
export const SUBACK_FAILURE = 0x80;

/** The protocol levels of a CONNECT packet. */
export const PROTOCOL_LEVEL = { mqtt31: 3, mqtt311: 4, mqtt5: 5 } as const;
