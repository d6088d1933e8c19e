/**
 * Parsed credential keys, kept by their PEM text: a device connecting again (or a storm of them
 * reconnecting) costs no PEM parsing, no key-strength check and no SPKI fingerprint, and the very
 * same KeyObject lets jose reuse the CryptoKey it derived from it. Bounded: the least recently
 * used entry goes first. Only keys that parsed are kept; a refused one is parsed (and refused)
 * again each time.
 */
import type { PublicKeyFormat } from '../domain/resources.js';
import { parseCredentialKey, type CredentialKey } from './public-key.js';

export class CredentialKeyCache {
  readonly #entries = new Map<string, CredentialKey>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.#entries.size;
  }

  /**
   * As parseCredentialKey (and throwing as it does), from the cache when it can. `fingerprint`:
   * the one stored with this credential, if known.
   */
  get(format: PublicKeyFormat, pem: string, fingerprint?: string): CredentialKey {
    const id = `${format}\n${pem}`;
    const entries = this.#entries;
    const hit = entries.get(id);
    if (hit !== undefined) {
      // Map order is insertion order: re-inserting marks it as the most recently used.
      entries.delete(id);
      entries.set(id, hit);
      return hit;
    }
    const parsed = parseCredentialKey(format, pem, undefined, fingerprint);
    if (entries.size >= this.capacity) {
      const oldest = entries.keys().next();
      if (!oldest.done) entries.delete(oldest.value);
    }
    entries.set(id, parsed);
    return parsed;
  }
}
