/**
 * Device-plane rate limits and quotas (reference §1.11), shared by the broker and the HTTP
 * bridge so that a device meets the same limits whichever way it comes in. The limits are the
 * registry's (`rateLimits`, defaults below), read at authentication into the device's identity.
 *
 * Per-connection limits of MQTT (telemetry messages per second of one connection) are kept by
 * the connection itself; this object keeps what outlives a connection: per device and per
 * registry buckets.
 */
import type { DeviceKey, RegistryKey } from '../bus/bus.js';
import type { RateLimits } from '../domain/resources.js';

export const DEFAULT_RATE_LIMITS: RateLimits = {
  stateUpdatesPerSecond: 1,
  telemetryMessagesPerSecond: 100,
  telemetryBytesPerSecond: 512 * 1024,
  connectionsPerSecond: 1,
  registryConnectionsPerMinute: 60_000,
  registryPublishesPerMinute: 60_000,
};

/** What a quota check needs to know of the device. */
export interface RateLimitedDevice {
  readonly key: DeviceKey;
  /** `projects/{p}/locations/{l}/registries/{r}` */
  readonly registry: RegistryKey;
  readonly rateLimits: RateLimits;
}

export type QuotaVerdict =
  | { readonly ok: true }
  /** `limit` names the RateLimits field that refused (for the log and the error message). */
  | { readonly ok: false; readonly limit: keyof RateLimits; readonly retryAfterSeconds: number };

export interface DeviceQuotas {
  /** A new MQTT connection of the device, or one HTTP request: per device and per registry. */
  admitConnection(device: RateLimitedDevice, now?: number): QuotaVerdict;
  /** One telemetry event of `bytes` payload bytes (per device bytes, per registry publishes; HTTP: messages per device). */
  admitTelemetry(device: RateLimitedDevice, bytes: number, protocol: 'mqtt' | 'http', now?: number): QuotaVerdict;
  /** One state update: per device and per registry. */
  admitState(device: RateLimitedDevice, now?: number): QuotaVerdict;
}
