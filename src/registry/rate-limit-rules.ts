/**
 * Validation of a registry's `rateLimits` (Keyway's extension of DeviceRegistry) and of the
 * update-mask paths that change them. Only the fields set are kept: the others follow the
 * defaults (device-quotas DEFAULT_RATE_LIMITS), also when those change in a later release.
 */
import { fieldError } from '../domain/errors.js';
import { RATE_LIMIT_FIELDS, RATE_LIMIT_MAXIMA, rateLimitPath } from '../domain/rate-limits.js';
import type { RateLimits } from '../domain/resources.js';

const FIELD = 'deviceRegistry.rateLimits';

/** Undefined when nothing is set. Numbers or decimal strings (proto3 JSON int32) are accepted. */
export function checkRateLimits(raw: unknown, field = FIELD): Partial<RateLimits> | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw fieldError(field, 'must be an object');
  const out: { -readonly [K in keyof RateLimits]?: number } = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!(RATE_LIMIT_FIELDS as readonly string[]).includes(key)) {
      throw fieldError(`${field}.${key.slice(0, 100)}`, `is not a rate limit; known: ${RATE_LIMIT_FIELDS.join(', ')}`);
    }
    if (value === undefined || value === null) continue;
    out[key as keyof RateLimits] = checkLimit(key as keyof RateLimits, value, `${field}.${key}`);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function checkLimit(key: keyof RateLimits, value: unknown, field: string): number {
  const n = typeof value === 'string' && /^\d{1,12}$/.test(value) ? Number(value) : value;
  const max = RATE_LIMIT_MAXIMA[key];
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw fieldError(field, `must be an integer from 1 to ${max}`);
  }
  return n;
}

/** Update-mask paths for rate limits: the whole object, or one field. */
export const RATE_LIMIT_MASK_PATHS = ['rate_limits', ...RATE_LIMIT_FIELDS.map(rateLimitPath)] as const;

/**
 * The registry's limits after a patch: `rate_limits` replaces them all with the input's, a field
 * path sets that field (or, absent from the input, returns it to its default). Undefined when
 * the mask names no rate limit.
 */
export function patchRateLimits(
  current: Partial<RateLimits> | undefined,
  input: unknown,
  paths: ReadonlySet<string>,
): { readonly rateLimits: Partial<RateLimits> } | undefined {
  const given = checkRateLimits(input) ?? {};
  if (paths.has('rate_limits')) return { rateLimits: given };
  const fields = RATE_LIMIT_FIELDS.filter((f) => paths.has(rateLimitPath(f)));
  if (fields.length === 0) return undefined;
  const next: { -readonly [K in keyof RateLimits]?: number } = { ...current };
  for (const f of fields) {
    const value = given[f];
    if (value === undefined) delete next[f];
    else next[f] = value;
  }
  return { rateLimits: next };
}
