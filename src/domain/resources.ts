/**
 * The resources of the device manager as Keyway holds them in memory. Field names follow the
 * Cloud IoT Core v1 JSON (camelCase); bytes are Buffers, times are Dates and 64-bit ids are
 * decimal strings. The admin API converts these to proto3 JSON and back.
 */
import type { DeviceName, RegistryName } from './names.js';

export const PUBLIC_KEY_FORMATS = ['RSA_PEM', 'RSA_X509_PEM', 'ES256_PEM', 'ES256_X509_PEM'] as const;
export type PublicKeyFormat = (typeof PUBLIC_KEY_FORMATS)[number];

export const MQTT_STATES = ['MQTT_STATE_UNSPECIFIED', 'MQTT_ENABLED', 'MQTT_DISABLED'] as const;
export type MqttState = (typeof MQTT_STATES)[number];
export const HTTP_STATES = ['HTTP_STATE_UNSPECIFIED', 'HTTP_ENABLED', 'HTTP_DISABLED'] as const;
export type HttpState = (typeof HTTP_STATES)[number];
export const LOG_LEVELS = ['LOG_LEVEL_UNSPECIFIED', 'NONE', 'ERROR', 'INFO', 'DEBUG'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const GATEWAY_TYPES = ['GATEWAY_TYPE_UNSPECIFIED', 'GATEWAY', 'NON_GATEWAY'] as const;
export type GatewayType = (typeof GATEWAY_TYPES)[number];
export const GATEWAY_AUTH_METHODS = [
  'GATEWAY_AUTH_METHOD_UNSPECIFIED',
  'ASSOCIATION_ONLY',
  'DEVICE_AUTH_TOKEN_ONLY',
  'ASSOCIATION_AND_DEVICE_AUTH_TOKEN',
] as const;
export type GatewayAuthMethod = (typeof GATEWAY_AUTH_METHODS)[number];

/** Which device authentications a registry accepts (Keyway's extension of DeviceRegistry). */
export const DEVICE_AUTH_METHODS = [
  'DEVICE_AUTH_METHOD_UNSPECIFIED',
  'JWT_OR_CERTIFICATE',
  'JWT_ONLY',
  'CERTIFICATE_ONLY',
] as const;
export type DeviceAuthMethod = (typeof DEVICE_AUTH_METHODS)[number];

/** States of a registered device certificate (AWS IoT's CertificateStatus, reference aws §1.4). */
export const CERTIFICATE_STATES = ['ACTIVE', 'INACTIVE', 'REVOKED', 'PENDING_ACTIVATION'] as const;
export type CertificateState = (typeof CERTIFICATE_STATES)[number];

/** Limits of reference §1.11 and §3.2. */
export const LIMITS = {
  credentialsPerDevice: 3,
  configVersionsKept: 10,
  statesKept: 10,
  configBytes: 64 * 1024,
  stateBytes: 64 * 1024,
  eventBytes: 256 * 1024,
  commandBytes: 256 * 1024,
  metadataPairs: 500,
  metadataValueBytes: 32 * 1024,
  metadataTotalBytes: 256 * 1024,
  metadataKeyMaxChars: 128,
  subfolderBytes: 256,
  eventNotificationConfigs: 10,
  pageSizeMax: 500,
  pageSizeDefault: 100,
  registryCredentials: 10,
  /** Gateways (reference §1.10). */
  devicesBoundPerGateway: 10_000,
  gatewaysPerDevice: 10,
  devicesAttachedPerGateway: 1_000,
} as const;

/** The device-plane protocols a registry may switch off one by one (mqttConfig, httpConfig). */
export type DeviceProtocol = 'mqtt' | 'http';

/**
 * Device-plane rate limits (Keyway's extension of DeviceRegistry, `rateLimits`): the defaults
 * follow reference §1.11; a registry may set any of them. Enforced the same way on MQTT and HTTP
 * (registry/device-quotas.ts).
 */
export interface RateLimits {
  /** State updates per device per second (Cloud IoT Core: 1). */
  readonly stateUpdatesPerSecond: number;
  /** Configuration updates per device per second, through the admin API (Cloud IoT Core: 1). */
  readonly configUpdatesPerSecond: number;
  /** Telemetry messages per second of one MQTT connection, or of one device over HTTP (100). */
  readonly telemetryMessagesPerSecond: number;
  /** Telemetry payload bytes per second per device (512 KiB). */
  readonly telemetryBytesPerSecond: number;
  /** New MQTT connections per device per second. */
  readonly connectionsPerSecond: number;
  /** MQTT connections and HTTP requests of all the registry's devices per minute (60,000). */
  readonly registryConnectionsPerMinute: number;
  /** Telemetry and state publishes of all the registry's devices per minute (60,000). */
  readonly registryPublishesPerMinute: number;
}

export interface NotificationConfig {
  readonly pubsubTopicName: string;
}

export interface EventNotificationConfig extends NotificationConfig {
  /** Exact subfolder to match; empty or absent matches every event (the default route). */
  readonly subfolderMatches?: string;
}

/** Output only: what Cloud IoT Core reported of a certificate (X509CertificateDetails). */
export interface X509CertificateDetails {
  readonly issuer: string;
  readonly subject: string;
  readonly startTime: Date;
  readonly expiryTime: Date;
  readonly signatureAlgorithm: string;
  readonly publicKeyType: string;
}

export interface PublicKeyCertificate {
  readonly format: 'X509_CERTIFICATE_PEM';
  /** PEM text of one certificate. */
  readonly certificate: string;
  /** Output only. */
  readonly x509Details?: X509CertificateDetails;
}

/**
 * Just-in-time provisioning (Keyway's extension of a registry CA credential): a device presenting
 * an unknown certificate signed by this CA is created from this template on its first connection.
 * String values may hold `${Field}` placeholders taken from the certificate (provisioning-template.ts).
 */
export interface ProvisioningTemplate {
  /** e.g. `${CommonName}` or `sensor-${SerialNumber}`. */
  readonly deviceId: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** Data of the device's config version 1. */
  readonly configData?: Buffer;
  readonly gatewayType?: GatewayType;
}

/** A CA certificate of a registry (RegistryCredential), optionally allowing auto-registration. */
export interface RegistryCredential {
  readonly publicKeyCertificate: PublicKeyCertificate;
  readonly provisioningTemplate?: ProvisioningTemplate;
}

export interface Registry {
  readonly name: RegistryName;
  /** CA certificates devices' certificates must chain to (≤ LIMITS.registryCredentials). */
  readonly credentials: readonly RegistryCredential[];
  readonly deviceAuthMethod: DeviceAuthMethod;
  readonly eventNotificationConfigs: readonly EventNotificationConfig[];
  readonly stateNotificationConfig?: NotificationConfig;
  readonly mqttEnabledState: MqttState;
  readonly httpEnabledState: HttpState;
  readonly logLevel: LogLevel;
  /** Only the limits the operator set; the rest take DEFAULT_RATE_LIMITS (registry/device-quotas). */
  readonly rateLimits?: Partial<RateLimits>;
}

export interface PublicKeyCredential {
  readonly format: PublicKeyFormat;
  /** PEM text as the operator supplied it. */
  readonly key: string;
}

export interface DeviceCredential {
  readonly publicKey: PublicKeyCredential;
  /** Past this instant the credential stays listed but no longer authenticates. */
  readonly expirationTime?: Date;
}

/** A google.rpc.Status as recorded in `lastErrorStatus`. */
export interface Status {
  readonly code: number;
  readonly message: string;
}

export interface DeviceConfig {
  /** Server-assigned, starting at 1, +1 per update. */
  readonly version: number;
  readonly cloudUpdateTime: Date;
  readonly deviceAckTime?: Date;
  readonly binaryData: Buffer;
}

export interface DeviceState {
  readonly updateTime: Date;
  readonly binaryData: Buffer;
}

export interface GatewayConfig {
  readonly gatewayType: GatewayType;
  readonly gatewayAuthMethod: GatewayAuthMethod;
  readonly lastAccessedGatewayId?: string;
  readonly lastAccessedGatewayTime?: Date;
}

export interface Device {
  /** Always carries the device id (not the numeric id) in `device`. */
  readonly name: DeviceName;
  /** uint64 as a decimal string; unique across the whole installation. */
  readonly numId: string;
  readonly credentials: readonly DeviceCredential[];
  readonly blocked: boolean;
  readonly metadata: Readonly<Record<string, string>>;
  readonly logLevel: LogLevel;
  readonly gatewayConfig: GatewayConfig;
  /** The latest config version (a device always has one: version 1 is created with it). */
  readonly config: DeviceConfig;
  /** The latest reported state, absent until the first report. */
  readonly state?: DeviceState;
  readonly lastHeartbeatTime?: Date;
  readonly lastEventTime?: Date;
  readonly lastStateTime?: Date;
  readonly lastConfigAckTime?: Date;
  readonly lastConfigSendTime?: Date;
  readonly lastErrorTime?: Date;
  readonly lastErrorStatus?: Status;
}

export interface PageRequest {
  /** 1..LIMITS.pageSizeMax; absent means LIMITS.pageSizeDefault. */
  readonly pageSize?: number;
  /** Opaque token from a previous page. */
  readonly pageToken?: string;
}

export interface Page<T> {
  readonly items: readonly T[];
  /** Present when more items follow. */
  readonly nextPageToken?: string;
}
