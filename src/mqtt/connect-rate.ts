/**
 * Connection rate limits, refused with CONNACK 0x9F "connection rate exceeded" (MQTT 5; 3.1.1 gets
 * 3 "server unavailable"). Two buckets, as EMQX's `max_conn_rate` and flapping detection do:
 * - the listener's: every CONNECT counts, and it is checked before any credential is verified, so
 *   a storm cannot make the broker spend signature checks beyond the rate;
 * - each backend identity's (account and client id): only accepted connections count, so nobody
 *   can lock a client out by sending CONNECTs with its client id; it stops two copies of one
 *   client from taking each other over without end. Devices get the same protection from their
 *   registry's connection limits (registry/device-quotas), shared with the HTTP bridge.
 */
import { TokenBucket } from '../domain/token-bucket.js';

export interface ConnectRateLimits {
  /** CONNECT packets per second the listener takes; a burst of one second's worth is allowed. */
  readonly connectsPerSecond: number;
  /** Accepted connections per minute for one identity; a burst of that many is allowed. */
  readonly identityConnectsPerMinute: number;
}

/** How often the per-identity table forgets identities whose bucket has refilled. */
const SWEEP_INTERVAL_MS = 60_000;

export class ConnectRateLimiter {
  readonly #limits: ConnectRateLimits;
  readonly #clock: () => number;
  readonly #listener: TokenBucket;
  readonly #identities = new Map<string, TokenBucket>();
  #sweptAt: number;

  constructor(limits: ConnectRateLimits, clock: () => number) {
    this.#limits = limits;
    this.#clock = clock;
    const now = clock();
    this.#listener = new TokenBucket(limits.connectsPerSecond, limits.connectsPerSecond, now);
    this.#sweptAt = now;
  }

  /** A CONNECT arrived: false when the listener is over its rate. */
  admitConnect(): boolean {
    return this.#listener.take(this.#clock());
  }

  /** `identity` authenticated: false when it connected too often lately. */
  admitIdentity(identity: string): boolean {
    const now = this.#clock();
    this.#sweep(now);
    let bucket = this.#identities.get(identity);
    if (bucket === undefined) {
      const perMinute = this.#limits.identityConnectsPerMinute;
      bucket = new TokenBucket(perMinute, perMinute / 60, now);
      this.#identities.set(identity, bucket);
    }
    return bucket.take(now);
  }

  /** Identities remembered (those whose bucket is not full). */
  get trackedIdentities(): number {
    return this.#identities.size;
  }

  /** Keeps the table to identities that connected within the last refill period. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < SWEEP_INTERVAL_MS) return;
    this.#sweptAt = now;
    for (const [identity, bucket] of this.#identities) {
      if (bucket.isFull(now)) this.#identities.delete(identity);
    }
  }
}
