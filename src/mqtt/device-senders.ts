/**
 * Who a device's event or state speaks for: a device on its own connection (DeviceSession), or a
 * device attached to a gateway (GatewayAttachment, reference §1.10). Both take the one path of
 * handle-publish (publishEvent, publishState) with the device's own identity, topics, backend
 * attributes and limits; only what ends a sender that breaks a rule differs.
 */
import type { IPublishPacket } from 'mqtt-packet';
import type { RpcStatus } from '../domain/errors.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { closeWithDeviceError } from './device-errors.js';
import type { DeviceSession } from './device-session.js';
import { GatewayAttachment } from './gateway-attachments.js';
import { detachForError } from './gateway-detach.js';

export type DeviceSender = DeviceSession | GatewayAttachment;

/**
 * `packet` of `sender` broke a rule: the device's lastErrorStatus records `message`. A device on
 * its own connection is disconnected (told `code` over MQTT 5); a device attached to a gateway is
 * detached instead, the gateway learns why on its errors topic and keeps its connection, and its
 * QoS 1 `packet` is acknowledged (with `code` over MQTT 5).
 */
export function endSender(
  ctx: BrokerContext,
  conn: Connection,
  sender: DeviceSender,
  packet: IPublishPacket,
  status: RpcStatus,
  message: string,
  code: number,
): void {
  if (sender instanceof GatewayAttachment) detachForError(ctx, conn, sender, packet, packet.topic, status, message, code);
  else closeWithDeviceError(ctx, conn, sender, status, message, code);
}
