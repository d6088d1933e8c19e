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
 */
import type { SessionAccess } from './backend-identity.js';
import { ClientSession } from './client-session.js';
import type { Connection } from './connection.js';
import type { Message } from './message.js';
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

  override deliver(message: Message, qos: QoS): void {
    const conn = this.conn;
    if (!conn.isOpen || message.expired(Date.now())) return;
    if (qos === 0) {
      // As commands: a device that does not read its messages loses QoS 0 ones rather than grow a backlog.
      if (!conn.congested) conn.send({ cmd: 'publish', topic: message.topic, payload: message.payload, qos: 0, dup: false, retain: false });
      return;
    }
    conn.publishAtLeastOnce(message.topic, message.payload, 'command');
  }
}

export class DeviceSpaces {
  /** Per registry: its router and how many subscriptions it holds. */
  readonly #spaces = new Map<string, { readonly router: Router; subscriptions: number }>();

  subscribe(subscriber: DeviceSubscriber, filter: string, subscription: Subscription): void {
    let space = this.#spaces.get(subscriber.registry);
    if (!space) this.#spaces.set(subscriber.registry, (space = { router: new Router(), subscriptions: 0 }));
    if (!space.router.subscribe(subscriber, filter, subscription)) space.subscriptions++;
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

  /** Registries with a custom subscription now. */
  get registries(): number {
    return this.#spaces.size;
  }
}
