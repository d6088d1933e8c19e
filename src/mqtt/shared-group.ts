/**
 * One shared subscription group (`$share/{group}/{filter}`, MQTT 5 §4.8.2): each message matching
 * the filter goes to one member, round robin, preferring members that are connected. When none
 * is, the next member in turn gets it, and its session queues it until it returns.
 */
import type { ClientSession } from './client-session.js';
import type { Message } from './message.js';
import type { Subscription } from './subscription.js';

export class SharedGroup {
  readonly #members: ClientSession[] = [];
  readonly #subscriptions = new Map<ClientSession, Subscription>();
  #next = 0;

  constructor(
    /** The filter as subscribed, `$share/{group}/{filter}`. */
    readonly key: string,
    readonly filter: string,
  ) {}

  get size(): number {
    return this.#members.length;
  }

  /** Adds or updates a member; returns whether it was one already. */
  set(session: ClientSession, subscription: Subscription): boolean {
    const existed = this.#subscriptions.has(session);
    this.#subscriptions.set(session, subscription);
    if (!existed) this.#members.push(session);
    return existed;
  }

  delete(session: ClientSession): boolean {
    if (!this.#subscriptions.delete(session)) return false;
    const i = this.#members.indexOf(session);
    this.#members.splice(i, 1);
    if (this.#next > i) this.#next--;
    return true;
  }

  /**
   * The member for the next message, undefined when the group is empty or no member may receive
   * `message` (a member whose session has an access bound must admit it).
   */
  pick(message?: Message): { readonly session: ClientSession; readonly subscription: Subscription } | undefined {
    const n = this.#members.length;
    if (n === 0) return undefined;
    let chosen: ClientSession | undefined;
    let fallback = -1;
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n;
      const member = this.#members[i] as ClientSession;
      // No closure per pick: this runs per delivery to the group.
      if (message !== undefined && member.access !== undefined && !member.access.receives(message)) continue;
      if (member.isConnected) {
        chosen = member;
        this.#next = (i + 1) % n;
        break;
      }
      if (fallback < 0) fallback = i;
    }
    if (chosen === undefined) {
      if (fallback < 0) return undefined;
      chosen = this.#members[fallback] as ClientSession;
      this.#next = (fallback + 1) % n;
    }
    return { session: chosen, subscription: this.#subscriptions.get(chosen) as Subscription };
  }
}
