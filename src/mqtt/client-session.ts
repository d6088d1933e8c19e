/**
 * The MQTT session of an engine client (a backend subscriber or an open-namespace client): what
 * outlives its connection when the client asked for it (MQTT 3.1.1 §3.1.2.4, MQTT 5 §4.1). It
 * holds the subscriptions, the QoS 1 and 2 messages in flight towards the client (re-sent with DUP
 * on reconnect), the bounded queue of messages waiting for it, and the QoS 2 packet ids received
 * from it and not yet released. Deliveries are synchronous: a message goes out in the caller's turn.
 */
import type { SessionAccess } from './backend-identity.js';
import type { Connection } from './connection.js';
import { InflightTable } from './inflight-table.js';
import type { Message, PublishProperties } from './message.js';
import { SessionQueue, type Queued } from './session-queue.js';
import type { Subscription } from './subscription.js';
import type { QoS } from './topic-trie.js';

const MAX_PACKET_ID = 0xffff;

/** A QoS 1 or 2 message sent and not yet completed; `released` once PUBREC came and PUBREL went out. */
interface Outgoing extends Queued {
  released: boolean;
  /** When it was first sent, relative to the session's other messages: resends keep that order. */
  readonly seq: number;
}

/**
 * A will message (MQTT 3.1.1 §3.1.2.5, MQTT 5 §3.1.3.2). It becomes a Message only when published:
 * its expiry interval starts then. The will delay is never part of the PUBLISH.
 */
export interface Will {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  /** The will properties that travel with the message (MQTT 5), the expiry interval included. */
  readonly properties: PublishProperties | undefined;
  readonly delaySeconds: number;
}

export interface SessionBounds {
  readonly sessionQueueMessages: number;
  readonly sessionQueueBytes: number;
}

export class ClientSession {
  /** Filters as subscribed (shared ones with their `$share/{group}/` prefix). */
  readonly subscriptions = new Map<string, Subscription>();
  /** Seconds the session outlives its connection (0: it ends with it). */
  expirySeconds = 0;
  /** The will of the current connection, dropped on a normal DISCONNECT. */
  will: Will | undefined;
  /** Client-to-server topic aliases of the current connection (MQTT 5 §3.3.2.3.4). */
  topicAliases: Map<number, string> | undefined;
  /**
   * What the session's identity may receive and subscribe to (backends), undefined for no bound
   * (the open namespace). Set on every CONNECT, so a resumed session runs under today's rights.
   */
  access: SessionAccess | undefined;
  /** The identity owning the session (a backend's account), '' when none: shared groups never span two. */
  owner = '';

  #conn: Connection | undefined;
  #window = 1;
  /** Server-to-client topic aliases the current connection accepts (MQTT 5), and those in use. */
  #aliasMaximum = 0;
  #aliases: Map<string, number> | undefined;
  readonly #inflight = new InflightTable<Outgoing>();
  #sent = 0;
  #lastPacketId = 0;
  readonly #queue: SessionQueue;
  /** Queue sizes past which the connected client counts as backlogged (its publishers wait, see flow-gate). */
  readonly #backlogMessages: number;
  readonly #backlogBytes: number;
  /** QoS 2 packet ids received (and delivered) but not yet released by PUBREL. */
  readonly #inboundQos2 = new Set<number>();
  /** QoS 0 messages not sent because the client was congested. */
  #droppedQos0 = 0;

  constructor(
    readonly clientId: string,
    bounds: SessionBounds,
  ) {
    this.#queue = new SessionQueue(bounds.sessionQueueMessages, bounds.sessionQueueBytes);
    // A quarter of the bounds: publishers stop well before the queue would have to drop anything.
    this.#backlogMessages = Math.max(1, Math.floor(bounds.sessionQueueMessages / 4));
    this.#backlogBytes = Math.max(1, Math.floor(bounds.sessionQueueBytes / 4));
  }

  get connection(): Connection | undefined {
    return this.#conn;
  }

  get isConnected(): boolean {
    return this.#conn !== undefined && this.#conn.isOpen;
  }

  get queued(): number {
    return this.#queue.length;
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  /** Messages dropped because the queue was full, or QoS 0 because the client was congested. */
  get dropped(): number {
    return this.#queue.dropped + this.#droppedQos0;
  }

  /**
   * Binds the session to `conn` (after its CONNACK went out): messages in flight are sent again,
   * PUBLISH with DUP or PUBREL, then what waited in the queue, within `window` in flight. With
   * `topicAliases` > 0 (what an MQTT 5 client accepts, within our bound), repeated topics go out
   * as topic aliases.
   */
  attach(conn: Connection, window: number, topicAliases = 0): void {
    this.#conn = conn;
    this.#window = window;
    this.topicAliases = undefined;
    this.#aliasMaximum = conn.isV5 ? topicAliases : 0;
    this.#aliases = undefined;
    const now = Date.now();
    for (const [id, o] of this.#inflight.inOrder()) {
      if (o.released) conn.send({ cmd: 'pubrel', messageId: id });
      else this.#write(conn, o, id, true, now);
    }
    this.#drain();
  }

  /** The connection ended; the session keeps its state for the next one. */
  detach(conn: Connection): void {
    if (this.#conn === conn) this.#conn = undefined;
  }

  /** Forgets everything: the session ended. */
  clear(): void {
    this.#conn = undefined;
    this.#inflight.clear();
    this.#queue.clear();
    this.#inboundQos2.clear();
    this.subscriptions.clear();
    this.will = undefined;
  }

  /**
   * Delivers one message at `qos` (already min(granted, published)), now or when the client can take
   * it. `publisher`, the connection it came from, waits while the connected client is congested.
   */
  deliver(message: Message, qos: QoS, retain: boolean, subscriptionIds: readonly number[] | undefined, publisher?: Connection): void {
    const now = Date.now();
    if (message.expired(now)) return;
    const conn = this.#conn;
    if (conn === undefined || !conn.isOpen) {
      // Offline: its queue bounds apply, and no publisher waits for it.
      this.#queue.push({ message, qos, retain, subscriptionIds });
      return;
    }
    if (qos === 0) {
      // A congested client still gets the message that makes its publisher wait (one per publisher,
      // as a QoS 1 one would be queued); other QoS 0 messages are dropped while it is congested.
      if (!conn.congested || (publisher !== undefined && conn.holdPublisher(publisher) && conn.hasRoomFor(message))) {
        this.#emit(conn, message, 0, retain, undefined, false, subscriptionIds, now);
      } else {
        this.#droppedQos0++;
      }
    } else if (this.#queue.length === 0 && this.#inflight.size < this.#window) {
      this.#send(conn, { message, qos, retain, subscriptionIds }, now);
    } else {
      this.#queue.push({ message, qos, retain, subscriptionIds });
      this.#reportBacklog(conn);
    }
    if (publisher !== undefined) conn.holdPublisher(publisher);
  }

  /** PUBACK: returns whether `id` was a QoS 1 message in flight. */
  acknowledged(id: number): boolean {
    const o = this.#inflight.get(id);
    if (o?.qos !== 1) return false;
    this.#inflight.delete(id);
    this.#drain();
    return true;
  }

  /**
   * PUBREC: the client has a QoS 2 message. Returns whether `id` was one in flight; `failed` (an
   * MQTT 5 reason code of 0x80 or more) ends that message's flow instead of releasing it.
   */
  received(id: number, failed: boolean): boolean {
    const o = this.#inflight.get(id);
    if (o?.qos !== 2) return false;
    if (failed) {
      this.#inflight.delete(id);
      this.#drain();
    } else {
      o.released = true;
    }
    return true;
  }

  /** PUBCOMP: the QoS 2 flow of `id` is complete. Returns whether it was released and awaited. */
  completed(id: number): boolean {
    const o = this.#inflight.get(id);
    if (o?.qos !== 2 || !o.released) return false;
    this.#inflight.delete(id);
    this.#drain();
    return true;
  }

  /** QoS 2 from the client: whether `id` is already received and not yet released (a duplicate). */
  hasInboundQos2(id: number): boolean {
    return this.#inboundQos2.has(id);
  }

  get inboundQos2(): number {
    return this.#inboundQos2.size;
  }

  addInboundQos2(id: number): void {
    this.#inboundQos2.add(id);
  }

  /** PUBREL: returns whether `id` was awaiting it. */
  releaseInboundQos2(id: number): boolean {
    return this.#inboundQos2.delete(id);
  }

  #drain(): void {
    const conn = this.#conn;
    if (conn === undefined) return;
    const now = Date.now();
    while (this.#queue.length > 0 && conn.isOpen) {
      if (this.#inflight.size >= this.#window) break;
      const next = this.#queue.shift() as Queued;
      if (next.message.expired(now)) continue;
      if (next.qos === 0) this.#emit(conn, next.message, 0, next.retain, undefined, false, next.subscriptionIds, now);
      else this.#send(conn, next, now);
    }
    this.#reportBacklog(conn);
  }

  /** Backlogged at the high-water mark, relieved at half of it, so its publishers are not held and let go at every message. */
  #reportBacklog(conn: Connection): void {
    const queue = this.#queue;
    if (queue.length >= this.#backlogMessages || queue.bytes >= this.#backlogBytes) conn.setBacklogged(true);
    else if (queue.length <= this.#backlogMessages / 2 && queue.bytes <= this.#backlogBytes / 2) conn.setBacklogged(false);
  }

  #send(conn: Connection, q: Queued, now: number): void {
    let id = this.#lastPacketId;
    do id = (id % MAX_PACKET_ID) + 1;
    while (this.#inflight.has(id));
    this.#lastPacketId = id;
    const o: Outgoing = { message: q.message, qos: q.qos, retain: q.retain, subscriptionIds: q.subscriptionIds, released: false, seq: ++this.#sent };
    this.#inflight.set(id, o);
    // Larger than the client's maximum packet size: discarded as if delivered (MQTT 5 §3.1.2.11.4).
    if (!this.#write(conn, o, id, false, now) && conn.isOpen) this.#inflight.delete(id);
  }

  #write(conn: Connection, o: Queued, id: number, dup: boolean, now: number): boolean {
    return this.#emit(conn, o.message, o.qos, o.retain, id, dup, o.subscriptionIds, now);
  }

  /** Encodes and writes one PUBLISH; returns false when the client's maximum packet size refused it. */
  #emit(
    conn: Connection,
    message: Message,
    qos: QoS,
    retain: boolean,
    id: number | undefined,
    dup: boolean,
    subscriptionIds: readonly number[] | undefined,
    now: number,
  ): boolean {
    if (this.#aliasMaximum === 0) return conn.write(message.encode(conn.isV5, qos, retain, id, dup, subscriptionIds, now));
    const aliases = (this.#aliases ??= new Map());
    const topic = message.topic;
    let alias = aliases.get(topic);
    const known = alias !== undefined;
    if (alias === undefined) {
      // Aliases are handed out until the client's maximum; later topics go out in full.
      if (aliases.size >= this.#aliasMaximum) return conn.write(message.encode(true, qos, retain, id, dup, subscriptionIds, now));
      alias = aliases.size + 1;
    }
    const written = conn.write(message.encodeAliased(qos, retain, id, dup, subscriptionIds, now, alias, known));
    // The client learns an alias only from a PUBLISH it received.
    if (written && !known) aliases.set(topic, alias);
    return written;
  }
}
