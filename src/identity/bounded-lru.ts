/**
 * A map that keeps at most `capacity` entries, dropping the least recently used first. For
 * caches of immutable facts derived from their key (a certificate parsed from its DER's hash, a
 * signature that verified): never for decisions that may change (revocation, states).
 */
export class BoundedLru<K, V> {
  readonly #entries = new Map<K, V>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: K): V | undefined {
    const entries = this.#entries;
    const hit = entries.get(key);
    if (hit !== undefined) {
      // Map order is insertion order: re-inserting marks it as the most recently used.
      entries.delete(key);
      entries.set(key, hit);
    }
    return hit;
  }

  set(key: K, value: V): void {
    const entries = this.#entries;
    entries.delete(key);
    if (entries.size >= this.capacity) {
      const oldest = entries.keys().next();
      if (!oldest.done) entries.delete(oldest.value);
    }
    entries.set(key, value);
  }

  clear(): void {
    this.#entries.clear();
  }
}
