/**
 * Subscriptions held in a trie of topic levels, so a delivery walks the topic's levels (and the
 * `+`/`#` branches beside them) instead of testing every subscriber's filters. Matching follows
 * MQTT 3.1.1 §4.7: `+` is exactly one level (possibly empty), `#` is the rest including none,
 * and a topic starting with `$` is never matched by a wildcard in the first level.
 */

export type QoS = 0 | 1 | 2;

class TrieNode<S> {
  readonly children = new Map<string, TrieNode<S>>();
  plus: TrieNode<S> | undefined;
  /** Subscribers of `…/#` at this node. */
  hash: Map<S, QoS> | undefined;
  /** Subscribers whose filter ends exactly at this node. */
  exact: Map<S, QoS> | undefined;

  get isEmpty(): boolean {
    return this.children.size === 0 && !this.plus && !this.hash?.size && !this.exact?.size;
  }
}

export class TopicTrie<S> {
  readonly #root = new TrieNode<S>();

  /**
   * Adds or replaces `subscriber`'s subscription to `filter`. The filter must be valid (see
   * isValidFilter): this class does not re-check it.
   */
  add(filter: string, subscriber: S, qos: QoS): void {
    const levels = filter.split('/');
    let node = this.#root;
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i] as string;
      if (level === '#') {
        (node.hash ??= new Map()).set(subscriber, qos);
        return;
      }
      if (level === '+') {
        node = node.plus ??= new TrieNode<S>();
      } else {
        let child = node.children.get(level);
        if (!child) node.children.set(level, (child = new TrieNode<S>()));
        node = child;
      }
    }
    (node.exact ??= new Map()).set(subscriber, qos);
  }

  /** Removes one subscription; returns whether it existed. Empty branches are pruned. */
  remove(filter: string, subscriber: S): boolean {
    return this.#remove(this.#root, filter.split('/'), 0, subscriber);
  }

  #remove(node: TrieNode<S>, levels: readonly string[], i: number, subscriber: S): boolean {
    if (i === levels.length) return node.exact?.delete(subscriber) ?? false;
    const level = levels[i] as string;
    if (level === '#') return node.hash?.delete(subscriber) ?? false;
    const child = level === '+' ? node.plus : node.children.get(level);
    if (!child) return false;
    const removed = this.#remove(child, levels, i + 1, subscriber);
    if (removed && child.isEmpty) {
      if (level === '+') node.plus = undefined;
      else node.children.delete(level);
    }
    return removed;
  }

  /**
   * Collects every subscriber with a filter matching `topic` into `into`, once, at the highest
   * QoS among its matching filters (MQTT 3.1.1 §3.3.5 allows one copy per overlapping filter;
   * a single copy is kinder to backends).
   */
  collect(topic: string, into: Map<S, QoS>): void {
    this.#collect(this.#root, topic.split('/'), 0, topic.startsWith('$'), into);
  }

  #collect(node: TrieNode<S>, levels: readonly string[], i: number, system: boolean, into: Map<S, QoS>): void {
    const wildcardsAllowed = i > 0 || !system;
    if (node.hash && wildcardsAllowed) merge(node.hash, into);
    if (i === levels.length) {
      if (node.exact) merge(node.exact, into);
      return;
    }
    const child = node.children.get(levels[i] as string);
    if (child) this.#collect(child, levels, i + 1, system, into);
    if (node.plus && wildcardsAllowed) this.#collect(node.plus, levels, i + 1, system, into);
  }
}

function merge<S>(from: Map<S, QoS>, into: Map<S, QoS>): void {
  for (const [subscriber, qos] of from) {
    const seen = into.get(subscriber);
    if (seen === undefined || qos > seen) into.set(subscriber, qos);
  }
}

/**
 * A well-formed topic filter (MQTT 3.1.1 §4.7.1): `#` occupies a whole level and only the last.
 * A level is the single-level wildcard only when it is exactly `+`; a `+` inside a level is left to
 * the namespace's own rules, because Cloud IoT Core ids may contain `+`.
 */
export function isValidFilter(filter: string): boolean {
  if (filter.length === 0 || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string;
    if (level === '#') {
      if (i !== levels.length - 1) return false;
    } else if (level !== '+' && level.includes('#')) {
      return false;
    }
  }
  return true;
}
