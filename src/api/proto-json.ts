/**
 * proto3 JSON ⇄ domain resources (reference §3.1): int64 as strings out and strings or numbers
 * in, bytes as base64 (standard or URL-safe in), RFC 3339 times, enums by name, default values
 * omitted on output.
 */
import { base64Problem, decodeBase64 } from '../domain/base64.js';
import { fieldError } from '../domain/errors.js';
import { formatDevice, formatRegistry } from '../domain/names.js';
import type {
  Device,
  DeviceConfig,
  DeviceCredential,
  DeviceState,
  Registry,
  RegistryCredential,
} from '../domain/resources.js';
import type { DeviceInput, RegistryInput } from '../registry/device-manager.js';
import type { CrlUploadResult } from '../registry/registry-crl.js';
import type {
  ApiDevice,
  ApiDeviceConfig,
  ApiDeviceCredential,
  ApiDeviceInput,
  ApiDeviceRegistry,
  ApiDeviceRegistryInput,
  ApiDeviceState,
  ApiGatewayConfig,
  ApiRegistryCredential,
  ApiUploadCrlResponse,
} from './wire-types.js';

// ---------------------------------------------------------------------------------------------
// Scalars

/** RFC 3339, UTC, with 0 or 3 fractional digits (proto3 JSON emits 0, 3, 6 or 9). */
export function timestampToJson(date: Date): string {
  return date.toISOString().replace('.000Z', 'Z');
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

export function parseTimestamp(field: string, value: string): Date {
  const m = RFC3339.exec(value);
  const date = m ? new Date(value.toUpperCase()) : undefined;
  // Date() rolls 2024-02-31 over into March; a round trip of the calendar fields catches it.
  const calendarOk =
    m !== null &&
    date !== undefined &&
    Number(m[2]) >= 1 &&
    Number(m[2]) <= 12 &&
    Number(m[3]) >= 1 &&
    Number(m[3]) <= new Date(Date.UTC(Number(m[1]), Number(m[2]), 0)).getUTCDate() &&
    Number(m[4]) <= 23 &&
    Number(m[5]) <= 59 &&
    Number(m[6]) <= 60;
  if (!calendarOk || date === undefined || Number.isNaN(date.getTime())) {
    throw fieldError(field, `'${value}' is not an RFC 3339 timestamp such as 2024-01-31T12:00:00Z`);
  }
  return date;
}

/** An int64 field as proto3 JSON parsers take it: a decimal string or a JSON number. */
export function parseInt64(field: string, value: string | number): number {
  const n = typeof value === 'number' ? value : /^-?[0-9]{1,20}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw fieldError(field, `'${value}' is not an integer Keyway can represent`);
  return n;
}

export function bytesToJson(data: Buffer): string {
  return data.toString('base64');
}

/**
 * Decodes base64 in the standard or the URL-safe alphabet, padded or not (Google accepted both;
 * the Python samples send URL-safe). Anything else is refused rather than decoded leniently.
 */
export function decodeBytes(field: string, value: string): Buffer {
  const problem = base64Problem(value);
  if (problem) throw fieldError(field, `Base64 decoding failed: ${problem}`);
  return decodeBase64(value);
}

// ---------------------------------------------------------------------------------------------
// Output

const only = <K extends string, V>(key: K, value: V | undefined, keep = value !== undefined): { [P in K]?: V } =>
  (keep ? { [key]: value } : {}) as { [P in K]?: V };

const time = <K extends string>(key: K, value: Date | undefined): { [P in K]?: string } =>
  only(key, value === undefined ? undefined : timestampToJson(value));

export function registryToJson(r: Registry): ApiDeviceRegistry {
  return {
    id: r.name.registry,
    name: formatRegistry(r.name),
    ...only('eventNotificationConfigs', r.eventNotificationConfigs.map((c) => ({
      ...only('subfolderMatches', c.subfolderMatches, Boolean(c.subfolderMatches)),
      pubsubTopicName: c.pubsubTopicName,
    })), r.eventNotificationConfigs.length > 0),
    ...only('stateNotificationConfig', r.stateNotificationConfig && { pubsubTopicName: r.stateNotificationConfig.pubsubTopicName }),
    mqttConfig: only('mqttEnabledState', r.mqttEnabledState, r.mqttEnabledState !== 'MQTT_STATE_UNSPECIFIED'),
    httpConfig: only('httpEnabledState', r.httpEnabledState, r.httpEnabledState !== 'HTTP_STATE_UNSPECIFIED'),
    ...only('logLevel', r.logLevel, r.logLevel !== 'LOG_LEVEL_UNSPECIFIED'),
    ...only('credentials', r.credentials.map(registryCredentialToJson), r.credentials.length > 0),
    ...only('deviceAuthMethod', r.deviceAuthMethod, r.deviceAuthMethod !== 'DEVICE_AUTH_METHOD_UNSPECIFIED'),
    ...only('rateLimits', r.rateLimits && { ...r.rateLimits }),
  };
}

function registryCredentialToJson(c: RegistryCredential): ApiRegistryCredential {
  const d = c.publicKeyCertificate.x509Details;
  const t = c.provisioningTemplate;
  return {
    publicKeyCertificate: {
      format: c.publicKeyCertificate.format,
      certificate: c.publicKeyCertificate.certificate,
      ...only('x509Details', d && {
        issuer: d.issuer,
        subject: d.subject,
        startTime: timestampToJson(d.startTime),
        expiryTime: timestampToJson(d.expiryTime),
        signatureAlgorithm: d.signatureAlgorithm,
        publicKeyType: d.publicKeyType,
      }),
    },
    ...only('provisioningTemplate', t && {
      deviceId: t.deviceId,
      ...only('metadata', t.metadata && { ...t.metadata }, t.metadata !== undefined && Object.keys(t.metadata).length > 0),
      ...only('configData', t.configData && bytesToJson(t.configData), t.configData !== undefined && t.configData.length > 0),
      ...only('gatewayType', t.gatewayType),
    }),
  };
}

export function crlUploadToJson(r: CrlUploadResult): ApiUploadCrlResponse {
  return {
    issuer: r.issuer,
    ...only('crlNumber', r.crlNumber?.toString()),
    revokedCount: r.revokedCount,
    thisUpdate: timestampToJson(r.thisUpdate),
    ...time('nextUpdate', r.nextUpdate),
  };
}

export function configToJson(c: DeviceConfig): ApiDeviceConfig {
  return {
    version: String(c.version),
    cloudUpdateTime: timestampToJson(c.cloudUpdateTime),
    ...time('deviceAckTime', c.deviceAckTime),
    ...only('binaryData', bytesToJson(c.binaryData), c.binaryData.length > 0),
  };
}

export function stateToJson(s: DeviceState): ApiDeviceState {
  return {
    updateTime: timestampToJson(s.updateTime),
    ...only('binaryData', bytesToJson(s.binaryData), s.binaryData.length > 0),
  };
}

function credentialToJson(c: DeviceCredential): ApiDeviceCredential {
  return {
    publicKey: { format: c.publicKey.format, key: c.publicKey.key },
    ...time('expirationTime', c.expirationTime),
  };
}

function gatewayConfigToJson(d: Device): ApiGatewayConfig {
  const g = d.gatewayConfig;
  return {
    ...only('gatewayType', g.gatewayType, g.gatewayType !== 'GATEWAY_TYPE_UNSPECIFIED'),
    ...only('gatewayAuthMethod', g.gatewayAuthMethod, g.gatewayAuthMethod !== 'GATEWAY_AUTH_METHOD_UNSPECIFIED'),
    ...only('lastAccessedGatewayId', g.lastAccessedGatewayId, Boolean(g.lastAccessedGatewayId)),
    ...time('lastAccessedGatewayTime', g.lastAccessedGatewayTime),
  };
}

export function deviceToJson(d: Device): ApiDevice {
  const status = d.lastErrorStatus;
  return {
    id: d.name.device,
    // The returned name always ends in the numeric id (reference §3.2).
    name: formatDevice({ ...d.name, device: d.numId }),
    numId: d.numId,
    ...only('credentials', d.credentials.map(credentialToJson), d.credentials.length > 0),
    ...time('lastHeartbeatTime', d.lastHeartbeatTime),
    ...time('lastEventTime', d.lastEventTime),
    ...time('lastStateTime', d.lastStateTime),
    ...time('lastConfigAckTime', d.lastConfigAckTime),
    ...time('lastConfigSendTime', d.lastConfigSendTime),
    ...only('blocked', true, d.blocked),
    ...time('lastErrorTime', d.lastErrorTime),
    ...only('lastErrorStatus', status && {
      ...only('code', status.code, status.code !== 0),
      ...only('message', status.message, status.message !== ''),
    }),
    config: configToJson(d.config),
    ...only('state', d.state && stateToJson(d.state)),
    ...only('logLevel', d.logLevel, d.logLevel !== 'LOG_LEVEL_UNSPECIFIED'),
    ...only('metadata', { ...d.metadata }, Object.keys(d.metadata).length > 0),
    gatewayConfig: gatewayConfigToJson(d),
  };
}

// ---------------------------------------------------------------------------------------------
// Input

/** A CA credential as sent; `x509Details` is output only and ignored. The service checks the rest. */
function registryCredentialFromJson(c: ApiRegistryCredential, index: number): RegistryCredential {
  const t = c.provisioningTemplate;
  return {
    publicKeyCertificate: {
      format: c.publicKeyCertificate.format,
      certificate: c.publicKeyCertificate.certificate,
    },
    ...only('provisioningTemplate', t && {
      deviceId: t.deviceId,
      ...only('metadata', t.metadata && { ...t.metadata }),
      ...only('configData', t.configData === undefined
        ? undefined
        : decodeBytes(`deviceRegistry.credentials[${index}].provisioningTemplate.configData`, t.configData)),
      ...only('gatewayType', t.gatewayType),
    }),
  };
}

/** The writable fields of a DeviceRegistry body; output-only and path fields are ignored. */
export function registryInputFromJson(body: ApiDeviceRegistryInput): RegistryInput {
  return {
    ...only('credentials', body.credentials?.map(registryCredentialFromJson)),
    ...only('deviceAuthMethod', body.deviceAuthMethod),
    ...only('eventNotificationConfigs', body.eventNotificationConfigs?.map((c) => ({
      pubsubTopicName: c.pubsubTopicName,
      ...only('subfolderMatches', c.subfolderMatches, Boolean(c.subfolderMatches)),
    }))),
    ...only('stateNotificationConfig', body.stateNotificationConfig && {
      pubsubTopicName: body.stateNotificationConfig.pubsubTopicName,
    }),
    ...only('mqttEnabledState', body.mqttConfig?.mqttEnabledState),
    ...only('httpEnabledState', body.httpConfig?.httpEnabledState),
    ...only('logLevel', body.logLevel),
    ...only('rateLimits', body.rateLimits && { ...body.rateLimits }),
  };
}

function credentialFromJson(c: ApiDeviceCredential, index: number): DeviceCredential {
  let expirationTime: Date | undefined;
  if (c.expirationTime !== undefined) {
    expirationTime = parseTimestamp(`credentials[${index}].expirationTime`, c.expirationTime);
    // Google reported "no expiration" as the epoch; a client echoing it back means the same.
    if (expirationTime.getTime() === 0) expirationTime = undefined;
  }
  return {
    publicKey: { format: c.publicKey.format, key: c.publicKey.key },
    ...only('expirationTime', expirationTime),
  };
}

export type DeviceBodyPurpose = 'create' | 'patch';

/** The writable fields of a Device body; output-only fields (numId, last*, state) are ignored. */
export function deviceInputFromJson(body: ApiDeviceInput, purpose: DeviceBodyPurpose): DeviceInput {
  let configData: Buffer | undefined;
  if (purpose === 'create' && body.config !== undefined) {
    const version = body.config.version === undefined ? 0 : parseInt64('config.version', body.config.version);
    if (version !== 0) throw fieldError('config.version', 'must be 0 or absent: the server assigns config versions');
    configData = body.config.binaryData === undefined ? undefined : decodeBytes('config.binaryData', body.config.binaryData);
  }
  return {
    ...only('credentials', body.credentials?.map(credentialFromJson)),
    ...only('blocked', body.blocked),
    ...only('metadata', body.metadata && { ...body.metadata }),
    ...only('logLevel', body.logLevel),
    ...only('gatewayConfig', body.gatewayConfig && {
      gatewayType: body.gatewayConfig.gatewayType ?? 'GATEWAY_TYPE_UNSPECIFIED',
      gatewayAuthMethod: body.gatewayConfig.gatewayAuthMethod ?? 'GATEWAY_AUTH_METHOD_UNSPECIFIED',
    }),
    ...only('configData', configData),
  };
}
