/**
 * A gateway speaking for the devices it attached (reference §1.10): it publishes their
 * `/devices/{id}/events[/…]` and `/devices/{id}/state` (handle-publish sends them exactly as if
 * the device had: its stored state, its limits, its backend topics and attributes) and subscribes
 * to their `/devices/{id}/config` and `/devices/{id}/commands/#`. The attached device's own policy
 * decides each of these, exactly as on a connection of its own (an explicit Deny takes one of its
 * topics away); the gateway's own policy governs the gateway's own topics.
 *
 * For a device that is not attached the message is dropped (a QoS 1 PUBLISH still acknowledged,
 * a filter refused in the SUBACK) and the gateway gets GATEWAY_DEVICE_NOT_FOUND on its errors
 * topic. What would disconnect an attached device on a connection of its own (a topic that is
 * not its own, a malformed one) detaches it instead. The gateway's connection stays either way.
 */
import type { IPublishPacket, ISubscribePacket } from 'mqtt-packet';
import { auditDenied } from './audit-decisions.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { clip, recordDeviceError } from './device-errors.js';
import type { DeviceSession, GrantedQoS } from './device-session.js';
import type { DevicePublish } from './device-topics.js';
import type { GatewayAttachment } from './gateway-attachments.js';
import { detachedBecause, detachForError, endAttachment } from './gateway-detach.js';
import { acknowledgeRefused, publishInfo, sendGatewayError, type MqttMessageInfo } from './gateway-errors.js';
import { REASON_V5, SUBACK_FAILURE } from './reason-codes.js';

const NOT_ATTACHED = 'the device is not attached to the gateway';

function tellNotAttached(conn: Connection, gateway: DeviceSession, deviceId: string, message: MqttMessageInfo): void {
  sendGatewayError(conn, gateway, {
    type: 'GATEWAY_DEVICE_NOT_FOUND',
    deviceId,
    description: `The device '${clip(deviceId)}' is not attached to the gateway.`,
    message,
  });
}

/**
 * The attached device a gateway's PUBLISH on `/devices/{deviceId}/…` speaks for and what it
 * publishes, or undefined once the message was dropped or its device detached.
 */
export function attachedPublish(
  ctx: BrokerContext,
  conn: Connection,
  gateway: DeviceSession,
  deviceId: string,
  topic: string,
  packet: IPublishPacket,
): { readonly sender: GatewayAttachment; readonly target: Extract<DevicePublish, { kind: 'events' | 'state' }> } | undefined {
  const attachment = gateway.attachments?.get(deviceId);
  if (attachment === undefined) {
    auditDenied(ctx, conn, gateway.key, 'publish', topic, NOT_ATTACHED);
    tellNotAttached(conn, gateway, deviceId, publishInfo(packet, topic));
    acknowledgeRefused(conn, packet, REASON_V5.notAuthorized);
    return undefined;
  }
  const target = attachment.topics.classifyPublish(topic);
  if (target.kind === 'events' || target.kind === 'state') {
    if (attachment.policy.can('publish', topic)) return { sender: attachment, target };
    // What closes its own connection (handle-publish) detaches it here.
    auditDenied(ctx, conn, gateway.key, 'publish', topic, 'denied by the attached device policy');
    const message = `mqtt: The device is not allowed to publish to topic '${clip(topic)}'.`;
    detachForError(ctx, conn, attachment, packet, topic, 'PERMISSION_DENIED', message, REASON_V5.notAuthorized);
    return undefined;
  }
  if (target.kind === 'invalid') {
    const message = `mqtt: Invalid topic '${clip(topic)}': ${target.reason}.`;
    detachForError(ctx, conn, attachment, packet, topic, 'INVALID_ARGUMENT', message, REASON_V5.topicNameInvalid);
    return undefined;
  }
  auditDenied(ctx, conn, gateway.key, 'publish', topic, 'not a topic of the attached device');
  const message = `mqtt: The device is not allowed to publish to topic '${clip(topic)}'.`;
  detachForError(ctx, conn, attachment, packet, topic, 'PERMISSION_DENIED', message, REASON_V5.notAuthorized);
  return undefined;
}

/**
 * A gateway's SUBSCRIBE filters on other devices' topics, decided one at a time and never
 * refusing the whole packet. Config deliveries and error messages wait for `afterSuback`, so that
 * they follow the SUBACK on the wire.
 */
export class AttachedSubscriptions {
  readonly #after: Array<() => void> = [];

  constructor(
    readonly ctx: BrokerContext,
    readonly conn: Connection,
    readonly gateway: DeviceSession,
    readonly packet: ISubscribePacket,
  ) {}

  /** The SUBACK code for `filter` of the device `deviceId`: the granted QoS, or a failure. */
  subscribe(deviceId: string, filter: string, requestedQos: number): number {
    const { ctx, conn, gateway } = this;
    const info: MqttMessageInfo = { messageType: 'SUBSCRIBE', topic: filter, packetId: this.packet.messageId };
    const attachment = gateway.attachments?.get(deviceId);
    if (attachment === undefined) {
      auditDenied(ctx, conn, gateway.key, 'subscribe', filter, NOT_ATTACHED);
      this.#after.push(() => tellNotAttached(conn, gateway, deviceId, info));
      return this.#failure();
    }
    const kind = attachment.topics.classifySubscription(filter);
    const qos: GrantedQoS = requestedQos >= 1 ? 1 : 0;
    const own = kind === 'commands' || kind === 'config';
    if (own && attachment.policy.canSubscribe(filter)) {
      if (kind === 'commands') {
        attachment.commandsQos = qos;
        return qos;
      }
      this.#after.push(() => {
        if (!attachment.ended) attachment.config.subscribe(qos);
      });
      return qos;
    }
    // Refused by the device's policy, or not its topic filter (its errors are the gateway's own
    // topic): what would disconnect the device on its own connection detaches it.
    if (own) auditDenied(ctx, conn, gateway.key, 'subscribe', filter, 'denied by the attached device policy');
    else auditDenied(ctx, conn, gateway.key, 'subscribe', filter, 'not a topic filter of the attached device');
    const message = `mqtt: The device is not allowed to subscribe to topic '${clip(filter)}'.`;
    recordDeviceError(ctx, conn, attachment, 'PERMISSION_DENIED', message);
    endAttachment(attachment, message, undefined);
    this.#after.push(() => sendGatewayError(conn, gateway, { ...detachedBecause(message, info), deviceId: attachment.deviceId }));
    return this.#failure();
  }

  /** Sends what waited for the SUBACK. */
  afterSuback(): void {
    for (const then of this.#after) then();
  }

  #failure(): number {
    return this.conn.isV5 ? REASON_V5.notAuthorized : SUBACK_FAILURE;
  }
}
