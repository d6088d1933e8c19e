/**
 * A message routed within a namespace, and its encoding as a PUBLISH. A message is immutable once
 * routed: every subscriber, queue and the retained store share the one object. What differs per
 * delivery (QoS, retain flag, packet id, DUP, remaining expiry, subscription identifiers) is given
 * when it is encoded. The common encodings are made once per protocol version and QoS: QoS 0 bytes
 * are shared between subscribers, QoS 1 and 2 bytes are copied with the packet id patched in.
 */
import mqttPacket, { type IPublishPacket } from 'mqtt-packet';
import { deliveryProperties, type DeviceAttributes } from './delivery-properties.js';
import { encodePublish } from './publish-encoder.js';
import type { QoS } from './topic-trie.js';

export type PublishProperties = NonNullable<IPublishPacket['properties']>;

const ENCODE_V5 = { protocolVersion: 5 } as const;

/** Who published a message, for the MQTT 5 "no local" option; any object identity will do. */
export type Origin = object;

export class Message {
  #qos0V4: Buffer | undefined;
  #qos0V5: Buffer | undefined;
  /** The first plain QoS 1 or 2 encoding per version, [v4, v5], as a template for the next subscribers. */
  #withId: [Buffer | undefined, Buffer | undefined] | undefined;

  constructor(
    readonly topic: string,
    readonly payload: Buffer,
    readonly qos: QoS,
    /** The retain flag it was published with. */
    readonly retain: boolean,
    /** `Date.now()` milliseconds after which it is no longer delivered; Infinity when it never expires. */
    readonly expiresAt: number,
    readonly origin: Origin | undefined,
    /** MQTT 5 properties passed through to subscribers (no expiry, alias or subscription identifier). */
    readonly given: PublishProperties | undefined = undefined,
  ) {}

  /** The properties an MQTT 5 subscriber gets, before expiry and subscription identifiers. */
  get properties(): PublishProperties | undefined {
    return this.given;
  }

  expired(now: number): boolean {
    return now >= this.expiresAt;
  }

  /** Seconds left of its expiry interval (MQTT 5 §3.3.2.3.3), at least 1 while it is deliverable. */
  remainingSeconds(now: number): number {
    return Math.max(1, Math.ceil((this.expiresAt - now) / 1000));
  }

  /**
   * The PUBLISH for one delivery. QoS 0 without a retain flag, expiry or subscription identifiers
   * is encoded once per protocol version and the bytes shared between subscribers.
   */
  encode(
    v5: boolean,
    qos: QoS,
    retain: boolean,
    messageId: number | undefined,
    dup: boolean,
    subscriptionIds: readonly number[] | undefined,
    now: number,
  ): Buffer {
    const plain = !retain && !dup && (!v5 || (subscriptionIds === undefined && this.expiresAt === Infinity));
    if (!plain) return this.#generate(v5, qos, retain, messageId, dup, subscriptionIds, now);
    if (qos === 0) {
      if (v5) return (this.#qos0V5 ??= this.#generate(true, 0, false, undefined, false, undefined, now));
      return (this.#qos0V4 ??= this.#generate(false, 0, false, undefined, false, undefined, now));
    }
    // The message's QoS is the highest any subscriber gets, so plain QoS 1 and 2 copies of one
    // message differ only in their packet id (and QoS bits) unless both QoS occur: then generate.
    const slot = v5 ? 1 : 0;
    const template = this.#withId?.[slot];
    if (template !== undefined && ((template[0] as number) & 0x06) >> 1 === qos) return withPacketId(template, messageId as number);
    const bytes = this.#generate(v5, qos, false, messageId, false, undefined, now);
    if (template === undefined) (this.#withId ??= [undefined, undefined])[slot] = bytes;
    return bytes;
  }

  /**
   * An MQTT 5 PUBLISH using a server-to-client topic alias (MQTT 5 §3.3.2.3.4): the topic and the
   * alias when the client does not know it yet, then the alias alone. Always encoded afresh.
   */
  encodeAliased(
    qos: QoS,
    retain: boolean,
    messageId: number | undefined,
    dup: boolean,
    subscriptionIds: readonly number[] | undefined,
    now: number,
    alias: number,
    aliasKnown: boolean,
  ): Buffer {
    return this.#generate(true, qos, retain, messageId, dup, subscriptionIds, now, alias, aliasKnown);
  }

  #generate(
    v5: boolean,
    qos: QoS,
    retain: boolean,
    messageId: number | undefined,
    dup: boolean,
    subscriptionIds: readonly number[] | undefined,
    now: number,
    alias?: number,
    aliasKnown = false,
  ): Buffer {
    // MQTT 3.1.1 has no properties: the direct encoder, for what is most deliveries.
    if (!v5) return encodePublish(this.topic, this.payload, qos, dup, retain, messageId, false);
    const packet: IPublishPacket = { cmd: 'publish', topic: aliasKnown ? '' : this.topic, payload: this.payload, qos, dup, retain };
    if (messageId !== undefined) packet.messageId = messageId;
    const base = this.properties;
    if (this.expiresAt !== Infinity || subscriptionIds !== undefined || alias !== undefined) {
      const props: PublishProperties = { ...base };
      if (this.expiresAt !== Infinity) props.messageExpiryInterval = this.remainingSeconds(now);
      if (subscriptionIds !== undefined) {
        props.subscriptionIdentifier = subscriptionIds.length === 1 ? (subscriptionIds[0] as number) : [...subscriptionIds];
      }
      if (alias !== undefined) props.topicAlias = alias;
      packet.properties = props;
    } else if (base) {
      packet.properties = base;
    }
    return mqttPacket.generate(packet, ENCODE_V5);
  }
}

/**
 * A device's event or state in the backend namespace. Its MQTT 5 properties (the device's
 * attributes as user properties) are made on first use: MQTT 3.1.1 subscribers never pay for them.
 */
export class DeviceMessage extends Message {
  #properties: PublishProperties | undefined;

  constructor(
    topic: string,
    payload: Buffer,
    qos: QoS,
    expiresAt: number,
    /** The device's project, location, registry and ids: what backend deliveries are checked against. */
    readonly attributes: DeviceAttributes,
    /** The events topic's `/{subfolder…}`, '' when none. */
    private readonly suffix: string,
    private readonly deviceProperties: IPublishPacket['properties'],
  ) {
    super(topic, payload, qos, false, expiresAt, undefined);
  }

  override get properties(): PublishProperties {
    return (this.#properties ??= withoutExpiry(deliveryProperties(this.attributes, this.suffix, this.deviceProperties)));
  }
}

function withoutExpiry(props: PublishProperties): PublishProperties {
  // The expiry goes out as the remaining interval, computed per delivery.
  delete props.messageExpiryInterval;
  return props;
}

/** A copy of an encoded QoS 1 or 2 PUBLISH with another packet id. */
function withPacketId(template: Buffer, messageId: number): Buffer {
  let pos = 1;
  while (((template[pos] as number) & 0x80) !== 0) pos++;
  pos++;
  const idAt = pos + 2 + template.readUInt16BE(pos);
  const copy = Buffer.allocUnsafe(template.length);
  template.copy(copy);
  copy.writeUInt16BE(messageId, idAt);
  return copy;
}

/** When a message published now with these properties expires (`Date.now()` ms), Infinity for never. */
export function expiryOf(properties: IPublishPacket['properties'], now: number): number {
  const seconds = properties?.messageExpiryInterval;
  return seconds === undefined ? Infinity : now + seconds * 1000;
}

/** The MQTT 5 properties of a client's PUBLISH that travel on with it (MQTT 5 §3.3.2.3). */
export function passThroughProperties(given: IPublishPacket['properties']): PublishProperties | undefined {
  if (!given) return undefined;
  const props: PublishProperties = {};
  for (const key of PASS_THROUGH) {
    if (given[key] !== undefined) Object.assign(props, { [key]: given[key] });
  }
  return Object.keys(props).length === 0 ? undefined : props;
}

const PASS_THROUGH = ['payloadFormatIndicator', 'contentType', 'responseTopic', 'correlationData', 'userProperties'] as const;
