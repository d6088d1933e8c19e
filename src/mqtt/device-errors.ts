/**
 * A device that breaks the protocol's rules has its connection closed and the reason recorded as
 * its `lastErrorStatus` (reference §1.6), as `mqtt: …` messages in Cloud IoT Core's style.
 */
import type { DeviceKey } from '../bus/bus.js';
import { RPC_CODES, type RpcStatus } from '../domain/errors.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import type { DeviceSession } from './device-session.js';

const CLIP_CHARS = 200;

/** Peer-chosen text (topics, client ids) shortened before it enters a message or a log line. */
export const clip = (text: string): string => (text.length <= CLIP_CHARS ? text : `${text.slice(0, CLIP_CHARS)}…`);

/**
 * Records `message` as the device's last error, then closes its connection; an MQTT 5 device is
 * told `code` in a DISCONNECT.
 */
export function closeWithDeviceError(
  ctx: BrokerContext,
  conn: Connection,
  session: DeviceSession,
  status: RpcStatus,
  message: string,
  code: number,
): void {
  recordDeviceError(ctx, conn, session, status, message);
  conn.close(message, { level: 'info', code });
}

/** `session` may be a device attached to a gateway (`conn` is then the gateway's). */
export function recordDeviceError(
  ctx: BrokerContext,
  conn: Connection,
  session: { readonly key: DeviceKey },
  status: RpcStatus,
  message: string,
): void {
  try {
    ctx.gateway.recordError(session.key, { code: RPC_CODES[status].code, message }, ctx.now());
  } catch (e) {
    conn.log.warn({ err: e }, 'could not record a device error');
  }
}
