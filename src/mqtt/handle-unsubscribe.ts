/** UNSUBSCRIBE (MQTT 3.1.1 §3.10): drops the named subscriptions; UNSUBACK in every case. */
import type { IUnsubscribePacket } from 'mqtt-packet';
import type { ActiveState, Connection } from './connection.js';
import type { BrokerContext } from './context.js';

export function handleUnsubscribe(ctx: BrokerContext, conn: Connection, state: ActiveState, packet: IUnsubscribePacket): void {
  for (const filter of packet.unsubscriptions) {
    if (state.phase === 'backend') {
      ctx.backendSubscriptions.remove(conn, state.session, filter);
      continue;
    }
    const session = state.session;
    const kind = session.topics.classifySubscription(filter);
    if (kind === 'commands') session.commandsQos = undefined;
    else if (kind === 'config') session.config.unsubscribe();
  }
  conn.send({ cmd: 'unsuback', messageId: packet.messageId as number, granted: [] });
}
