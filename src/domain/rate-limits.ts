/**
 * The fields of a registry's `rateLimits` (resources.ts RateLimits) with the range each may be
 * set to: at least 1 (a limit cannot switch a device off), at most what one node could honour.
 */
import type { RateLimits } from './resources.js';

export const RATE_LIMIT_MAXIMA: { readonly [K in keyof RateLimits]: number } = {
  stateUpdatesPerSecond: 1_000,
  configUpdatesPerSecond: 1_000,
  telemetryMessagesPerSecond: 100_000,
  telemetryBytesPerSecond: 1024 * 1024 * 1024,
  connectionsPerSecond: 1_000,
  registryConnectionsPerMinute: 100_000_000,
  registryPublishesPerMinute: 100_000_000,
};

export const RATE_LIMIT_FIELDS = Object.keys(RATE_LIMIT_MAXIMA) as readonly (keyof RateLimits)[];

/** `stateUpdatesPerSecond` → `state_updates_per_second` (update-mask paths). */
export function rateLimitPath(field: keyof RateLimits): `rate_limits.${string}` {
  return `rate_limits.${field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
}
