/**
 * Conversions between table rows and domain values. Rows were written by this store, so a value
 * that does not decode means the database was altered behind our back: that is an Error, loudly.
 */
import type { Selectable } from 'kysely';
import {
  DEVICE_AUTH_METHODS,
  GATEWAY_AUTH_METHODS,
  GATEWAY_TYPES,
  HTTP_STATES,
  LOG_LEVELS,
  MQTT_STATES,
  PUBLIC_KEY_FORMATS,
  type DeviceConfig,
  type DeviceState,
  type EventNotificationConfig,
  type Registry,
  type RegistryCredential,
} from '../domain/resources.js';
import { RATE_LIMIT_FIELDS } from '../domain/rate-limits.js';
import type { DeviceRecord, StoredCredential } from './store.js';
import type {
  DeviceConfigsTable,
  DeviceCredentialsTable,
  DevicesTable,
  DeviceStatesTable,
  RegistriesTable,
} from './schema.js';

export type RegistryRow = Selectable<RegistriesTable>;
export type DeviceRow = Selectable<DevicesTable>;
export type CredentialRow = Selectable<DeviceCredentialsTable>;
export type ConfigRow = Selectable<DeviceConfigsTable>;
export type StateRow = Selectable<DeviceStatesTable>;

function oneOf<T extends string>(values: readonly T[], value: string, column: string): T {
  if (!(values as readonly string[]).includes(value)) throw new Error(`store: unexpected ${column} '${value}'`);
  return value as T;
}

/** Epoch milliseconds as any driver returns a bigint column. */
export const toMillis = (v: number | string | bigint): number => Number(v);
export const toDate = (v: number | string | bigint): Date => new Date(Number(v));
const optionalDate = (v: number | string | bigint | null): Date | undefined => (v === null ? undefined : toDate(v));
export const toNumId = (v: number | string | bigint): string => String(v);

/**
 * A numeric id from a request, as the number the database compares. Ids we issue are below 2^53;
 * anything at or above cannot exist, and undefined says so without losing precision to rounding.
 */
export function numIdParam(numId: string): number | undefined {
  if (!/^[0-9]{1,20}$/.test(numId)) return undefined;
  const n = Number(numId);
  return Number.isSafeInteger(n) ? n : undefined;
}

const toBuffer = (v: Uint8Array): Buffer => (Buffer.isBuffer(v) ? v : Buffer.from(v));

export function encodeNotificationConfigs(configs: readonly EventNotificationConfig[]): string {
  return JSON.stringify(
    configs.map((c) => ({
      pubsubTopicName: c.pubsubTopicName,
      ...(c.subfolderMatches ? { subfolderMatches: c.subfolderMatches } : {}),
    })),
  );
}

function decodeNotificationConfigs(json: string): EventNotificationConfig[] {
  const parsed: unknown = JSON.parse(json);
  if (!Array.isArray(parsed)) throw new Error('store: event_notification_configs is not an array');
  return parsed.map((c: { pubsubTopicName?: unknown; subfolderMatches?: unknown }) => {
    if (typeof c.pubsubTopicName !== 'string') throw new Error('store: malformed event notification config');
    return {
      pubsubTopicName: c.pubsubTopicName,
      ...(typeof c.subfolderMatches === 'string' ? { subfolderMatches: c.subfolderMatches } : {}),
    };
  });
}

/**
 * Registry CA credentials as JSON text: the PEM as given, its output details (times in epoch
 * milliseconds) and the provisioning template (config data in base64).
 */
export function encodeRegistryCredentials(credentials: readonly RegistryCredential[]): string {
  return JSON.stringify(
    credentials.map(({ publicKeyCertificate: c, provisioningTemplate: t }) => ({
      certificate: c.certificate,
      ...(c.x509Details
        ? {
            x509Details: {
              ...c.x509Details,
              startTime: c.x509Details.startTime.getTime(),
              expiryTime: c.x509Details.expiryTime.getTime(),
            },
          }
        : {}),
      ...(t
        ? {
            provisioningTemplate: {
              deviceId: t.deviceId,
              ...(t.metadata !== undefined ? { metadata: t.metadata } : {}),
              ...(t.configData !== undefined ? { configData: t.configData.toString('base64') } : {}),
              ...(t.gatewayType !== undefined ? { gatewayType: t.gatewayType } : {}),
            },
          }
        : {}),
    })),
  );
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function decodeRegistryCredentials(json: string): RegistryCredential[] {
  const parsed: unknown = JSON.parse(json);
  if (!Array.isArray(parsed)) throw new Error('store: registry credentials are not an array');
  return parsed.map((c: unknown): RegistryCredential => {
    if (!isRecord(c) || typeof c.certificate !== 'string') throw new Error('store: malformed registry credential');
    const d = c.x509Details;
    const t = c.provisioningTemplate;
    if (d !== undefined && !isRecord(d)) throw new Error('store: malformed registry credential details');
    if (t !== undefined && (!isRecord(t) || typeof t.deviceId !== 'string'))
      throw new Error('store: malformed provisioning template');
    return {
      publicKeyCertificate: {
        format: 'X509_CERTIFICATE_PEM',
        certificate: c.certificate,
        ...(d
          ? {
              x509Details: {
                issuer: String(d.issuer),
                subject: String(d.subject),
                startTime: new Date(Number(d.startTime)),
                expiryTime: new Date(Number(d.expiryTime)),
                signatureAlgorithm: String(d.signatureAlgorithm),
                publicKeyType: String(d.publicKeyType),
              },
            }
          : {}),
      },
      ...(t
        ? {
            provisioningTemplate: {
              deviceId: t.deviceId as string,
              ...(t.metadata !== undefined ? { metadata: decodeMetadata(JSON.stringify(t.metadata)) } : {}),
              ...(typeof t.configData === 'string' ? { configData: Buffer.from(t.configData, 'base64') } : {}),
              ...(t.gatewayType !== undefined
                ? { gatewayType: oneOf(GATEWAY_TYPES, String(t.gatewayType), 'provisioning template gatewayType') }
                : {}),
            },
          }
        : {}),
    };
  });
}

export function encodeRateLimits(limits: Registry['rateLimits']): string {
  return JSON.stringify(limits ?? {});
}

/** The `rateLimits` field of a registry: absent when none is set. */
function rateLimitsOf(json: string): Pick<Registry, 'rateLimits'> {
  const parsed = JSON.parse(json) as Record<string, unknown>;
  const limits: Record<string, number> = {};
  for (const field of RATE_LIMIT_FIELDS) {
    const value = parsed[field];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new Error(`store: unexpected rate_limits.${field} '${String(value)}'`);
    limits[field] = value;
  }
  return Object.keys(limits).length > 0 ? { rateLimits: limits } : {};
}

export function toRegistry(row: RegistryRow): Registry {
  return {
    name: { project: row.project, location: row.location, registry: row.id },
    credentials: decodeRegistryCredentials(row.credentials),
    deviceAuthMethod: oneOf(DEVICE_AUTH_METHODS, row.device_auth_method, 'device_auth_method'),
    eventNotificationConfigs: decodeNotificationConfigs(row.event_notification_configs),
    ...(row.state_notification_topic !== null
      ? { stateNotificationConfig: { pubsubTopicName: row.state_notification_topic } }
      : {}),
    mqttEnabledState: oneOf(MQTT_STATES, row.mqtt_enabled_state, 'mqtt_enabled_state'),
    httpEnabledState: oneOf(HTTP_STATES, row.http_enabled_state, 'http_enabled_state'),
    logLevel: oneOf(LOG_LEVELS, row.log_level, 'log_level'),
    ...rateLimitsOf(row.rate_limits),
  };
}

export function toCredential(row: CredentialRow): StoredCredential {
  return {
    publicKey: { format: oneOf(PUBLIC_KEY_FORMATS, row.format, 'format'), key: row.public_key },
    fingerprint: row.fingerprint,
    ...(row.expiration_time !== null ? { expirationTime: toDate(row.expiration_time) } : {}),
  };
}

export function toConfig(row: ConfigRow): DeviceConfig {
  return {
    version: Number(row.version),
    cloudUpdateTime: toDate(row.cloud_update_time),
    ...(row.device_ack_time !== null ? { deviceAckTime: toDate(row.device_ack_time) } : {}),
    binaryData: toBuffer(row.binary_data),
  };
}

export function toState(row: StateRow): DeviceState {
  return { updateTime: toDate(row.update_time), binaryData: toBuffer(row.binary_data) };
}

export function decodeMetadata(json: string): Record<string, string> {
  const parsed: unknown = JSON.parse(json);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error('store: metadata is not an object');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v !== 'string') throw new Error('store: metadata value is not a string');
    out[k] = v;
  }
  return out;
}

/** A device row's gateway type and auth method (what authentication needs of its gatewayConfig). */
export function toGatewayConfig(row: Pick<DeviceRow, 'gateway_type' | 'gateway_auth_method'>) {
  return {
    gatewayType: oneOf(GATEWAY_TYPES, row.gateway_type, 'gateway_type'),
    gatewayAuthMethod: oneOf(GATEWAY_AUTH_METHODS, row.gateway_auth_method, 'gateway_auth_method'),
  };
}

/** Only the optional fields that are set: absent stays absent rather than becoming `undefined`. */
function present<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

export function toDeviceRecord(
  row: DeviceRow,
  credentials: readonly StoredCredential[],
  config: DeviceConfig | undefined,
  state: DeviceState | undefined,
): DeviceRecord {
  if (config === undefined) throw new Error(`store: device ${String(row.num_id)} has no config version`);
  const lastErrorTime = optionalDate(row.last_error_time);
  return {
    credentials,
    device: {
      name: { project: row.project, location: row.location, registry: row.registry_id, device: row.id },
      numId: toNumId(row.num_id),
      credentials: credentials.map(({ fingerprint: _, ...credential }) => credential),
      blocked: row.blocked !== 0,
      metadata: decodeMetadata(row.metadata),
      logLevel: oneOf(LOG_LEVELS, row.log_level, 'log_level'),
      gatewayConfig: {
        ...toGatewayConfig(row),
        ...present('lastAccessedGatewayId', row.last_accessed_gateway_id ?? undefined),
        ...present('lastAccessedGatewayTime', optionalDate(row.last_accessed_gateway_time)),
      },
      config,
      ...present('state', state),
      ...present('lastHeartbeatTime', optionalDate(row.last_heartbeat_time)),
      ...present('lastEventTime', optionalDate(row.last_event_time)),
      ...present('lastStateTime', optionalDate(row.last_state_time)),
      ...present('lastConfigAckTime', optionalDate(row.last_config_ack_time)),
      ...present('lastConfigSendTime', optionalDate(row.last_config_send_time)),
      ...present('lastErrorTime', lastErrorTime),
      ...(lastErrorTime !== undefined && row.last_error_code !== null
        ? { lastErrorStatus: { code: row.last_error_code, message: row.last_error_message ?? '' } }
        : {}),
    },
  };
}
