/**
 * Backend subscriptions and the fan-out of device messages to them. Each delivery walks the trie
 * for the one topic; a backend with overlapping filters gets one copy at the highest QoS its
 * matching filters granted, capped by the QoS the device published with.
 */
import mqttPacket from 'mqtt-packet';
import type { BackendSession } from './backend-session.js';
import type { Connection } from './connection.js';
import type { GrantedQoS } from './device-session.js';
import { TopicTrie, type QoS } from './topic-trie.js';

const ENCODE_V311 = { protocolVersion: 4 } as const;

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

  remove(conn: Connection, session: BackendSession, filter: string): void {
    if (session.filters.delete(filter)) this.#trie.remove(filter, conn);
  }

  removeAll(conn: Connection, session: BackendSession): void {
    for (const filter of session.filters.keys()) this.#trie.remove(filter, conn);
    session.filters.clear();
  }

  /** QoS 0 copies dropped because their subscriber was congested. */
  get droppedQos0(): number {
    return this.#droppedQos0;
  }

  /** Queues `payload` on `topic` to every matching backend; returns how many copies were queued. */
  deliver(topic: string, payload: Buffer, qos: GrantedQoS): number {
    const matches = this.#matches;
    this.#trie.collect(topic, matches);
    if (matches.size === 0) return 0;
    let sharedQos0: Buffer | undefined;
    let queued = 0;
    try {
      for (const [conn, granted] of matches) {
        if (!conn.isOpen) continue;
        if (granted === 0 || qos === 0) {
          if (conn.congested) {
            this.#droppedQos0++;
            continue;
          }
          sharedQos0 ??= mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 0, dup: false, retain: false }, ENCODE_V311);
          conn.write(sharedQos0);
        } else {
          conn.publishAtLeastOnce(topic, payload, 'delivery');
        }
        queued++;
      }
    } finally {
      matches.clear();
    }
    return queued;
  }
}
