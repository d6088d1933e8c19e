/**
 * Device-plane rate limits and quotas (reference §1.11), shared by the broker and the HTTP
 * bridge so that a device meets the same limits whichever way it comes in. The limits are the
 * registry's (`rateLimits`, defaults below), read at authentication into the device's identity.
 *
 * Per-connection limits of MQTT (telemetry messages per second of one connection) are kept by
 * the connection itself (`telemetryMessageBucket`); this object keeps what outlives a
 * connection: per device and per registry buckets. They live in this process: in a cluster each
 * node counts what it serves.
 *
 * Every limit is a token bucket refilled at the limit's rate, holding a burst of `BURST_SECONDS`
 * of it, so that real firmware is not punished for what it does on every start: a state right
 * after connecting, a burst of events queued while offline, a few quick reconnects.
 */
import type { DeviceKey } from '../bus/bus.js';
import type { RegistryName } from '../domain/names.js';
import { RATE_LIMIT_FIELDS } from '../domain/rate-limits.js';
import type { DeviceProtocol, RateLimits } from '../domain/resources.js';
import { TokenBucket } from '../domain/token-bucket.js';

export const DEFAULT_RATE_LIMITS: RateLimits = Object.freeze({
  stateUpdatesPerSecond: 1,
  configUpdatesPerSecond: 1,
  telemetryMessagesPerSecond: 100,
  telemetryBytesPerSecond: 512 * 1024,
  connectionsPerSecond: 1,
  registryConnectionsPerMinute: 60_000,
  registryPublishesPerMinute: 60_000,
});

/** Seconds' worth of each limit a bucket holds: the burst allowed after a quiet spell. */
export const BURST_SECONDS: { readonly [K in keyof RateLimits]: number } = {
  // A state on connect and one or two more (a config applied) pass at once; after that, the rate.
  stateUpdatesPerSecond: 3,
  // A provisioning script that sets a config right after creating the device, and fixes it once.
  configUpdatesPerSecond: 3,
  // A backlog of two seconds' worth, queued while offline, goes through at once.
  telemetryMessagesPerSecond: 2,
  telemetryBytesPerSecond: 2,
  // A few quick reconnects (a firmware restart, a network flap) pass; a reconnect loop does not.
  connectionsPerSecond: 10,
  registryConnectionsPerMinute: 60,
  registryPublishesPerMinute: 60,
};

/**
 * The registry's limits with the defaults filled in. A registry that sets none shares
 * DEFAULT_RATE_LIMITS itself, so that its devices' limits are one object (BucketTable compares them).
 */
export function resolveRateLimits(set: Partial<RateLimits> | undefined): RateLimits {
  const given = stripUndefined(set ?? {});
  return Object.keys(given).length === 0 ? DEFAULT_RATE_LIMITS : { ...DEFAULT_RATE_LIMITS, ...given };
}

/** Whether two limit sets hold the same values (each device resolves its own object at authentication). */
function sameLimits(a: RateLimits, b: RateLimits): boolean {
  for (const field of RATE_LIMIT_FIELDS) if (a[field] !== b[field]) return false;
  return true;
}

function stripUndefined(set: Partial<RateLimits>): Partial<RateLimits> {
  return Object.fromEntries(Object.entries(set).filter(([, v]) => v !== undefined)) as Partial<RateLimits>;
}

/** What a quota check needs to know of the device: any authenticated device (device-manager) is one. */
export interface RateLimitedDevice {
  readonly key: DeviceKey;
  /** Its registry is what the registry-wide limits count. */
  readonly name: RegistryName;
  readonly rateLimits: RateLimits;
}

export type QuotaVerdict =
  | { readonly ok: true }
  /** `limit` names the RateLimits field that refused (for the log and the error message). */
  | { readonly ok: false; readonly limit: keyof RateLimits; readonly retryAfterSeconds: number };

export interface DeviceQuotas {
  /**
   * A new MQTT connection of the device (per device and per registry), or one HTTP request (per
   * registry only: HTTP devices are limited by what they send, not by how often they ask).
   */
  admitConnection(device: RateLimitedDevice, protocol: DeviceProtocol, now?: number): QuotaVerdict;
  /**
   * One telemetry event of `bytes` payload bytes: bytes per device, publishes per registry, and
   * over HTTP messages per device (over MQTT the connection counts its messages:
   * `telemetryMessageBucket`).
   */
  admitTelemetry(device: RateLimitedDevice, bytes: number, protocol: DeviceProtocol, now?: number): QuotaVerdict;
  /** One state update: per device and per registry. */
  admitState(device: RateLimitedDevice, now?: number): QuotaVerdict;
}

/** The limit the device manager applies to the admin side: configuration updates (modifyCloudToDeviceConfig). */
export interface ConfigUpdateQuotas {
  /** One configuration update of the device. */
  admitConfigUpdate(device: RateLimitedDevice, now?: number): QuotaVerdict;
}

/** What a device is told when `limit` refused it (HTTP error message; MQTT `lastErrorStatus`). */
export function describeLimit(limit: keyof RateLimits, limits: RateLimits): string {
  const n = limits[limit];
  switch (limit) {
    case 'stateUpdatesPerSecond':
      return `The device exceeded its state update rate limit of ${n} per second.`;
    case 'configUpdatesPerSecond':
      return `The device's configuration was updated more often than its limit of ${n} per second.`;
    case 'telemetryMessagesPerSecond':
      return `The device exceeded its telemetry rate limit of ${n} messages per second.`;
    case 'telemetryBytesPerSecond':
      return `The device exceeded its telemetry throughput limit of ${n} bytes per second.`;
    case 'connectionsPerSecond':
      return `The device exceeded its connection rate limit of ${n} per second.`;
    case 'registryConnectionsPerMinute':
      return `The registry exceeded its connection and request rate limit of ${n} per minute.`;
    case 'registryPublishesPerMinute':
      return `The registry exceeded its publish rate limit of ${n} per minute.`;
  }
}

/** Quotas with the clock their buckets run on, so that per-connection buckets (MQTT) run on it too. */
export interface ClockedQuotas extends DeviceQuotas {
  /** Milliseconds, monotonic. */
  now(): number;
}

/** A bucket for one limit at its rate and burst. */
export function limitBucket(limit: keyof RateLimits, limits: RateLimits, now: number): TokenBucket {
  const { capacity, perSecond } = bucketShape(limit, limits);
  return new TokenBucket(capacity, perSecond, now);
}

/** The per-connection bucket of MQTT telemetry messages (`telemetryMessagesPerSecond`). */
export function telemetryMessageBucket(limits: RateLimits, now: number): TokenBucket {
  return limitBucket('telemetryMessagesPerSecond', limits, now);
}

function bucketShape(limit: keyof RateLimits, limits: RateLimits): { capacity: number; perSecond: number } {
  const rate = limits[limit];
  const perSecond = limit === 'registryConnectionsPerMinute' || limit === 'registryPublishesPerMinute' ? rate / 60 : rate;
  return { capacity: Math.max(1, perSecond * BURST_SECONDS[limit]), perSecond };
}

/** One bucket to check: what it is, and how many tokens the event takes from it. */
export interface QuotaCharge {
  readonly limit: keyof RateLimits;
  readonly bucket: TokenBucket;
  readonly amount: number;
}

/**
 * Admits an event only if every bucket it counts against has room, and only then takes from
 * them all: a refusal by one limit uses up none of the others.
 */
export function chargeAll(charges: readonly QuotaCharge[], now: number): QuotaVerdict {
  for (const { limit, bucket, amount } of charges) {
    const wait = bucket.secondsUntil(amount, now);
    if (wait > 0) return { ok: false, limit, retryAfterSeconds: Math.max(1, Math.ceil(wait)) };
  }
  for (const { bucket, amount } of charges) bucket.takeAmount(amount, now);
  return ADMITTED;
}

const ADMITTED: QuotaVerdict = { ok: true };

/** Per name object: a connection's device keeps its name, so the key is built once, not per message. */
const registryKeys = new WeakMap<RegistryName, string>();
function registryKey(name: RegistryName): string {
  let key = registryKeys.get(name);
  if (key === undefined) registryKeys.set(name, (key = `${name.project}/${name.location}/${name.registry}`));
  return key;
}

type DeviceLimit = 'stateUpdatesPerSecond' | 'configUpdatesPerSecond' | 'telemetryMessagesPerSecond' | 'telemetryBytesPerSecond' | 'connectionsPerSecond';
type RegistryLimit = 'registryConnectionsPerMinute' | 'registryPublishesPerMinute';

/** The buckets of one device or registry, made when first needed. */
type Buckets<L extends keyof RateLimits> = Partial<Record<L, TokenBucket>>;

export interface DeviceRateLimiterOptions {
  /** Milliseconds, monotonic; `performance.now()` by default. */
  readonly clock?: () => number;
  /**
   * Devices remembered at most. Only devices whose buckets are not full stay remembered; past
   * this many the longest-remembered one is forgotten (and starts again with full buckets).
   */
  readonly maxDevices?: number;
  /** Registries remembered at most, likewise. */
  readonly maxRegistries?: number;
}

/** How often the tables forget devices and registries whose buckets have refilled. */
const SWEEP_INTERVAL_MS = 30_000;

/** The in-memory DeviceQuotas of one node. */
export class DeviceRateLimiter implements ClockedQuotas, ConfigUpdateQuotas {
  readonly #clock: () => number;
  readonly #devices: BucketTable<DeviceLimit>;
  readonly #registries: BucketTable<RegistryLimit>;
  #sweptAt: number;

  constructor(options: DeviceRateLimiterOptions = {}) {
    this.#clock = options.clock ?? (() => performance.now());
    this.#devices = new BucketTable(options.maxDevices ?? 250_000);
    this.#registries = new BucketTable(options.maxRegistries ?? 10_000);
    this.#sweptAt = this.#clock();
  }

  now(): number {
    return this.#clock();
  }

  /** Devices currently remembered (those with a bucket not yet refilled). */
  get trackedDevices(): number {
    return this.#devices.size;
  }

  /** Registries currently remembered. */
  get trackedRegistries(): number {
    return this.#registries.size;
  }

  admitConnection(device: RateLimitedDevice, protocol: DeviceProtocol, now = this.#clock()): QuotaVerdict {
    this.#sweep(now);
    const charges = [this.#registryCharge(device, 'registryConnectionsPerMinute', now)];
    if (protocol === 'mqtt') charges.unshift(this.#deviceCharge(device, 'connectionsPerSecond', 1, now));
    return chargeAll(charges, now);
  }

  admitTelemetry(device: RateLimitedDevice, bytes: number, protocol: DeviceProtocol, now = this.#clock()): QuotaVerdict {
    this.#sweep(now);
    const charges = [
      this.#deviceCharge(device, 'telemetryBytesPerSecond', bytes, now),
      this.#registryCharge(device, 'registryPublishesPerMinute', now),
    ];
    if (protocol === 'http') charges.unshift(this.#deviceCharge(device, 'telemetryMessagesPerSecond', 1, now));
    return chargeAll(charges, now);
  }

  admitState(device: RateLimitedDevice, now = this.#clock()): QuotaVerdict {
    this.#sweep(now);
    return chargeAll(
      [this.#deviceCharge(device, 'stateUpdatesPerSecond', 1, now), this.#registryCharge(device, 'registryPublishesPerMinute', now)],
      now,
    );
  }

  admitConfigUpdate(device: RateLimitedDevice, now = this.#clock()): QuotaVerdict {
    this.#sweep(now);
    return chargeAll([this.#deviceCharge(device, 'configUpdatesPerSecond', 1, now)], now);
  }

  #deviceCharge(device: RateLimitedDevice, limit: DeviceLimit, amount: number, now: number): QuotaCharge {
    return { limit, amount, bucket: this.#devices.bucket(device.key, limit, device.rateLimits, now) };
  }

  #registryCharge(device: RateLimitedDevice, limit: RegistryLimit, now: number): QuotaCharge {
    return { limit, amount: 1, bucket: this.#registries.bucket(registryKey(device.name), limit, device.rateLimits, now) };
  }

  #sweep(now: number): void {
    if (now - this.#sweptAt < SWEEP_INTERVAL_MS) return;
    this.#sweptAt = now;
    this.#devices.forgetFull(now);
    this.#registries.forgetFull(now);
  }
}

/** One key's buckets, and the limits they were shaped by. */
interface Entry<L extends keyof RateLimits> {
  readonly buckets: Buckets<L>;
  limits: RateLimits;
}

/**
 * Buckets by key, bounded. Looked up on every message, so a hit costs one Map lookup: no
 * reordering, and buckets are reshaped only when the registry's limits object changed. At
 * capacity the longest-remembered key is forgotten (it starts again with full buckets); the
 * sweep forgets every key whose buckets have refilled, so only keys busy now stay long.
 */
class BucketTable<L extends keyof RateLimits> {
  readonly #entries = new Map<string, Entry<L>>();

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The key's bucket for `limit`, tuned to `limits` (they change when the registry's do). */
  bucket(key: string, limit: L, limits: RateLimits, now: number): TokenBucket {
    const entries = this.#entries;
    let entry = entries.get(key);
    if (entry === undefined) {
      if (entries.size >= this.capacity) {
        const oldest = entries.keys().next();
        if (!oldest.done) entries.delete(oldest.value);
      }
      entry = { buckets: {}, limits };
      entries.set(key, entry);
    } else if (entry.limits !== limits) {
      // A registry's devices each carry their own object: retune only when the values differ.
      const changed = !sameLimits(entry.limits, limits);
      entry.limits = limits;
      if (changed)
        for (const l of Object.keys(entry.buckets) as L[]) {
          const { capacity, perSecond } = bucketShape(l, limits);
          entry.buckets[l]?.retune(capacity, perSecond, now);
        }
    }
    let bucket = entry.buckets[limit];
    if (bucket === undefined) {
      bucket = limitBucket(limit, limits, now);
      entry.buckets[limit] = bucket;
    }
    return bucket;
  }

  /** Drops the keys whose every bucket is full: they hold nothing a fresh bucket would not. */
  forgetFull(now: number): void {
    for (const [key, { buckets }] of this.#entries) {
      if (Object.values<TokenBucket | undefined>(buckets).every((b) => b === undefined || b.isFull(now))) this.#entries.delete(key);
    }
  }
}
