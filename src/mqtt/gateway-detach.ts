/**
 * How an attachment ends (reference §1.10). The gateway may detach a device itself; otherwise the
 * server ends it — what would disconnect the device on a connection of its own detaches it from
 * its gateway instead — and the gateway is told on its errors topic, naming the device. The
 * gateway's own connection is never closed for something one of its devices did.
 */
import type { IPublishPacket } from 'mqtt-packet';
import type { RpcStatus } from '../domain/errors.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { recordDeviceError } from './device-errors.js';
import type { GatewayAttachment } from './gateway-attachments.js';
import { acknowledgeRefused, publishInfo, sendGatewayError, type GatewayError } from './gateway-errors.js';

/** What the gateway is told when the server detaches one of its devices. */
export type DetachNotice = Omit<GatewayError, 'deviceId'>;

/** The notice of a server-side detachment: `description` says why. */
export const detachedBecause = (description: string, message?: GatewayError['message']): DetachNotice => ({
  type: 'GATEWAY_DETACHMENT_DEVICE_ERROR',
  description,
  ...(message !== undefined ? { message } : {}),
});

/**
 * Ends `attachment`: its config delivery stops, its commands no longer reach the gateway, its
 * topics are refused, and the device leaves the broker's index. `notice` (absent when the gateway
 * asked for it) goes to the gateway's errors topic. Returns whether it was still attached.
 */
export function endAttachment(attachment: GatewayAttachment, reason: string, notice?: DetachNotice): boolean {
  const { conn, gateway } = attachment;
  if (gateway.attachments?.remove(attachment) !== true) return false;
  conn.log.info({ gateway: gateway.key, device: attachment.key, reason }, 'device detached from its gateway');
  if (notice !== undefined) sendGatewayError(conn, gateway, { ...notice, deviceId: attachment.deviceId });
  return true;
}

/**
 * A message the gateway sent for `attachment` broke a rule: recorded as the device's error, the
 * device detached, the gateway told why and its QoS 1 PUBLISH acknowledged (`code` over MQTT 5).
 */
export function detachForError(
  ctx: BrokerContext,
  conn: Connection,
  attachment: GatewayAttachment,
  packet: IPublishPacket,
  topic: string,
  status: RpcStatus,
  message: string,
  code: number,
): void {
  recordDeviceError(ctx, conn, attachment, status, message);
  endAttachment(attachment, message, detachedBecause(message, publishInfo(packet, topic)));
  acknowledgeRefused(conn, packet, code);
}
