/**
 * Update masks (google.protobuf.FieldMask): Cloud IoT Core accepted snake_case and camelCase
 * paths alike, and REST clients may send them comma-joined. Paths are normalised to snake_case
 * and checked against what a method may change.
 */
import { fieldError } from '../domain/errors.js';
import type { DeviceMaskPath, RegistryMaskPath } from './device-manager.js';
import { RATE_LIMIT_MASK_PATHS } from './rate-limit-rules.js';

export const REGISTRY_MASK_PATHS: readonly RegistryMaskPath[] = [
  'event_notification_configs',
  'state_notification_config',
  'mqtt_config',
  'mqtt_config.mqtt_enabled_state',
  'http_config',
  'http_config.http_enabled_state',
  'log_level',
  'credentials',
  'device_auth_method',
  ...RATE_LIMIT_MASK_PATHS,
];

export const DEVICE_MASK_PATHS: readonly DeviceMaskPath[] = [
  'credentials',
  'blocked',
  'metadata',
  'log_level',
  'gateway_config.gateway_auth_method',
];

const toSnakeCase = (path: string): string => path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export function parseUpdateMask<P extends string>(
  mask: readonly string[] | undefined,
  allowed: readonly P[],
  field = 'updateMask',
): ReadonlySet<P> {
  if (!Array.isArray(mask)) throw fieldError(field, 'is required');
  const paths = mask.flatMap((entry: unknown) => {
    if (typeof entry !== 'string') throw fieldError(field, 'must be a list of field paths');
    return entry.split(',').map((p) => p.trim());
  });
  if (paths.length === 0 || paths.every((p) => p === '')) throw fieldError(field, 'is required and must name at least one field');
  const out = new Set<P>();
  for (const path of paths) {
    const snake = toSnakeCase(path);
    if (!(allowed as readonly string[]).includes(snake))
      throw fieldError(field, `'${path.slice(0, 100)}' is not a field that can be updated; allowed: ${allowed.join(', ')}`);
    out.add(snake as P);
  }
  return out;
}
