/**
 * Which connection holds a device: at most one per device (Cloud IoT Core's quota of one MQTT
 * connection per device). A newer connection takes over. (Engine clients' sessions, backends
 * included, are held by their namespace.)
 */
import type { Connection } from './connection.js';

export class SessionTable<K> {
  readonly #byKey = new Map<K, Connection>();

  get(key: K): Connection | undefined {
    return this.#byKey.get(key);
  }

  /** Makes `conn` the holder of `key` and returns the connection it displaced, if any. */
  claim(key: K, conn: Connection): Connection | undefined {
    const previous = this.#byKey.get(key);
    this.#byKey.set(key, conn);
    return previous === conn ? undefined : previous;
  }

  /** Forgets `key` only if `conn` still holds it: a taken-over connection must not evict its successor. */
  release(key: K, conn: Connection): void {
    if (this.#byKey.get(key) === conn) this.#byKey.delete(key);
  }

  /** Every key held and its connection: a scan, for rare admin actions, never per packet. */
  entries(): IterableIterator<[K, Connection]> {
    return this.#byKey.entries();
  }

  get size(): number {
    return this.#byKey.size;
  }
}
