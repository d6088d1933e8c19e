/**
 * The router of one namespace: subscriptions of sessions (not connections) in a topic trie, and
 * shared subscription groups in another. Publishing walks the topic once per trie and delivers
 * synchronously: a session matching through several filters gets one copy at the highest granted
 * QoS with every subscription identifier (MQTT 5 §3.3.4); each matching shared group gives the
 * message to one of its members. `$` topics never match a leading wildcard (the trie's rule).
 */
import type { ClientSession } from './client-session.js';
import type { Connection } from './connection.js';
import type { Message, Origin } from './message.js';
import { SharedGroup } from './shared-group.js';
import { mergeSubscriptions, type Subscription } from './subscription.js';
import { TopicTrie, type QoS } from './topic-trie.js';

const minQos = (a: QoS, b: QoS): QoS => (a <= b ? a : b);

export class Router {
  readonly #trie = new TopicTrie<ClientSession, Subscription>();
  readonly #sharedTrie = new TopicTrie<SharedGroup, true>();
  readonly #groups = new Map<string, SharedGroup>();
  // Reused by every publish: deliveries are synchronous and a publish never nests inside another's walk.
  readonly #matches = new Map<ClientSession, Subscription>();
  readonly #matchedGroups: SharedGroup[] = [];
  #origin: Origin | undefined;
  #message: Message | undefined;
  /**
   * Messages published while a publish is delivering (a delivery that ends a connection can
   * publish its will): they go out, in order, once the current one is done.
   */
  #publishing = false;
  readonly #deferred: Message[] = [];

  /** Adds or replaces a plain subscription; returns whether it replaced one. */
  subscribe(session: ClientSession, filter: string, subscription: Subscription): boolean {
    const existed = session.subscriptions.has(filter);
    session.subscriptions.set(filter, subscription);
    this.#trie.add(filter, session, subscription);
    return existed;
  }

  /** Adds or replaces membership of a shared group; `key` is the whole `$share/{group}/{filter}`. */
  subscribeShared(session: ClientSession, key: string, filter: string, subscription: Subscription): boolean {
    const groupKey = sharedGroupKey(session, key);
    let group = this.#groups.get(groupKey);
    if (!group) {
      group = new SharedGroup(key, filter);
      this.#groups.set(groupKey, group);
      this.#sharedTrie.add(filter, group, true);
    }
    session.subscriptions.set(key, subscription);
    return group.set(session, subscription);
  }

  /** Removes one subscription (plain or shared) by the filter it was made with. */
  unsubscribe(session: ClientSession, filter: string): boolean {
    if (!session.subscriptions.delete(filter)) return false;
    const groupKey = sharedGroupKey(session, filter);
    const group = this.#groups.get(groupKey);
    if (group) {
      group.delete(session);
      if (group.size === 0) {
        this.#groups.delete(groupKey);
        this.#sharedTrie.remove(group.filter, group);
      }
      return true;
    }
    this.#trie.remove(filter, session);
    return true;
  }

  /** Removes every subscription of a session that ended. */
  unsubscribeAll(session: ClientSession): void {
    for (const filter of [...session.subscriptions.keys()]) this.unsubscribe(session, filter);
  }

  /**
   * Delivers `message` to every matching session and group; returns how many copies went out or
   * were queued (0 when deferred behind a publish in progress). `publisher`, the connection it came
   * from, is held back by the congested subscribers it reaches (see flow-gate).
   */
  publish(message: Message, publisher?: Connection): number {
    if (this.#publishing) {
      this.#deferred.push(message);
      return 0;
    }
    this.#publishing = true;
    try {
      const copies = this.#deliver(message, publisher);
      // Wills of connections that ended: no publisher to hold back.
      for (let next = this.#deferred.shift(); next; next = this.#deferred.shift()) this.#deliver(next, undefined);
      return copies;
    } finally {
      this.#publishing = false;
      this.#deferred.length = 0;
    }
  }

  #deliver(message: Message, publisher: Connection | undefined): number {
    const matches = this.#matches;
    const groups = this.#matchedGroups;
    this.#origin = message.origin;
    this.#message = message;
    this.#trie.match(message.topic, this.#collect);
    this.#sharedTrie.match(message.topic, this.#collectGroup);
    this.#origin = undefined;
    this.#message = undefined;
    if (matches.size === 0 && groups.length === 0) return 0;
    let copies = 0;
    try {
      for (const [session, sub] of matches) {
        session.deliver(message, minQos(sub.qos, message.qos), sub.retainAsPublished && message.retain, sub.identifiers, publisher);
        copies++;
      }
      for (const group of groups) {
        const member = group.pick(message);
        if (!member) continue;
        const sub = member.subscription;
        member.session.deliver(message, minQos(sub.qos, message.qos), sub.retainAsPublished && message.retain, sub.identifiers, publisher);
        copies++;
      }
    } finally {
      matches.clear();
      groups.length = 0;
    }
    return copies;
  }

  readonly #collect = (session: ClientSession, sub: Subscription): void => {
    if (sub.noLocal && session === this.#origin) return;
    const seen = this.#matches.get(session);
    if (seen !== undefined) {
      // Overlapping filters: access was already checked for this message.
      this.#matches.set(session, mergeSubscriptions(seen, sub));
      return;
    }
    // Checked per delivery: a backend's rights are those of the message's own project and registry.
    if (session.access !== undefined && !session.access.receives(this.#message as Message)) return;
    this.#matches.set(session, sub);
  };

  readonly #collectGroup = (group: SharedGroup): void => {
    this.#matchedGroups.push(group);
  };
}

/** Shared groups are per owner: two accounts using the same `$share/{group}/…` never share messages. */
const sharedGroupKey = (session: ClientSession, key: string): string => (session.owner === '' ? key : `${session.owner}\u0000${key}`);
