/**
 * Custom (AWS-style) device topics: one router per registry, so two registries never share a
 * topic space, created on a registry's first custom subscription and dropped with its last.
 * Devices publish into their registry's router when their policy allows, and each delivery asks
 * the subscriber's current policy for `receive` (the router's per-delivery access check), so a
 * policy swapped on a live connection takes effect with the next message. Backends do not see
 * these topics; Cloud IoT Core topics never enter here.
 *
 * A device's subscriptions live on a DeviceSubscriber: a ClientSession of the session engine that
 * writes straight to the device's connection (devices keep clean sessions: nothing is queued for
 * a device that is not connected), using the connection's packet ids for QoS 1.
 *
 * Each registry's space also keeps its retained messages (a device PUBLISH with the retain flag
 * that its policy allows to `publish` and `retain`), bounded per registry like a namespace's
 * (limits `retainedMessages`, `retainedBytes`), and sent to a new subscription after asking the
 * subscriber's policy for `receive`, message by message.
 */
import type { SessionAccess } from './backend-identity.js';
import { ClientSession } from './client-session.js';
import type { Connection } from './connection.js';
import type { Message } from './message.js';
import { RetainedStore } from './retained-store.js';
import { Router } from './router.js';
import type { Subscription } from './subscription.js';
import type { QoS } from './topic-trie.js';

/** Unused bounds: a device subscriber never queues (see deliver). */
const NO_QUEUE = { sessionQueueMessages: 1, sessionQueueBytes: 1 };

export class DeviceSubscriber extends ClientSession {
  constructor(
    clientId: string,
    readonly registry: string,
    readonly conn: Connection,
    /** The connection's current policy decides each delivery. */
    receives: (topic: string) => boolean,
  ) {
    super(clientId, NO_QUEUE);
    const access: SessionAccess = { receives: (m: Message) => receives(m.topic), mayFilter: () => true };
    this.access = access;
  }

  override deliver(message: Message, qos: QoS, retain = false): void {
    const conn = this.conn;
    if (!conn.isOpen || message.expired(Date.now())) return;
    if (qos === 0) {
      // As commands: a device that does not read its messages loses QoS 0 ones rather than grow a backlog.
      if (!conn.congested) conn.send({ cmd: 'publish', topic: message.topic, payload: message.payload, qos: 0, dup: false, retain });
      return;
    }
    conn.publishAtLeastOnce(message.topic, message.payload, 'command', retain);
  }
}

export class DeviceSpaces {
  /** Per registry: its router and how many subscriptions it holds. */
  readonly #spaces = new Map<string, { readonly router: Router; subscriptions: number }>();
  /** Per registry with a retained message now: its store (dropped when empty). */
  readonly #retained = new Map<string, RetainedStore>();
  #retainRefused = 0;

  constructor(private readonly bounds: { readonly retainedMessages: number; readonly retainedBytes: number }) {}

  /** Returns whether the subscriber already had `filter` (MQTT 5 retain handling 1 asks). */
  subscribe(subscriber: DeviceSubscriber, filter: string, subscription: Subscription): boolean {
    let space = this.#spaces.get(subscriber.registry);
    if (!space) this.#spaces.set(subscriber.registry, (space = { router: new Router(), subscriptions: 0 }));
    const existed = space.router.subscribe(subscriber, filter, subscription);
    if (!existed) space.subscriptions++;
    return existed;
  }

  unsubscribe(subscriber: DeviceSubscriber, filter: string): boolean {
    const space = this.#spaces.get(subscriber.registry);
    if (!space?.router.unsubscribe(subscriber, filter)) return false;
    if (--space.subscriptions === 0) this.#spaces.delete(subscriber.registry);
    return true;
  }

  /** The device's connection ended: its subscriptions go. */
  release(subscriber: DeviceSubscriber): void {
    for (const filter of [...subscriber.subscriptions.keys()]) this.unsubscribe(subscriber, filter);
  }

  /** Delivers to the registry's custom subscribers; returns the copies sent. */
  publish(registry: string, message: Message, publisher: Connection): number {
    return this.#spaces.get(registry)?.router.publish(message, publisher) ?? 0;
  }

  /**
   * Keeps `message` as its topic's retained message in the registry's space; an empty payload
   * deletes it (MQTT 3.1.1 §3.3.1.3). Returns whether it is kept: a new topic beyond a bound is not.
   */
  retain(registry: string, message: Message): boolean {
    let store = this.#retained.get(registry);
    if (!store) {
      if (message.payload.length === 0) return false;
      this.#retained.set(registry, (store = new RetainedStore(this.bounds.retainedMessages, this.bounds.retainedBytes)));
    }
    const kept = store.retain(message);
    if (!kept && message.payload.length > 0) this.#retainRefused++;
    if (store.size === 0) this.#retained.delete(registry);
    return kept;
  }

  /**
   * Sends the subscriber its registry's retained messages that `filter` matches and its policy
   * lets it receive, with the retain flag, at most at `qos`; returns how many were sent.
   */
  sendRetained(subscriber: DeviceSubscriber, filter: string, qos: QoS): number {
    const store = this.#retained.get(subscriber.registry);
    if (!store) return 0;
    let sent = 0;
    store.forEachMatching(filter, Date.now(), (message) => {
      if (subscriber.access?.receives(message) !== true) return;
      subscriber.deliver(message, message.qos < qos ? message.qos : qos, true);
      sent++;
    });
    if (store.size === 0) this.#retained.delete(subscriber.registry);
    return sent;
  }

  /** Retained messages held now, over all registries. */
  get retainedMessages(): number {
    let n = 0;
    for (const store of this.#retained.values()) n += store.size;
    return n;
  }

  /** Retained messages not kept because a registry's bound was reached. */
  get retainRefused(): number {
    return this.#retainRefused;
  }

  /** Registries with a custom subscription now. */
  get registries(): number {
    return this.#spaces.size;
  }
}
