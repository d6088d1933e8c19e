/**
 * Backend subscriptions and the fan-out of device messages to them. Each delivery walks the trie
 * for the one topic; a backend with overlapping filters gets one copy at the highest QoS its
 * matching filters granted, capped by the QoS the device published with. MQTT 5 backends get the
 * device's attributes as user properties; each encoding is made once per message, when needed.
 */
import mqttPacket, { type IPublishPacket } from 'mqtt-packet';
import type { BackendSession } from './backend-session.js';
import type { Connection, PublishProperties } from './connection.js';
import { deliveryProperties, type DeviceAttributes } from './delivery-properties.js';
import type { GrantedQoS } from './device-session.js';
import { TopicTrie, type QoS } from './topic-trie.js';

const ENCODE_V311 = { protocolVersion: 4 } as const;
const ENCODE_V5 = { protocolVersion: 5 } as const;


export class BackendSubscriptions {
  readonly #trie = new TopicTrie<Connection>();
  /** Reused by every delivery: deliveries are synchronous and never nest. */
  readonly #matches = new Map<Connection, QoS>();
  #droppedQos0 = 0;

  /** Adds or replaces one subscription of a backend connection. */
  add(conn: Connection, session: BackendSession, filter: string, qos: GrantedQoS): void {
    this.#trie.add(filter, conn, qos);
    session.filters.set(filter, qos);
  }

  /** Returns whether the connection held that subscription. */
  remove(conn: Connection, session: BackendSession, filter: string): boolean {
    if (!session.filters.delete(filter)) return false;
    this.#trie.remove(filter, conn);
    return true;
  }

  removeAll(conn: Connection, session: BackendSession): void {
    for (const filter of session.filters.keys()) this.#trie.remove(filter, conn);
    session.filters.clear();
  }

  /** QoS 0 copies dropped because their subscriber was congested. */
  get droppedQos0(): number {
    return this.#droppedQos0;
  }

  /**
   * Queues `payload` on `topic` to every matching backend; returns how many copies were queued.
   * `attributes`, the events `suffix` ('' or '/{subfolder…}') and the device's PUBLISH properties
   * make the MQTT 5 properties. Positional, so the MQTT 3.1.1 path allocates nothing for them.
   */
  deliver(
    topic: string,
    payload: Buffer,
    qos: GrantedQoS,
    attributes?: DeviceAttributes,
    suffix = '',
    given?: IPublishPacket['properties'],
  ): number {
    const matches = this.#matches;
    this.#trie.collect(topic, matches);
    if (matches.size === 0) return 0;
    let sharedQos0: Buffer | undefined;
    let sharedQos0V5: Buffer | undefined;
    let properties: PublishProperties | undefined;
    let queued = 0;
    try {
      for (const [conn, granted] of matches) {
        if (!conn.isOpen) continue;
        const v5 = conn.isV5 && attributes !== undefined;
        if (v5) properties ??= deliveryProperties(attributes, suffix, given);
        if (granted === 0 || qos === 0) {
          if (conn.congested) {
            this.#droppedQos0++;
            continue;
          }
          if (v5) {
            sharedQos0V5 ??= mqttPacket.generate(
              { cmd: 'publish', topic, payload, qos: 0, dup: false, retain: false, properties: properties as PublishProperties },
              ENCODE_V5,
            );
            conn.write(sharedQos0V5);
          } else {
            sharedQos0 ??= mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 0, dup: false, retain: false }, ENCODE_V311);
            conn.write(sharedQos0);
          }
        } else {
          conn.publishAtLeastOnce(topic, payload, 'delivery', v5 ? properties : undefined);
        }
        queued++;
      }
    } finally {
      matches.clear();
    }
    return queued;
  }
}
