/**
 * The OpenAPI 3.1 document of the admin API, generated from the route table and its schemas.
 * Titled schemas become named components referenced by `$ref`.
 */
import { ErrorEnvelopeSchema, type JsonSchema } from './json-schemas.js';
import type { ApiRoute } from './routes.js';

type Schemas = Record<string, JsonSchema>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Replaces titled sub-schemas by `$ref`s, collecting them in `components`. */
function hoist(schema: unknown, components: Schemas, root = true): unknown {
  if (Array.isArray(schema)) return schema.map((s) => hoist(s, components, false));
  if (!isObject(schema)) return schema;
  const title = typeof schema.title === 'string' ? schema.title : undefined;
  if (title && !root) {
    if (!components[title]) {
      components[title] = {}; // reserve first: a schema may refer to itself
      components[title] = hoist(schema, components, true) as JsonSchema;
    }
    return { $ref: `#/components/schemas/${title}` };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    // `properties` and `enum` hold data, not schemas, at their first level.
    out[k] =
      k === 'properties' && isObject(v)
        ? Object.fromEntries(Object.entries(v).map(([p, s]) => [p, hoist(s, components, false)]))
        : k === 'enum'
          ? v
          : hoist(v, components, false);
  }
  return out;
}

/** A schema as used in an operation: a `$ref` when titled, inline otherwise. */
const refOf = (schema: JsonSchema, components: Schemas): unknown => hoist(schema, components, false);

function parameters(route: ApiRoute, components: Schemas): unknown[] {
  const path = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
    name: m[1],
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
  const required = new Set(route.query?.required ?? []);
  const q = Object.entries(route.query?.properties ?? {}).map(([name, schema]) => {
    const repeated = Array.isArray(schema.type) && schema.type.includes('array');
    return {
      name,
      in: 'query',
      required: required.has(name),
      ...(repeated
        ? { style: 'form', explode: true, schema: { type: 'array', items: schema.items } }
        : { schema: refOf(schema, components) }),
    };
  });
  return [...path, ...q];
}

export function buildOpenApiDocument(routes: readonly ApiRoute[]): object {
  const components: Schemas = {};
  const paths: Record<string, Record<string, unknown>> = {};
  const errorResponse = {
    description: 'A google.rpc error envelope.',
    content: { 'application/json': { schema: refOf(ErrorEnvelopeSchema, components) } },
  };
  for (const route of routes) {
    const operation = {
      operationId: route.operationId,
      summary: route.summary,
      ...(route.public ? { security: [] } : {}),
      parameters: parameters(route, components),
      ...(route.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: refOf(route.body, components) } } } }
        : {}),
      responses: {
        '200': { description: 'Success.', content: { 'application/json': { schema: refOf(route.response, components) } } },
        default: errorResponse,
      },
    };
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Keyway admin API',
      version: 'v1',
      description:
        'The Cloud IoT Core v1 Device Manager resource model: registries, devices, configs, states and commands.',
    },
    security: [{ adminToken: [] }],
    paths,
    components: {
      schemas: components,
      securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: 'The admin token.' } },
    },
  };
}
