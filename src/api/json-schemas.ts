/**
 * JSON schemas of the admin API's resources and requests (reference §3.3). Fastify validates
 * every request against them (unknown fields refused), serializes responses with them and the
 * OpenAPI document is generated from them, so the three never drift apart.
 *
 * Output-only fields are part of the input schemas too: a caller may send back what it read
 * (read-modify-write); the server ignores them, as Google's API did.
 */
import {
  DEVICE_AUTH_METHODS,
  GATEWAY_AUTH_METHODS,
  GATEWAY_TYPES,
  HTTP_STATES,
  LIMITS,
  LOG_LEVELS,
  MQTT_STATES,
  PUBLIC_KEY_FORMATS,
} from '../domain/resources.js';
import { RATE_LIMIT_FIELDS, RATE_LIMIT_MAXIMA } from '../domain/rate-limits.js';

export type JsonSchema = { readonly [keyword: string]: unknown };

/** base64 length of `bytes` bytes, with padding. */
const base64Length = (bytes: number): number => Math.ceil(bytes / 3) * 4;

/** Standard or URL-safe alphabet, padding optional; the converter rejects mixed alphabets. */
export const BASE64_PATTERN = '^[A-Za-z0-9+/_-]*={0,2}$';
export const UINT64_PATTERN = '^[0-9]{1,20}$';
export const RFC3339_PATTERN =
  '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$';
/** A non-negative integer in a query string. */
export const QUERY_UINT_PATTERN = '^[0-9]{1,10}$';

/** Plain-language descriptions for pattern failures (Ajv would only quote the regex). */
export const PATTERN_DESCRIPTIONS: ReadonlyMap<string, string> = new Map([
  [BASE64_PATTERN, 'must be base64 (standard or URL-safe alphabet)'],
  [UINT64_PATTERN, 'must be an unsigned 64-bit integer'],
  [RFC3339_PATTERN, 'must be an RFC 3339 timestamp such as 2024-01-31T12:00:00Z'],
  [QUERY_UINT_PATTERN, 'must be a non-negative integer'],
]);

// Schema builders, shared by the schemas of Keyway's own resources (authority-wire, certificate-routes).
export const string = (maxLength = 1024): JsonSchema => ({ type: 'string', maxLength });
export const enumOf = (values: readonly string[]): JsonSchema => ({ type: 'string', enum: [...values] });
export const timestamp: JsonSchema = { type: 'string', pattern: RFC3339_PATTERN };
/** int64 travels as a string; numbers are accepted on input, as proto3 JSON parsers do. */
const int64: JsonSchema = {
  type: ['string', 'integer'],
  pattern: UINT64_PATTERN,
  minimum: 0,
  maximum: Number.MAX_SAFE_INTEGER,
};
const bytes = (maxBytes: number): JsonSchema => ({
  type: 'string',
  pattern: BASE64_PATTERN,
  maxLength: base64Length(maxBytes),
});

export const object = (title: string, properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema => ({
  title,
  type: 'object',
  additionalProperties: false,
  properties,
  ...(required.length ? { required } : {}),
});

export const EventNotificationConfigSchema = object(
  'EventNotificationConfig',
  { subfolderMatches: string(LIMITS.subfolderBytes), pubsubTopicName: string(1024) },
  ['pubsubTopicName'],
);

export const StateNotificationConfigSchema = object(
  'StateNotificationConfig',
  { pubsubTopicName: string(1024) },
  ['pubsubTopicName'],
);

export const X509CertificateDetailsSchema = object('X509CertificateDetails', {
  issuer: string(4096),
  subject: string(4096),
  startTime: timestamp,
  expiryTime: timestamp,
  signatureAlgorithm: string(128),
  publicKeyType: string(128),
});

/** Keyway's extension: how a device unknown to the registry is created on first connection. */
export const ProvisioningTemplateSchema = object(
  'ProvisioningTemplate',
  {
    deviceId: string(255),
    metadata: {
      type: 'object',
      maxProperties: LIMITS.metadataPairs,
      additionalProperties: { type: 'string', maxLength: LIMITS.metadataValueBytes },
    },
    configData: bytes(LIMITS.configBytes),
    gatewayType: enumOf(GATEWAY_TYPES),
  },
  ['deviceId'],
);

export const RegistryCredentialSchema = object('RegistryCredential', {
  publicKeyCertificate: object(
    'PublicKeyCertificate',
    {
      format: enumOf(['X509_CERTIFICATE_PEM']),
      certificate: string(32 * 1024),
      x509Details: X509CertificateDetailsSchema,
    },
    ['format', 'certificate'],
  ),
  provisioningTemplate: ProvisioningTemplateSchema,
}, ['publicKeyCertificate']);

/** Keyway's extension: the registry's device-plane rate limits; only those set are stored and returned. */
export const RateLimitsSchema = object(
  'RateLimits',
  Object.fromEntries(
    RATE_LIMIT_FIELDS.map((f) => [f, { type: 'integer', minimum: 1, maximum: RATE_LIMIT_MAXIMA[f] }]),
  ),
);

export const DeviceRegistrySchema = object('DeviceRegistry', {
  id: string(255),
  name: string(1024),
  eventNotificationConfigs: { type: 'array', maxItems: LIMITS.eventNotificationConfigs, items: EventNotificationConfigSchema },
  stateNotificationConfig: StateNotificationConfigSchema,
  mqttConfig: object('MqttConfig', { mqttEnabledState: enumOf(MQTT_STATES) }),
  httpConfig: object('HttpConfig', { httpEnabledState: enumOf(HTTP_STATES) }),
  logLevel: enumOf(LOG_LEVELS),
  credentials: { type: 'array', maxItems: LIMITS.registryCredentials, items: RegistryCredentialSchema },
  deviceAuthMethod: enumOf(DEVICE_AUTH_METHODS),
  rateLimits: RateLimitsSchema,
});

export const UploadCrlRequestSchema = object('UploadCrlRequest', { crl: string(1024 * 1024) }, ['crl']);

export const UploadCrlResponseSchema = object('UploadCrlResponse', {
  issuer: string(4096),
  /** A CRL number may exceed 64 bits: decimal text. */
  crlNumber: { type: 'string', pattern: '^[0-9]{1,50}$' },
  revokedCount: { type: 'integer' },
  thisUpdate: timestamp,
  nextUpdate: timestamp,
});

export const PublicKeyCredentialSchema = object(
  'PublicKeyCredential',
  { format: enumOf(PUBLIC_KEY_FORMATS), key: string(16 * 1024) },
  ['format', 'key'],
);

export const DeviceCredentialSchema = object(
  'DeviceCredential',
  { publicKey: PublicKeyCredentialSchema, expirationTime: timestamp },
  ['publicKey'],
);

export const DeviceConfigSchema = object('DeviceConfig', {
  version: int64,
  cloudUpdateTime: timestamp,
  deviceAckTime: timestamp,
  binaryData: bytes(LIMITS.configBytes),
});

export const DeviceStateSchema = object('DeviceState', {
  updateTime: timestamp,
  binaryData: bytes(LIMITS.stateBytes),
});

export const GatewayConfigSchema = object('GatewayConfig', {
  gatewayType: enumOf(GATEWAY_TYPES),
  gatewayAuthMethod: enumOf(GATEWAY_AUTH_METHODS),
  lastAccessedGatewayId: string(255),
  lastAccessedGatewayTime: timestamp,
});

export const StatusSchema = object('Status', {
  code: { type: 'integer' },
  message: string(4096),
  details: { type: 'array', items: { type: 'object' } },
});

export const DeviceSchema = object('Device', {
  id: string(255),
  name: string(1024),
  numId: int64,
  credentials: { type: 'array', maxItems: LIMITS.credentialsPerDevice, items: DeviceCredentialSchema },
  lastHeartbeatTime: timestamp,
  lastEventTime: timestamp,
  lastStateTime: timestamp,
  lastConfigAckTime: timestamp,
  lastConfigSendTime: timestamp,
  blocked: { type: 'boolean' },
  lastErrorTime: timestamp,
  lastErrorStatus: StatusSchema,
  config: DeviceConfigSchema,
  state: DeviceStateSchema,
  logLevel: enumOf(LOG_LEVELS),
  metadata: {
    type: 'object',
    maxProperties: LIMITS.metadataPairs,
    additionalProperties: { type: 'string', maxLength: LIMITS.metadataValueBytes },
  },
  gatewayConfig: GatewayConfigSchema,
});

/** Creation bodies: the resource with its `id` required. */
export const withRequired = (schema: JsonSchema, required: string[]): JsonSchema => ({
  allOf: [schema, { type: 'object', required }],
});

export const ModifyCloudToDeviceConfigRequestSchema = object(
  'ModifyCloudToDeviceConfigRequest',
  { versionToUpdate: int64, binaryData: bytes(LIMITS.configBytes) },
  ['binaryData'],
);

export const SendCommandToDeviceRequestSchema = object(
  'SendCommandToDeviceRequest',
  { binaryData: bytes(LIMITS.commandBytes), subfolder: string(LIMITS.subfolderBytes) },
  ['binaryData'],
);

export const EmptySchema = object('Empty', {});

export const ListDeviceRegistriesResponseSchema = object('ListDeviceRegistriesResponse', {
  deviceRegistries: { type: 'array', items: DeviceRegistrySchema },
  nextPageToken: { type: 'string' },
});

export const ListDevicesResponseSchema = object('ListDevicesResponse', {
  devices: { type: 'array', items: DeviceSchema },
  nextPageToken: { type: 'string' },
});

export const ListDeviceConfigVersionsResponseSchema = object('ListDeviceConfigVersionsResponse', {
  deviceConfigs: { type: 'array', items: DeviceConfigSchema },
});

export const ListDeviceStatesResponseSchema = object('ListDeviceStatesResponse', {
  deviceStates: { type: 'array', items: DeviceStateSchema },
});

export const HealthSchema = object('Health', { status: { type: 'string', enum: ['ok'] } }, ['status']);

const fieldViolation = object('FieldViolation', { field: { type: 'string' }, description: { type: 'string' } });

export const ErrorEnvelopeSchema = object(
  'Error',
  {
    error: object(
      'ErrorStatus',
      {
        code: { type: 'integer' },
        message: { type: 'string' },
        status: { type: 'string' },
        details: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              '@type': { type: 'string' },
              fieldViolations: { type: 'array', items: fieldViolation },
            },
          },
        },
      },
      ['code', 'message', 'status'],
    ),
  },
  ['error'],
);

/** Query-string parameter schemas (values arrive as strings; repeated keys as arrays). */
export const query = {
  uint: { type: 'string', pattern: QUERY_UINT_PATTERN } as JsonSchema,
  string: { type: 'string', maxLength: 4096 } as JsonSchema,
  /** `?k=a&k=b` or `?k=a,b`. */
  repeated: {
    type: ['string', 'array'],
    maxLength: 64 * 1024,
    maxItems: 10_000,
    items: { type: 'string', maxLength: 255 },
  } as JsonSchema,
};
