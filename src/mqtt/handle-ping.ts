/**
 * PINGREQ (MQTT 3.1.1 §3.12): PINGRESP; for a device it is also its heartbeat (`lastHeartbeatTime`).
 * A gateway's keep-alive is the liveness of the devices it attached (they send no PINGREQ of
 * their own), so it is their heartbeat too: at most LIMITS.devicesAttachedPerGateway of them, each
 * written behind.
 */
import type { ActiveState, Connection } from './connection.js';
import type { BrokerContext } from './context.js';

export function handlePing(ctx: BrokerContext, conn: Connection, state: ActiveState): void {
  conn.send({ cmd: 'pingresp' });
  if (state.phase !== 'device') return;
  const now = ctx.now();
  ctx.gateway.recordHeartbeat(state.session.key, now);
  for (const attachment of state.session.attachments?.values() ?? []) ctx.gateway.recordHeartbeat(attachment.key, now);
}
