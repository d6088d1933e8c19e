/** PINGREQ (MQTT 3.1.1 §3.12): PINGRESP; for a device it is also its heartbeat (`lastHeartbeatTime`). */
import type { ActiveState, Connection } from './connection.js';
import type { BrokerContext } from './context.js';

export function handlePing(ctx: BrokerContext, conn: Connection, state: ActiveState): void {
  conn.send({ cmd: 'pingresp' });
  if (state.phase === 'device') ctx.gateway.recordHeartbeat(state.session.key, ctx.now());
}
