/**
 * The bodies and query strings of Cloud IoT Core's device HTTP API (reference §2), read as
 * Google's front end read them: every field under its JSON name (`binaryData`) or its proto name
 * (`binary_data`), `bytes` in either base64 alphabet, padded or not, int64 as a decimal string.
 * The JSON schemas let Fastify refuse unknown fields and wrong types before these run; these
 * then pick the spelling, decode, and refuse what a schema cannot say. Errors name fields by
 * their proto names, as Google's did ("Invalid value at 'binary_data' (TYPE_BYTES)…").
 */
import { base64Problem, decodeBase64 } from '../domain/base64.js';
import { KeywayError } from '../domain/errors.js';
import { LIMITS } from '../domain/resources.js';

/** `gatewayInfo`, a oneof: the gateway acting for a device, or a device relayed by a gateway. */
export type GatewayInfo =
  /** The path and token are the gateway's; the request is for this device (id or numeric id). */
  | { readonly delegatedDeviceId: string }
  /** The path and token are the device's; it came through this gateway (id or numeric id). */
  | { readonly gatewayId: string };

export interface PublishEventRequest {
  readonly payload: Buffer;
  /** Verbatim; absent for the default events topic. */
  readonly subfolder?: string;
  readonly gatewayInfo?: GatewayInfo;
}

export interface SetStateRequest {
  readonly payload: Buffer;
  readonly gatewayInfo?: GatewayInfo;
}

export interface GetConfigRequest {
  /** 0: the current config; N > 0: the data only if a version newer than N exists. */
  readonly localVersion: number;
  readonly gatewayInfo?: GatewayInfo;
}

type JsonSchema = { readonly [keyword: string]: unknown };

const protoName = (camel: string): string => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
/** The JSON name and the proto name of a field (one name when they are the same). */
const spellings = (camel: string): readonly string[] => (protoName(camel) === camel ? [camel] : [camel, protoName(camel)]);

/** A message schema that takes each field under both spellings, and nothing else. */
function message(title: string, fields: Record<string, JsonSchema>): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const [camel, schema] of Object.entries(fields)) for (const name of spellings(camel)) properties[name] = schema;
  return { title, type: 'object', additionalProperties: false, properties };
}

// The total size is bounded by the route's body limit; these bound only what decoding cannot.
const bytes: JsonSchema = { type: 'string' };
const id: JsonSchema = { type: 'string', maxLength: 512 };
const GatewayInfoSchema = message('GatewayInfo', { gatewayId: id, delegatedDeviceId: id });

export const PUBLISH_EVENT_BODY = message('PublishDeviceEventRequest', {
  binaryData: bytes,
  subFolder: { type: 'string', maxLength: 4 * LIMITS.subfolderBytes },
  gatewayInfo: GatewayInfoSchema,
});

export const SET_STATE_BODY = message('SetDeviceStateRequest', {
  state: message('DeviceState', { binaryData: bytes }),
  gatewayInfo: GatewayInfoSchema,
});

/** Query parameters name nested fields by path, each segment in either spelling. */
const GATEWAY_QUERY_KEYS = spellings('gatewayInfo').flatMap((info) =>
  [...spellings('gatewayId'), ...spellings('delegatedDeviceId')].map((field) => `${info}.${field}`),
);

export const GET_CONFIG_QUERY: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries([...spellings('localVersion'), ...GATEWAY_QUERY_KEYS].map((key) => [key, { type: 'string', maxLength: 512 }])),
};

const invalid = (field: string, description: string, message = `Invalid value at '${field}': ${description}`): KeywayError =>
  new KeywayError('INVALID_ARGUMENT', message, [{ field, description }]);

type Fields = Readonly<Record<string, unknown>>;

/** The field under whichever spelling was used; both at once is refused, as a field set twice. */
function field(object: Fields, camel: string, path: string): unknown {
  const json = camel;
  const proto = protoName(camel);
  const a = object[json];
  const b = json === proto ? undefined : object[proto];
  if (a !== undefined && b !== undefined) {
    throw invalid(`${path}${proto}`, `given twice, as '${json}' and '${proto}'`, `Invalid JSON payload received. Field '${path}${proto}' is given twice, as '${json}' and '${proto}'.`);
  }
  return a ?? b;
}

function decodeBytes(value: unknown, fieldName: string): Buffer {
  if (value === undefined) return Buffer.alloc(0);
  const text = value as string;
  const problem = base64Problem(text);
  if (problem) {
    const description = `Base64 decoding failed: ${problem}`;
    throw invalid(fieldName, description, `Invalid value at '${fieldName}' (TYPE_BYTES), ${description}.`);
  }
  return decodeBase64(text);
}

/** Wildcards would make the backend topic a filter; NUL is never allowed in a topic (MQTT §1.5.3). */
function subfolderOf(value: unknown): string | undefined {
  const subfolder = value as string | undefined;
  if (subfolder === undefined || subfolder === '') return undefined;
  if (/[+#]/.test(subfolder) || subfolder.includes('\u0000')) throw invalid('sub_folder', "must not contain '+', '#' or NUL");
  if (Buffer.byteLength(subfolder) > LIMITS.subfolderBytes) throw invalid('sub_folder', `must be at most ${LIMITS.subfolderBytes} bytes`);
  return subfolder;
}

/** A oneof of strings: an empty string is an unset field (proto3). */
function gatewayInfoOf(gatewayId: unknown, delegatedDeviceId: unknown, path: string): GatewayInfo | undefined {
  const gateway = gatewayId === '' ? undefined : (gatewayId as string | undefined);
  const delegated = delegatedDeviceId === '' ? undefined : (delegatedDeviceId as string | undefined);
  if (gateway !== undefined && delegated !== undefined) {
    throw invalid(path, "only one of 'gateway_id' and 'delegated_device_id' may be set");
  }
  if (gateway !== undefined) return { gatewayId: gateway };
  if (delegated !== undefined) return { delegatedDeviceId: delegated };
  return undefined;
}

function bodyGatewayInfo(body: Fields): GatewayInfo | undefined {
  const info = field(body, 'gatewayInfo', '') as Fields | undefined;
  if (info === undefined) return undefined;
  return gatewayInfoOf(field(info, 'gatewayId', 'gateway_info.'), field(info, 'delegatedDeviceId', 'gateway_info.'), 'gateway_info');
}

const withGateway = (info: GatewayInfo | undefined): { gatewayInfo?: GatewayInfo } => (info ? { gatewayInfo: info } : {});

/** A body that passed PUBLISH_EVENT_BODY. */
export function parsePublishEvent(body: unknown): PublishEventRequest {
  const b = (body ?? {}) as Fields;
  const payload = decodeBytes(field(b, 'binaryData', ''), 'binary_data');
  const subfolder = subfolderOf(field(b, 'subFolder', ''));
  return { payload, ...(subfolder !== undefined ? { subfolder } : {}), ...withGateway(bodyGatewayInfo(b)) };
}

/** A body that passed SET_STATE_BODY. */
export function parseSetState(body: unknown): SetStateRequest {
  const b = (body ?? {}) as Fields;
  const state = field(b, 'state', '') as Fields | undefined;
  if (state === undefined) throw invalid('state', 'is required');
  const payload = decodeBytes(field(state, 'binaryData', 'state.'), 'state.binary_data');
  return { payload, ...withGateway(bodyGatewayInfo(b)) };
}

/** The one query value under any spelling of `path` (segments camelCase or snake_case). */
function queryValue(query: Fields, path: readonly string[]): string | undefined {
  const names = path.reduce<string[]>((prefixes, segment) => prefixes.flatMap((p) => spellings(segment).map((s) => (p ? `${p}.${s}` : s))), ['']);
  const given = names.filter((n) => query[n] !== undefined);
  if (given.length > 1) {
    const name = path.map(protoName).join('.');
    throw invalid(name, `given more than once (${given.join(', ')})`);
  }
  return given.length ? (query[given[0] as string] as string) : undefined;
}

/** A query that passed GET_CONFIG_QUERY. */
export function parseGetConfig(query: unknown): GetConfigRequest {
  const q = (query ?? {}) as Fields;
  const text = queryValue(q, ['localVersion']);
  let localVersion = 0;
  if (text !== undefined && text !== '') {
    localVersion = /^[0-9]{1,16}$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(localVersion)) {
      const description = /^-[0-9]+$/.test(text) ? 'must not be negative' : 'must be an integer';
      throw invalid('local_version', description, `Invalid value at 'local_version' (TYPE_INT64), "${text.slice(0, 64)}": ${description}.`);
    }
  }
  const info = gatewayInfoOf(queryValue(q, ['gatewayInfo', 'gatewayId']), queryValue(q, ['gatewayInfo', 'delegatedDeviceId']), 'gateway_info');
  return { localVersion, ...withGateway(info) };
}
