/**
 * UNSUBSCRIBE (MQTT 3.1.1 §3.10, MQTT 5 §3.10): drops the named subscriptions; UNSUBACK in every
 * case, with a reason code per filter for MQTT 5 (0x00 removed, 0x11 there was none). A gateway
 * unsubscribes the filters of the devices it attached the same way (gateway-traffic).
 */
import type { IUnsubscribePacket } from 'mqtt-packet';
import type { ActiveState, Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { attachedFilterDevice } from './gateway-topics.js';
import { unsubscribeAttached } from './gateway-traffic.js';

const SUCCESS = 0x00;
const NO_SUBSCRIPTION_EXISTED = 0x11;

export function handleUnsubscribe(ctx: BrokerContext, conn: Connection, state: ActiveState, packet: IUnsubscribePacket): void {
  const codes: number[] = [];
  for (const filter of packet.unsubscriptions) {
    codes.push(unsubscribe(ctx, conn, state, filter) ? SUCCESS : NO_SUBSCRIPTION_EXISTED);
  }
  conn.send({ cmd: 'unsuback', messageId: packet.messageId as number, granted: conn.isV5 ? codes : [] });
}

/** Returns whether the filter was subscribed. */
function unsubscribe(ctx: BrokerContext, conn: Connection, state: ActiveState, filter: string): boolean {
  if (state.phase === 'client') return state.namespace.router.unsubscribe(state.session, filter);
  const session = state.session;
  const attached = session.device.gateway !== undefined ? attachedFilterDevice(session.topics.deviceId, filter) : undefined;
  if (attached !== undefined) return unsubscribeAttached(session, attached, filter);
  const kind = session.topics.classifySubscription(filter);
  if (kind === 'errors') {
    const was = session.errorsSubscribed;
    session.errorsSubscribed = false;
    return was;
  }
  if (kind === 'commands') {
    const was = session.commandsQos !== undefined;
    session.commandsQos = undefined;
    return was;
  }
  if (kind === 'config') {
    const was = session.config.subscribed;
    session.config.unsubscribe();
    return was;
  }
  const subscriber = session.subscriber;
  return subscriber !== undefined && ctx.deviceSpaces.unsubscribe(subscriber, filter);
}
