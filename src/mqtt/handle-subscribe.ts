/**
 * SUBSCRIBE (MQTT 3.1.1 §3.8, reference §1.5–1.8). A device may subscribe to its own config and
 * `commands/#` topics only; any other filter closes the connection without a SUBACK. Granted QoS
 * is at most 1. Subscribing to config sends the latest version right after the SUBACK. The device's
 * policy must allow each filter too (so a Deny takes config or commands away), and a filter over
 * custom topics (outside `/devices/` and `$`) is granted when the policy allows every topic it can
 * match; it subscribes in the registry's own device space (device-spaces), and after the SUBACK
 * gets the retained messages there that the filter matches and its policy lets it `receive`, with
 * the retain flag (MQTT 3.1.1 §3.3.1.3; MQTT 5 retain handling and retain-as-published are honoured).
 * Backends and open-listener clients subscribe by their namespace's rules (client-subscribe):
 * a backend may subscribe to filters over the device traffic it is shown (backend-topics), plain
 * or shared; a refused filter gets return code 0x80 and the others are granted. MQTT 5 backends
 * learn why: 0x8F for a filter that is not one, 0x87 for one outside their namespace, 0x97 over the quota.
 * A device may subscribe to its `/devices/{id}/errors` too, granted at QoS 0 (gateway errors). A
 * gateway's filters on other devices' topics (gateway-traffic) are decided one by one and never
 * close its connection: granted for a device it attached, refused in the SUBACK otherwise.
 */
import type { ISubscribePacket } from 'mqtt-packet';
import { subscribeClient } from './client-subscribe.js';
import type { ActiveState, Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { clip, closeWithDeviceError } from './device-errors.js';
import { isCustomTopic } from './device-topics.js';
import type { DeviceSession, GrantedQoS } from './device-session.js';
import { REASON_V5 } from './reason-codes.js';
import { auditDenied } from './audit-decisions.js';
import type { RetainHandling, Subscription } from './subscription.js';
import { AttachedSubscriptions } from './gateway-traffic.js';
import { attachedFilterDevice } from './gateway-topics.js';

const grant = (requested: number): GrantedQoS => (requested >= 1 ? 1 : 0);

export function handleSubscribe(ctx: BrokerContext, conn: Connection, state: ActiveState, packet: ISubscribePacket): void {
  if (state.phase === 'device') subscribeDevice(ctx, conn, state.session, packet);
  else subscribeClient(ctx, conn, state.session, state.namespace, packet);
}

function subscribeDevice(ctx: BrokerContext, conn: Connection, session: DeviceSession, packet: ISubscribePacket): void {
  // Every filter is checked before any takes effect: one refused filter refuses the whole packet.
  const policy = session.policy;
  const subscriber = session.subscriber;
  const ownId = session.topics.deviceId;
  const forAttached = (filter: string): string | undefined => (session.device.gateway !== undefined ? attachedFilterDevice(ownId, filter) : undefined);
  let added = 0;
  for (const { topic } of packet.subscriptions) {
    if (forAttached(topic) !== undefined) continue;
    const kind = session.topics.classifySubscription(topic);
    const custom = kind === undefined && isCustomTopic(topic);
    let reason: string | undefined;
    if (kind === undefined && !custom) reason = 'not a topic filter of the device';
    else if (!policy.canSubscribe(topic)) reason = custom ? 'not granted by the device policy' : 'denied by the device policy';
    else if (custom && !subscriber?.subscriptions.has(topic) && (subscriber?.subscriptions.size ?? 0) + ++added > ctx.limits.maxBackendSubscriptions)
      reason = 'too many subscriptions';
    if (reason === undefined) continue;
    auditDenied(ctx, conn, session.key, 'subscribe', topic, reason);
    closeWithDeviceError(
      ctx,
      conn,
      session,
      'PERMISSION_DENIED',
      `mqtt: The device is not allowed to subscribe to topic '${clip(topic)}'.`,
      REASON_V5.notAuthorized,
    );
    return;
  }
  // Granted QoS, or a failure code for a gateway's filter of a device it has not attached.
  const granted: number[] = [];
  let configQos: GrantedQoS | undefined;
  const retained: Array<{ readonly filter: string; readonly qos: GrantedQoS }> = [];
  let attached: AttachedSubscriptions | undefined;
  for (const { topic, qos, rh, rap } of packet.subscriptions) {
    const deviceId = forAttached(topic);
    if (deviceId !== undefined) {
      attached ??= new AttachedSubscriptions(ctx, conn, session, packet);
      granted.push(attached.subscribe(deviceId, topic, qos));
      continue;
    }
    const kind = session.topics.classifySubscription(topic);
    // Errors are sent at QoS 0 only (reference §1.6).
    const g = kind === 'errors' ? 0 : grant(qos);
    granted.push(g);
    if (kind === 'commands') session.commandsQos = g;
    else if (kind === 'config') configQos = g;
    else if (kind === 'errors') session.errorsSubscribed = true;
    else {
      const handling = (rh ?? 0) as RetainHandling;
      const existed = ctx.deviceSpaces.subscribe(session.subscriberOn(conn), topic, customSubscription(g, handling, rap === true));
      if (handling === 0 || (handling === 1 && !existed)) retained.push({ filter: topic, qos: g });
    }
  }
  conn.send({ cmd: 'suback', messageId: packet.messageId as number, granted });
  if (configQos !== undefined) session.config.subscribe(configQos);
  attached?.afterSuback();
  // Made by this packet if it was the device's first custom subscription.
  const custom = session.subscriber;
  if (custom) for (const { filter, qos } of retained) ctx.deviceSpaces.sendRetained(custom, filter, qos);
}

/** Devices keep clean sessions: no local or subscription identifiers do not apply to them. */
const customSubscription = (qos: GrantedQoS, retainHandling: RetainHandling, retainAsPublished: boolean): Subscription => ({
  qos,
  noLocal: false,
  retainAsPublished,
  retainHandling,
  identifiers: undefined,
});
