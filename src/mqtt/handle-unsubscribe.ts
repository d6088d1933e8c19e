/**
 * UNSUBSCRIBE (MQTT 3.1.1 §3.10, MQTT 5 §3.10): drops the named subscriptions; UNSUBACK in every
 * case, with a reason code per filter for MQTT 5 (0x00 removed, 0x11 there was none). A gateway
 * unsubscribes the filters of the devices it attached (gateway-traffic) the same way.
 */
import type { IUnsubscribePacket } from 'mqtt-packet';
import type { ActiveState, Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import type { DeviceSender } from './device-senders.js';
import type { DeviceSubscription } from './device-topics.js';
import { attachedFilterDevice } from './gateway-topics.js';

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
  if (attached !== undefined) {
    const attachment = session.attachments?.get(attached);
    return attachment !== undefined && unsubscribeOwn(attachment, attachment.topics.classifySubscription(filter));
  }
  const kind = session.topics.classifySubscription(filter);
  if (kind === 'errors') {
    const was = session.errorsSubscribed;
    session.errorsSubscribed = false;
    return was;
  }
  if (kind !== undefined) return unsubscribeOwn(session, kind);
  const subscriber = session.subscriber;
  return subscriber !== undefined && ctx.deviceSpaces.unsubscribe(subscriber, filter);
}

/**
 * A device's config or commands filter, on its own connection or attached to a gateway (whose
 * errors topic is the gateway's own, not the attached device's); returns whether it was subscribed.
 */
function unsubscribeOwn(device: DeviceSender, kind: DeviceSubscription | undefined): boolean {
  if (kind === 'commands') {
    const was = device.commandsQos !== undefined;
    device.commandsQos = undefined;
    return was;
  }
  if (kind === 'config') {
    const was = device.config.subscribed;
    device.config.unsubscribe();
    return was;
  }
  return false;
}
