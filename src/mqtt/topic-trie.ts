/**
 * Subscriptions held in a trie of topic levels, so a delivery walks the topic's levels (and the
 * `+`/`#` branches beside them) instead of testing every subscriber's filters. Matching follows
 * MQTT 3.1.1 §4.7: `+` is exactly one level (possibly empty), `#` is the rest including none,
 * and a topic starting with `$` is never matched by a wildcard in the first level.
 */

export type QoS = 0 | 1 | 2;

class TrieNode<S, V> {
  readonly children = new Map<string, TrieNode<S, V>>();
  plus: TrieNode<S, V> | undefined;
  /** Subscribers of `…/#` at this node. */
  hash: Map<S, V> | undefined;
  /** Subscribers whose filter ends exactly at this node. */
  exact: Map<S, V> | undefined;

  get isEmpty(): boolean {
    return this.children.size === 0 && !this.plus && !this.hash?.size && !this.exact?.size;
  }
}

/** Receives one matching (subscriber, value) pair; a subscriber with overlapping filters comes once per filter. */
export type MatchVisitor<S, V> = (subscriber: S, value: V) => void;

export class TopicTrie<S, V = QoS> {
  readonly #root = new TrieNode<S, V>();

  /**
   * Adds or replaces `subscriber`'s subscription to `filter`. The filter must be valid (see
   * isValidFilter): this class does not re-check it.
   */
  add(filter: string, subscriber: S, value: V): void {
    const levels = filter.split('/');
    let node = this.#root;
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i] as string;
      if (level === '#') {
        (node.hash ??= new Map()).set(subscriber, value);
        return;
      }
      if (level === '+') {
        node = node.plus ??= new TrieNode<S, V>();
      } else {
        let child = node.children.get(level);
        if (!child) node.children.set(level, (child = new TrieNode<S, V>()));
        node = child;
      }
    }
    (node.exact ??= new Map()).set(subscriber, value);
  }

  /** Removes one subscription; returns whether it existed. Empty branches are pruned. */
  remove(filter: string, subscriber: S): boolean {
    return this.#remove(this.#root, filter.split('/'), 0, subscriber);
  }

  #remove(node: TrieNode<S, V>, levels: readonly string[], i: number, subscriber: S): boolean {
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

  /** Calls `visit` for every subscription whose filter matches `topic`. */
  match(topic: string, visit: MatchVisitor<S, V>): void {
    if (this.#root.isEmpty) return;
    this.#match(this.#root, topic.split('/'), 0, topic.startsWith('$'), visit);
  }

  #match(node: TrieNode<S, V>, levels: readonly string[], i: number, system: boolean, visit: MatchVisitor<S, V>): void {
    const wildcardsAllowed = i > 0 || !system;
    if (node.hash && wildcardsAllowed) for (const [s, v] of node.hash) visit(s, v);
    if (i === levels.length) {
      if (node.exact) for (const [s, v] of node.exact) visit(s, v);
      return;
    }
    const child = node.children.get(levels[i] as string);
    if (child) this.#match(child, levels, i + 1, system, visit);
    if (node.plus && wildcardsAllowed) this.#match(node.plus, levels, i + 1, system, visit);
  }
}

/** Whether `filter` (valid) matches `topic`, by the same rules as the trie; for one-off checks such as retained messages. */
export function filterMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '#' || f[0] === '+')) return false;
  for (let i = 0; i < f.length; i++) {
    const level = f[i] as string;
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/** A topic a client may publish to: non-empty, no wildcard characters, no U+0000 (MQTT 3.1.1 §4.7.3). */
export function isValidTopicName(topic: string): boolean {
  return topic.length > 0 && !topic.includes('+') && !topic.includes('#') && !topic.includes('\u0000');
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
