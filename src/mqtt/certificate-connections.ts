/**
 * Live connections authenticated by a client certificate, by revocation key (domain/
 * certificate-keys): a `CertificatesRevoked` names keys, and every connection whose verified
 * chain holds one of them must end at once, without a scan of all connections.
 */
export class CertificateConnections<C> {
  readonly #byKey = new Map<string, Set<C>>();
  readonly #keysOf = new Map<C, readonly string[]>();

  /** Registers an accepted certificate connection under the keys of its chain. */
  add(conn: C, keys: readonly string[]): void {
    this.remove(conn);
    const unique = [...new Set(keys)];
    this.#keysOf.set(conn, unique);
    for (const key of unique) {
      let holders = this.#byKey.get(key);
      if (holders === undefined) this.#byKey.set(key, (holders = new Set()));
      holders.add(conn);
    }
  }

  /** Forgets a connection (it closed); a connection never added is ignored. */
  remove(conn: C): void {
    const keys = this.#keysOf.get(conn);
    if (keys === undefined) return;
    this.#keysOf.delete(conn);
    for (const key of keys) {
      const holders = this.#byKey.get(key);
      if (holders === undefined) continue;
      holders.delete(conn);
      if (holders.size === 0) this.#byKey.delete(key);
    }
  }

  /** Every connection holding at least one of `keys`, each once. */
  holding(keys: readonly string[]): Set<C> {
    const found = new Set<C>();
    for (const key of keys) for (const conn of this.#byKey.get(key) ?? []) found.add(conn);
    return found;
  }

  /** Connections registered. */
  get size(): number {
    return this.#keysOf.size;
  }

  /** Distinct keys held by some connection. */
  get keyCount(): number {
    return this.#byKey.size;
  }
}
