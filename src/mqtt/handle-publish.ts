/**
 * PUBLISH from a client (MQTT 3.1.1 §3.3, reference §1.5, §1.6, §1.9). A device may publish its
 * own events and state only, at QoS 0 or 1; anything else records an error and closes the
 * connection. The retain flag is ignored on these. Acknowledgement follows hand-off: an event is PUBACKed
 * once queued to the backends, a state only once the store accepted it. Both are published into
 * the backend namespace of the session engine. Engine clients publish by client-publish's rules.
 * The device's policy (device-policies) is asked too: an explicit Deny takes one of its Cloud IoT
 * Core topics away, and an Allow grants custom topics, published into its registry's own space
 * (device-spaces), never to backends; `/devices/…` topics stay each device's own, whatever a policy says.
 * A retained PUBLISH on a custom topic needs `retain` as well (AWS iot:RetainPublish) and is kept
 * as the topic's retained message in the registry's space; without `retain` it is refused.
 * Events and states count against the device's and registry's rate limits (publish-quotas).
 * A gateway's attach and detach go to handle-gateway-control; the events and state it publishes
 * for a device it attached (gateway-traffic) take the same path as the device's own, as that device.
 */
import type { IPublishPacket } from 'mqtt-packet';
import { isKeywayError } from '../domain/errors.js';
import { LIMITS } from '../domain/resources.js';
import { publishClient } from './client-publish.js';
import type { ActiveState, Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { clip, closeWithDeviceError } from './device-errors.js';
import { endSender, type DeviceSender } from './device-senders.js';
import type { DeviceSession } from './device-session.js';
import { handleGatewayControl } from './handle-gateway-control.js';
import { attachedPublish } from './gateway-traffic.js';
import { classifyGatewayPublish } from './gateway-topics.js';
import { isCustomTopic } from './device-topics.js';
import { DeviceMessage, expiryOf, Message, passThroughProperties } from './message.js';
import { admitEvent, admitState } from './publish-quotas.js';
import { REASON_V5 } from './reason-codes.js';
import { resolveTopicAlias } from './topic-aliases.js';
import { auditDenied } from './audit-decisions.js';

export function handlePublish(
  ctx: BrokerContext,
  conn: Connection,
  state: ActiveState,
  packet: IPublishPacket,
): void | Promise<void> {
  if (state.phase === 'client') {
    publishClient(ctx, conn, state.session, state.namespace, packet);
    return;
  }
  const session = state.session;
  const qos = packet.qos;
  if (qos !== 0 && qos !== 1) {
    closeWithDeviceError(ctx, conn, session, 'INVALID_ARGUMENT', 'mqtt: QoS 2 is not supported.', REASON_V5.qosNotSupported);
    return;
  }
  const topic =
    packet.properties?.topicAlias === undefined
      ? packet.topic
      : resolveTopicAlias(ctx.limits.topicAliasMaximum, session, packet, (message, code) =>
          closeWithDeviceError(ctx, conn, session, 'INVALID_ARGUMENT', message, code),
        );
  if (topic === undefined) return;
  const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
  // The device's own topics first: exact compares, the path of nearly every PUBLISH.
  const target = session.topics.classifyPublish(topic);
  if ((target.kind === 'events' || target.kind === 'state') && !session.policy.can('publish', topic)) {
    denyPublish(ctx, conn, session, topic, 'denied by the device policy');
    return;
  }
  switch (target.kind) {
    case 'forbidden':
      return publishNotOwn(ctx, conn, session, topic, payload, qos, packet);
    case 'invalid':
      closeWithDeviceError(
        ctx,
        conn,
        session,
        'INVALID_ARGUMENT',
        `mqtt: Invalid topic '${clip(topic)}': ${target.reason}.`,
        REASON_V5.topicNameInvalid,
      );
      return;
    case 'events':
      publishEvent(ctx, conn, session, payload, qos, target.suffix, packet);
      return;
    case 'state':
      return publishState(ctx, conn, session, payload, qos, packet);
  }
}

/**
 * A topic that is not one of the device's own: a gateway's attach or detach, a gateway speaking
 * for a device it attached, a custom topic its policy grants, or a refusal.
 */
function publishNotOwn(
  ctx: BrokerContext,
  conn: Connection,
  session: DeviceSession,
  topic: string,
  payload: Buffer,
  qos: 0 | 1,
  packet: IPublishPacket,
): void | Promise<void> {
  const gateway = classifyGatewayPublish(session.topics.deviceId, session.device.gateway !== undefined, topic);
  if (gateway?.kind === 'attach' || gateway?.kind === 'detach') return handleGatewayControl(ctx, conn, session, gateway, topic, payload, packet);
  if (gateway?.kind === 'device') {
    const attached = attachedPublish(ctx, conn, session, gateway.deviceId, topic, packet);
    if (attached === undefined) return;
    const { sender, target } = attached;
    if (target.kind === 'state') return publishState(ctx, conn, sender, payload, qos, packet);
    publishEvent(ctx, conn, sender, payload, qos, target.suffix, packet);
    return;
  }
  if (!isCustomTopic(topic)) {
    denyPublish(ctx, conn, session, topic, 'not a topic of the device');
    return;
  }
  if (!session.policy.can('publish', topic)) {
    denyPublish(ctx, conn, session, topic, 'not granted by the device policy');
    return;
  }
  if (packet.retain && !session.policy.can('retain', topic)) {
    denyPublish(ctx, conn, session, topic, 'retain not granted by the device policy');
    return;
  }
  publishCustom(ctx, conn, session, topic, payload, qos, packet);
}

/** Ends the sender (endSender) when `payload` is over `limit`; returns whether it did. */
function refuseOversize(
  ctx: BrokerContext,
  conn: Connection,
  session: DeviceSender,
  packet: IPublishPacket,
  payload: Buffer,
  limit: number,
  what: string,
): boolean {
  if (payload.length <= limit) return false;
  endSender(
    ctx,
    conn,
    session,
    packet,
    'INVALID_ARGUMENT',
    `mqtt: The ${what} of ${payload.length} bytes exceeds the limit of ${limit} bytes.`,
    REASON_V5.packetTooLarge,
  );
  return true;
}

function denyPublish(ctx: BrokerContext, conn: Connection, session: DeviceSession, topic: string, reason: string): void {
  auditDenied(ctx, conn, session.key, 'publish', topic, reason);
  closeWithDeviceError(
    ctx,
    conn,
    session,
    'PERMISSION_DENIED',
    `mqtt: The device is not allowed to publish to topic '${clip(topic)}'.`,
    REASON_V5.notAuthorized,
  );
}

/**
 * A custom topic into the registry's device space, to the devices subscribed there (each delivery
 * asks the subscriber's policy for `receive`). A retained one (the policy allowed it) replaces the
 * topic's retained message there, or clears it when empty; live copies carry the flag only to MQTT 5
 * subscribers that asked for retain-as-published.
 */
function publishCustom(
  ctx: BrokerContext,
  conn: Connection,
  session: DeviceSession,
  topic: string,
  payload: Buffer,
  qos: 0 | 1,
  packet: IPublishPacket,
): void {
  if (refuseOversize(ctx, conn, session, packet, payload, LIMITS.eventBytes, 'message')) return;
  const given = packet.properties;
  const origin = session.subscriber ?? session;
  const expiresAt = expiryOf(given, Date.now());
  const properties = passThroughProperties(given);
  if (packet.retain) {
    // A copy that pins neither the socket chunk the payload was cut from nor the publisher's session.
    ctx.deviceSpaces.retain(session.registry, new Message(topic, Buffer.from(payload), qos, true, expiresAt, undefined, properties));
  }
  ctx.deviceSpaces.publish(session.registry, new Message(topic, payload, qos, packet.retain, expiresAt, origin, properties), conn);
  if (qos === 1) conn.sendPuback(packet.messageId as number);
}

/**
 * `session` is the device the event is from: on its own connection, or attached to the gateway
 * whose connection `conn` is. A rule it breaks ends it through endSender (disconnected or detached).
 */
function publishEvent(
  ctx: BrokerContext,
  conn: Connection,
  session: DeviceSender,
  payload: Buffer,
  qos: 0 | 1,
  suffix: string,
  packet: IPublishPacket,
): void {
  if (refuseOversize(ctx, conn, session, packet, payload, LIMITS.eventBytes, 'telemetry event')) return;
  if (!admitEvent(ctx, conn, session, payload.length, packet)) return;
  ctx.gateway.recordEvent(session.key, ctx.now());
  const topic = suffix === '' ? session.backendEvents : session.backendEvents + suffix;
  publishToBackends(ctx, conn, session, topic, payload, qos, suffix, packet);
  if (qos === 1) conn.sendPuback(packet.messageId as number);
}

/** As publishEvent: `session` may be a device attached to the gateway of `conn`. */
async function publishState(
  ctx: BrokerContext,
  conn: Connection,
  session: DeviceSender,
  payload: Buffer,
  qos: 0 | 1,
  packet: IPublishPacket,
): Promise<void> {
  if (refuseOversize(ctx, conn, session, packet, payload, LIMITS.stateBytes, 'state')) return;
  if (!admitState(ctx, conn, session, packet)) return;
  try {
    await ctx.gateway.recordState(session.key, payload, ctx.now());
  } catch (e) {
    // Not acknowledged: the device keeps the state and sends it again on its next connection.
    if (isKeywayError(e)) {
      endSender(ctx, conn, session, packet, e.status, `mqtt: The state was not accepted: ${e.message}`, REASON_V5.unspecifiedError);
    } else {
      conn.log.warn({ err: e }, 'storing a device state failed');
      conn.close('the state could not be stored', { level: 'warn', code: REASON_V5.unspecifiedError });
    }
    return;
  }
  if (!conn.isOpen) return;
  publishToBackends(ctx, conn, session, session.backendState, payload, qos, '', packet);
  if (qos === 1) conn.sendPuback(packet.messageId as number);
}

/**
 * A device message into the backend namespace; its MQTT 5 properties are made only if a subscriber
 * needs them. The device's connection waits while a backend it reaches is congested.
 */
function publishToBackends(
  ctx: BrokerContext,
  conn: Connection,
  session: DeviceSender,
  topic: string,
  payload: Buffer,
  qos: 0 | 1,
  suffix: string,
  packet: IPublishPacket,
): void {
  const given = packet.properties;
  const expiresAt = given?.messageExpiryInterval === undefined ? Infinity : expiryOf(given, Date.now());
  ctx.backend.publish(new DeviceMessage(topic, payload, qos, expiresAt, session.attributes, suffix, given), conn);
}
