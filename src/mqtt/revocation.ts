/**
 * Revocation of live device connections (bus `onRevoked`): a deleted or blocked device, or one
 * whose connection was authenticated with a credential no longer usable, is disconnected at once.
 */
import { performance } from 'node:perf_hooks';
import type { DeviceKey, DeviceRevoked } from '../bus/bus.js';

/** Whether `event` ends a connection that authenticated with the credential `fingerprint`. */
export function revokes(event: DeviceRevoked, fingerprint: string): boolean {
  return event.reason === 'deleted' || event.blocked || !event.credentialFingerprints.includes(fingerprint);
}

interface Recent {
  readonly serial: number;
  readonly at: number;
  readonly event: DeviceRevoked;
}

/**
 * Closes the gap between checking a token and registering its connection: a revocation that
 * arrives while a device's authentication is in flight has no connection to close yet. Recent
 * revocations are kept for as long as an authentication may take (the connect timeout), and each
 * authentication re-checks the ones that arrived after it began.
 */
export class RevocationWindow {
  readonly #recent = new Map<DeviceKey, Recent>();
  #serial = 0;

  constructor(readonly windowMs: number) {}

  /** Call before authenticating; pass the result to revokedSince afterwards. */
  mark(): number {
    return this.#serial;
  }

  record(event: DeviceRevoked): void {
    const at = performance.now();
    this.#prune(at);
    // Delete first so the map stays ordered by arrival, oldest first.
    this.#recent.delete(event.device);
    this.#recent.set(event.device, { serial: ++this.#serial, at, event });
  }

  revokedSince(mark: number, device: DeviceKey, fingerprint: string): boolean {
    const recent = this.#recent.get(device);
    return recent !== undefined && recent.serial > mark && revokes(recent.event, fingerprint);
  }

  get size(): number {
    return this.#recent.size;
  }

  #prune(now: number): void {
    for (const [key, recent] of this.#recent) {
      if (now - recent.at <= this.windowMs) break;
      this.#recent.delete(key);
    }
  }
}
