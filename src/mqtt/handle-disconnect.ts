/**
 * DISCONNECT (MQTT 3.1.1 §3.14, MQTT 5 §3.14): the client leaves cleanly, and its will is dropped,
 * unless an MQTT 5 client asks for it with 0x04. An MQTT 5 client may change its session expiry
 * here, but not from 0 at CONNECT to more (a protocol error, which publishes the will).
 */
import type { IDisconnectPacket } from 'mqtt-packet';
import type { ActiveState, Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { REASON_V5 } from './reason-codes.js';

export function handleDisconnect(ctx: BrokerContext, conn: Connection, state: ActiveState, packet: IDisconnectPacket): void {
  if (state.phase === 'client') {
    const session = state.session;
    const expiry = packet.properties?.sessionExpiryInterval;
    if (expiry !== undefined) {
      if (session.expirySeconds === 0 && expiry !== 0) {
        conn.close('a session expiry on DISCONNECT after none on CONNECT', { level: 'info', code: REASON_V5.protocolError });
        return;
      }
      session.expirySeconds = Math.min(expiry, ctx.limits.maxSessionExpirySeconds);
    }
    if (packet.reasonCode !== REASON_V5.disconnectWithWill) session.will = undefined;
  }
  conn.close('client disconnected');
}
