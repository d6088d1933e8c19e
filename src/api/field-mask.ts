/**
 * Field masks (`fieldMask`, `updateMask`): comma-separated paths, snake_case or lowerCamelCase,
 * as google.protobuf.FieldMask travels in a query string.
 */
import { fieldError } from '../domain/errors.js';
import { camelCase } from './field-names.js';
import type { JsonSchema } from './json-schemas.js';

/** Splits `a,b.c` into trimmed non-empty paths. */
export function parseMaskPaths(mask: string | undefined): string[] {
  if (mask === undefined) return [];
  return mask
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

const propertiesOf = (schema: JsonSchema): Record<string, JsonSchema> | undefined =>
  typeof schema.properties === 'object' && schema.properties !== null
    ? (schema.properties as Record<string, JsonSchema>)
    : undefined;

/** Resolves each path against the resource schema; unknown paths are INVALID_ARGUMENT. */
export function resolveMask(field: string, paths: readonly string[], schema: JsonSchema): string[][] {
  return paths.map((path) => {
    const segments = camelCase(path).split('.');
    let current: JsonSchema | undefined = schema;
    for (const segment of segments) {
      const props: Record<string, JsonSchema> | undefined = current ? propertiesOf(current) : undefined;
      current = props && Object.hasOwn(props, segment) ? props[segment] : undefined;
      if (!current) throw fieldError(field, `'${path}' is not a field of ${String(schema.title ?? 'the resource')}`);
    }
    return segments;
  });
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Copies only the masked paths (plus `always`) of a JSON object; absent fields stay absent. */
export function applyMask<T extends object>(resource: T, mask: readonly string[][], always: readonly string[]): Partial<T> {
  const out: Record<string, unknown> = {};
  const source = resource as Record<string, unknown>;
  for (const key of always) if (source[key] !== undefined) out[key] = source[key];
  for (const segments of mask) {
    // Find the leaf first so that an absent field leaves no empty parent behind.
    let value: unknown = source;
    for (const segment of segments) value = isPlainObject(value) ? value[segment] : undefined;
    if (value === undefined) continue;
    let to = out;
    segments.slice(0, -1).forEach((segment) => {
      if (!isPlainObject(to[segment])) to[segment] = {};
      to = to[segment] as Record<string, unknown>;
    });
    to[segments[segments.length - 1] as string] = value;
  }
  return out as Partial<T>;
}
