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

/** MQTT 5 reason codes the broker uses today (MQTT 5 §2.4). */
export const REASON_V5 = {
  unsupportedProtocolVersion: 0x84,
} as const;

/** SUBACK return code for a refused filter, MQTT 3.1.1 §3.9.3. */
export const SUBACK_FAILURE = 0x80;

/** The protocol levels of a CONNECT packet. */
export const PROTOCOL_LEVEL = { mqtt31: 3, mqtt311: 4, mqtt5: 5 } as const;
