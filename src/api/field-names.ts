/**
 * Google's REST front end accepted both the JSON names (lowerCamelCase) and the proto field
 * names (snake_case) of a message. Keys are renamed to lowerCamelCase before validation, guided
 * by the schema so that only message fields are touched, never the keys of a map (`metadata`).
 */
import type { JsonSchema } from './json-schemas.js';

export const camelCase = (name: string): string =>
  name
    .split('.')
    .map((part) => part.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()))
    .join('.');

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const propertiesOf = (schema: JsonSchema): Record<string, JsonSchema> | undefined => {
  if (isPlainObject(schema.properties)) return schema.properties as Record<string, JsonSchema>;
  if (Array.isArray(schema.allOf)) {
    for (const part of schema.allOf as JsonSchema[]) {
      const props = propertiesOf(part);
      if (props) return props;
    }
  }
  return undefined;
};

/**
 * Renames snake_case keys in place to the lowerCamelCase property the schema declares. A key
 * given under both spellings is left alone so that validation refuses the duplicate.
 */
export function normalizeKeys(value: unknown, schema: JsonSchema): void {
  if (Array.isArray(value)) {
    if (isPlainObject(schema.items)) for (const item of value) normalizeKeys(item, schema.items);
    return;
  }
  if (!isPlainObject(value)) return;
  const properties = propertiesOf(schema);
  if (properties) {
    for (const key of Object.keys(value)) {
      if (Object.hasOwn(properties, key)) continue;
      const camel = camelCase(key);
      if (camel !== key && Object.hasOwn(properties, camel) && !Object.hasOwn(value, camel)) {
        value[camel] = value[key];
        delete value[key];
      }
    }
    for (const [key, sub] of Object.entries(properties)) {
      if (Object.hasOwn(value, key)) normalizeKeys(value[key], sub);
    }
  } else if (isPlainObject(schema.additionalProperties)) {
    // A map: its keys are data, only its values may be messages.
    for (const v of Object.values(value)) normalizeKeys(v, schema.additionalProperties);
  }
}
