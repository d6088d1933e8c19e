/**
 * Gateway system errors (reference §1.10): JSON messages on the gateway's own
 * `/devices/{gateway}/errors` topic, sent at QoS 0 while the gateway is subscribed to it, in the
 * shape Cloud IoT Core used: `error_type`, `description`, `device_id` and, when a packet of the
 * gateway caused it, `mqtt_message_info` (`message_type`, `topic`, `packet_id`). Nothing about
 * another device ever closes the gateway's connection: it learns of it here.
 */
import type { IPublishPacket } from 'mqtt-packet';
import type { Connection } from './connection.js';
import { clip } from './device-errors.js';
import type { DeviceSession } from './device-session.js';
import { REASON_V5 } from './reason-codes.js';

export type GatewayErrorType =
  /** An attach was refused: unknown, blocked or unbound device, bad token, too many attached… */
  | 'GATEWAY_ATTACHMENT_ERROR'
  /** A detach was refused: the device was not attached. */
  | 'GATEWAY_DETACHMENT_ERROR'
  /** A publish or subscribe for a device the gateway has not attached; the message is dropped. */
  | 'GATEWAY_DEVICE_NOT_FOUND'
  /**
   * The server detached the device: a message of it broke a rule (as a direct device would be
   * disconnected), or it was blocked, deleted, unbound, its token expired or its credential was
   * revoked, it connected on its own or to another gateway. The gateway may attach it again.
   */
  | 'GATEWAY_DETACHMENT_DEVICE_ERROR';

/** The gateway's packet that caused the error. */
export interface MqttMessageInfo {
  readonly messageType: 'PUBLISH' | 'SUBSCRIBE';
  readonly topic: string;
  /** Absent for a QoS 0 PUBLISH. */
  readonly packetId?: number | undefined;
}

export interface GatewayError {
  readonly type: GatewayErrorType;
  /** The device concerned, as the gateway named it (peer text: clipped). */
  readonly deviceId: string;
  readonly description: string;
  readonly message?: MqttMessageInfo | undefined;
}

export function gatewayErrorPayload(error: GatewayError): Buffer {
  const info = error.message;
  return Buffer.from(
    JSON.stringify({
      error_type: error.type,
      description: error.description,
      device_id: clip(error.deviceId),
      ...(info !== undefined
        ? {
            mqtt_message_info: {
              message_type: info.messageType,
              topic: clip(info.topic),
              ...(info.packetId !== undefined ? { packet_id: info.packetId } : {}),
            },
          }
        : {}),
    }),
  );
}

/**
 * Tells the gateway on its errors topic, if it subscribed to it and its policy lets it receive
 * there. QoS 0, and dropped when the gateway is not reading: errors never hold anything up.
 */
export function sendGatewayError(conn: Connection, gateway: DeviceSession, error: GatewayError): void {
  const topic = gateway.topics.errors;
  if (!gateway.errorsSubscribed || !conn.isOpen || !gateway.policy.can('receive', topic)) return;
  if (conn.congested) return;
  conn.send({ cmd: 'publish', topic, payload: gatewayErrorPayload(error), qos: 0, dup: false, retain: false });
}

/** The reason codes a PUBACK may carry (MQTT 5 §3.4.2.1). */
const PUBACK_REASONS: ReadonlySet<number> = new Set([0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]);

/**
 * Acknowledges a gateway's QoS 1 PUBLISH that was refused or dropped, so that it does not hold a
 * slot of the gateway's in-flight window for ever: MQTT 3.1.1 has only the plain PUBACK (the
 * errors topic says what went wrong), MQTT 5 carries `code` (0x80 where a PUBACK cannot carry it).
 */
export function acknowledgeRefused(conn: Connection, packet: IPublishPacket, code: number): void {
  const messageId = packet.messageId;
  if (packet.qos !== 1 || messageId === undefined) return;
  if (!conn.isV5) {
    conn.sendPuback(messageId);
    return;
  }
  conn.send({ cmd: 'puback', messageId, reasonCode: PUBACK_REASONS.has(code) ? code : REASON_V5.unspecifiedError });
}

/** What a gateway's PUBLISH is to its errors topic. */
export const publishInfo = (packet: IPublishPacket, topic: string): MqttMessageInfo => ({
  messageType: 'PUBLISH',
  topic,
  packetId: packet.qos > 0 ? packet.messageId : undefined,
});
