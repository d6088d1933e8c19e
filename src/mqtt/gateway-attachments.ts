/**
 * Bookkeeping of gateway attachments (reference §1.10). A gateway's connection holds the devices
 * it attached (GatewayAttachments, at most LIMITS.devicesAttachedPerGateway); the broker indexes
 * every attachment by device (AttachedDevices, beside the SessionTable of direct connections) so
 * that config pushes, commands and revocations find it. An attachment is the attached device's
 * endpoint on the gateway's connection: its topics, its config delivery (acknowledged by the
 * gateway's PUBACK, routed here by packet id) and its commands subscription.
 */
import type { Packet } from 'mqtt-packet';
import type { Logger } from 'pino';
import type { DeviceKey } from '../bus/bus.js';
import { formatRegistry } from '../domain/names.js';
import { LIMITS } from '../domain/resources.js';
import type { CompiledPolicy } from '../policy/index.js';
import type { GatewayDelegatedDevice } from '../registry/device-manager.js';
import { backendEventsTopic, backendStateTopic } from './backend-topics.js';
import { ConfigDelivery, type ConfigDeliveryOptions, type ConfigLink } from './config-delivery.js';
import type { Connection, InflightKind } from './connection.js';
import { deviceAttributes, type DeviceAttributes } from './delivery-properties.js';
import type { DeviceSession, GrantedQoS } from './device-session.js';
import { DeviceTopics } from './device-topics.js';

/** setTimeout fires at once beyond this. */
const MAX_TIMER_MS = 0x7fffffff;

export interface AttachmentOptions {
  /** The attached device's own compiled policy (device-policies), as on a connection of its own. */
  readonly policy: CompiledPolicy;
  /** How config deliveries are recorded and re-sent. */
  readonly config: Pick<ConfigDeliveryOptions, 'gateway' | 'retryMs' | 'now'>;
  /** Its config could not go out (too many unacknowledged messages): the device goes, not the gateway. */
  readonly onOverflow: (attachment: GatewayAttachment, reason: string) => void;
}

export class GatewayAttachment {
  readonly key: DeviceKey;
  /** The registry's full path (rate limits are per registry too). */
  readonly registry: string;
  readonly topics: DeviceTopics;
  readonly backendEvents: string;
  readonly backendState: string;
  /** The attached device's own attributes: backends see its messages as if it had sent them. */
  readonly attributes: DeviceAttributes;
  readonly config: ConfigDelivery;
  /** Granted QoS of the gateway's `/devices/{id}/commands/#` subscription for it. */
  commandsQos: GrantedQoS | undefined;
  /**
   * What the attached device may do: its own policy, not the gateway's; swapped whole when it is
   * attached again or its policy changes, and read at every check.
   */
  policy: CompiledPolicy;
  /** Bumped by each recompile, so that a slower, older one never overwrites a newer policy. */
  policyEpoch = 0;
  #ended = false;
  #expiry: NodeJS.Timeout | undefined;

  constructor(
    /** Replaced when the gateway attaches it again (a fresh token). */
    public device: GatewayDelegatedDevice,
    /** The gateway's connection and session, which carry everything of the attached device. */
    readonly conn: Connection,
    readonly gateway: DeviceSession,
    owner: GatewayAttachments,
    options: AttachmentOptions,
  ) {
    const { registry, device: id } = device.name;
    this.key = device.key;
    this.registry = formatRegistry(device.name);
    this.topics = new DeviceTopics(id);
    this.backendEvents = backendEventsTopic(registry, id);
    this.backendState = backendStateTopic(registry, id);
    this.attributes = deviceAttributes(device);
    this.policy = options.policy;
    const link = new AttachmentLink(conn, owner, this, options.onOverflow);
    const configTopic = this.topics.config;
    this.config = new ConfigDelivery({
      ...options.config,
      device: device.key,
      topic: configTopic,
      link,
      mayReceive: () => this.policy.can('receive', configTopic),
    });
  }

  get deviceId(): string {
    return this.topics.deviceId;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Calls `onExpire` in `delayMs` (the token it attached with expires), unless it ended first;
   * replaces an earlier one. Undefined: no token, no expiry.
   */
  expireAfter(delayMs: number | undefined, onExpire: () => void): void {
    clearTimeout(this.#expiry);
    this.#expiry = undefined;
    if (this.#ended || delayMs === undefined) return;
    this.#expiry = setTimeout(() => {
      if (!this.#ended) onExpire();
    }, Math.min(Math.max(0, delayMs), MAX_TIMER_MS));
    this.#expiry.unref();
  }

  /** Ends everything it does on the gateway's connection (GatewayAttachments.remove calls it). */
  stop(): void {
    this.#ended = true;
    clearTimeout(this.#expiry);
    this.#expiry = undefined;
    this.commandsQos = undefined;
    this.config.stop();
  }
}

/**
 * The gateway's connection as an attached device's config delivery sees it: the packet ids of the
 * device's configs are noted, so that the gateway's PUBACK acknowledges this device's config, and
 * running out of packet ids detaches this device rather than closing the gateway.
 */
class AttachmentLink implements ConfigLink {
  constructor(
    readonly conn: Connection,
    readonly owner: GatewayAttachments,
    readonly attachment: GatewayAttachment,
    readonly onOverflow: (attachment: GatewayAttachment, reason: string) => void,
  ) {}

  get isOpen(): boolean {
    return this.conn.isOpen && !this.attachment.ended;
  }

  get congested(): boolean {
    return this.conn.congested;
  }

  get log(): Logger {
    return this.conn.log;
  }

  send(packet: Packet): void {
    this.conn.send(packet);
  }

  allocatePacketId(kind: InflightKind): number | undefined {
    const id = this.conn.allocatePacketId(kind);
    if (id !== undefined) this.owner.trackConfig(id, this.attachment);
    return id;
  }

  releasePacketId(id: number): void {
    this.owner.untrackConfig(id);
    this.conn.releasePacketId(id);
  }

  close(reason: string): void {
    this.onOverflow(this.attachment, reason);
  }
}

/** An attach waiting for the device manager's verdict: stale if the gateway's associations changed meanwhile. */
export interface AttachTicket {
  stale: boolean;
}

/** The devices one gateway connection has attached, by device id. */
export class GatewayAttachments {
  readonly #byId = new Map<string, GatewayAttachment>();
  /** Packet ids of attached devices' configs in flight on the gateway's connection. */
  readonly #configs = new Map<number, GatewayAttachment>();
  readonly #attaching = new Set<AttachTicket>();

  constructor(
    readonly index: AttachedDevices,
    readonly limit: number = LIMITS.devicesAttachedPerGateway,
  ) {}

  get size(): number {
    return this.#byId.size;
  }

  get full(): boolean {
    return this.#byId.size >= this.limit;
  }

  get(deviceId: string): GatewayAttachment | undefined {
    return this.#byId.get(deviceId);
  }

  values(): IterableIterator<GatewayAttachment> {
    return this.#byId.values();
  }

  /**
   * Holds `attachment` (its device not attached here yet, and room left) and makes it the
   * device's entry in the broker's index. Returns the attachment of the same device to another
   * gateway that it displaced there, for the caller to end.
   */
  add(attachment: GatewayAttachment): GatewayAttachment | undefined {
    if (this.#byId.has(attachment.deviceId)) throw new Error(`device ${attachment.deviceId} is already attached`);
    if (this.full) throw new Error('too many devices attached');
    this.#byId.set(attachment.deviceId, attachment);
    return this.index.claim(attachment.key, attachment);
  }

  /** Detaches: stops it and forgets it here and in the index. Returns whether it was attached here. */
  remove(attachment: GatewayAttachment): boolean {
    if (this.#byId.get(attachment.deviceId) !== attachment) return false;
    this.#byId.delete(attachment.deviceId);
    attachment.stop();
    this.index.release(attachment.key, attachment);
    return true;
  }

  /** The gateway's connection is gone: every attachment ends with it. */
  removeAll(): void {
    for (const attachment of [...this.#byId.values()]) this.remove(attachment);
    for (const ticket of this.#attaching) ticket.stale = true;
  }

  trackConfig(packetId: number, attachment: GatewayAttachment): void {
    this.#configs.set(packetId, attachment);
  }

  untrackConfig(packetId: number): void {
    this.#configs.delete(packetId);
  }

  /** The gateway acknowledged `packetId` (a config): acknowledges it for the device it was sent for. */
  configAcknowledged(packetId: number): boolean {
    const attachment = this.#configs.get(packetId);
    if (attachment === undefined) return false;
    this.#configs.delete(packetId);
    return attachment.config.acknowledged(packetId);
  }

  /** Packet ids tracked: for tests (none is left behind). */
  get configsInFlight(): number {
    return this.#configs.size;
  }

  beginAttach(): AttachTicket {
    const ticket: AttachTicket = { stale: false };
    this.#attaching.add(ticket);
    return ticket;
  }

  finishAttach(ticket: AttachTicket): void {
    this.#attaching.delete(ticket);
  }

  /**
   * A device was unbound from the gateway, or its auth method changed: an attach decided before
   * that may rest on what no longer holds, so those in flight are refused.
   */
  associationsChanged(): void {
    for (const ticket of this.#attaching) ticket.stale = true;
  }
}

/** Which gateway attachment holds each attached device (at most one: one connection per device). */
export class AttachedDevices {
  readonly #byKey = new Map<DeviceKey, GatewayAttachment>();

  get(key: DeviceKey): GatewayAttachment | undefined {
    return this.#byKey.get(key);
  }

  /** Makes `attachment` the holder of `key`; returns the one it displaced, if any. */
  claim(key: DeviceKey, attachment: GatewayAttachment): GatewayAttachment | undefined {
    const previous = this.#byKey.get(key);
    this.#byKey.set(key, attachment);
    return previous === attachment ? undefined : previous;
  }

  /** Forgets `key` only if `attachment` still holds it. */
  release(key: DeviceKey, attachment: GatewayAttachment): void {
    if (this.#byKey.get(key) === attachment) this.#byKey.delete(key);
  }

  get size(): number {
    return this.#byKey.size;
  }
}
