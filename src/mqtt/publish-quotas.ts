/**
 * Rate limits on what a device publishes (registry/device-quotas, reference §1.9, §1.11): state
 * updates and telemetry bytes per device (kept across its connections), telemetry messages per
 * connection, publishes per registry. A PUBLISH over a limit is not forwarded, and:
 * - MQTT 5, QoS 1: PUBACK 0x97 (quota exceeded); the connection stays up and the device may retry;
 * - MQTT 5, QoS 0: DISCONNECT 0x97 (there is no acknowledgement to refuse it with);
 * - MQTT 3.1.1: the connection is closed (3.1.1 cannot refuse a PUBLISH), as Cloud IoT Core
 *   disconnects a device over its state rate; a device attached to a gateway is detached instead
 *   (device-senders endSender), and the gateway stays connected.
 * Every refusal records RESOURCE_EXHAUSTED as the device's `lastErrorStatus` (written behind).
 */
import type { IPublishPacket } from 'mqtt-packet';
import type { TokenBucket } from '../domain/token-bucket.js';
import { describeLimit, telemetryMessageBucket, type QuotaVerdict, type RateLimitedDevice } from '../registry/device-quotas.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { recordDeviceError } from './device-errors.js';
import { endSender, type DeviceSender } from './device-senders.js';
import { REASON_V5 } from './reason-codes.js';

/** Telemetry messages of each connection (a gateway's counts those of its attached devices too). */
const connectionBuckets = new WeakMap<Connection, TokenBucket>();

/** A telemetry event of `bytes` payload bytes from `sender` on `conn`: true when admitted, else answered. */
export function admitEvent(ctx: BrokerContext, conn: Connection, sender: DeviceSender, bytes: number, packet: IPublishPacket): boolean {
  const device: RateLimitedDevice = sender.device;
  const now = ctx.quotas.now();
  let bucket = connectionBuckets.get(conn);
  if (bucket === undefined) {
    bucket = telemetryMessageBucket(device.rateLimits, now);
    connectionBuckets.set(conn, bucket);
  }
  // Checked first and taken last, so that a refusal by the device's or registry's limits costs
  // the connection nothing.
  const wait = bucket.secondsUntil(1, now);
  const verdict: QuotaVerdict =
    wait > 0
      ? { ok: false, limit: 'telemetryMessagesPerSecond', retryAfterSeconds: Math.ceil(wait) }
      : ctx.quotas.admitTelemetry(device, bytes, 'mqtt', now);
  if (verdict.ok) {
    bucket.take(now);
    return true;
  }
  refuse(ctx, conn, sender, verdict, packet);
  return false;
}

/** A state update from `sender` on `conn`: true when admitted, else answered. */
export function admitState(ctx: BrokerContext, conn: Connection, sender: DeviceSender, packet: IPublishPacket): boolean {
  const verdict = ctx.quotas.admitState(sender.device);
  if (verdict.ok) return true;
  refuse(ctx, conn, sender, verdict, packet);
  return false;
}

function refuse(
  ctx: BrokerContext,
  conn: Connection,
  sender: DeviceSender,
  verdict: Extract<QuotaVerdict, { ok: false }>,
  packet: IPublishPacket,
): void {
  const message = `mqtt: ${describeLimit(verdict.limit, sender.device.rateLimits)}`;
  if (conn.isV5 && packet.qos === 1) {
    recordDeviceError(ctx, conn, sender, 'RESOURCE_EXHAUSTED', message);
    // Not logged above debug: a device that keeps publishing over its limit would flood the log.
    conn.log.debug({ device: sender.key, limit: verdict.limit }, 'publish refused: over a rate limit');
    conn.send({ cmd: 'puback', messageId: packet.messageId as number, reasonCode: REASON_V5.quotaExceeded });
    return;
  }
  endSender(ctx, conn, sender, packet, 'RESOURCE_EXHAUSTED', message, REASON_V5.quotaExceeded);
}
