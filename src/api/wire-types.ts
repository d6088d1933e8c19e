/**
 * The admin API's resources as they travel (proto3 JSON, reference §3.1/§3.3): lowerCamelCase,
 * 64-bit integers as decimal strings, bytes as base64, times as RFC 3339, enums by name, fields
 * at their default value omitted. Shared by the server's converters and the client.
 */
import type {
  DeviceAuthMethod,
  GatewayAuthMethod,
  GatewayType,
  HttpState,
  LogLevel,
  MqttState,
  PublicKeyFormat,
  RateLimits,
} from '../domain/resources.js';

export interface ApiEventNotificationConfig {
  readonly pubsubTopicName: string;
  readonly subfolderMatches?: string;
}

export interface ApiStateNotificationConfig {
  readonly pubsubTopicName: string;
}

export interface ApiX509CertificateDetails {
  readonly issuer: string;
  readonly subject: string;
  /** RFC 3339. */
  readonly startTime: string;
  readonly expiryTime: string;
  readonly signatureAlgorithm: string;
  readonly publicKeyType: string;
}

/** Keyway's extension of RegistryCredential: just-in-time provisioning. */
export interface ApiProvisioningTemplate {
  /** e.g. `${CommonName}` or `sensor-${SerialNumber}`. */
  readonly deviceId: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** base64: data of config version 1. */
  readonly configData?: string;
  readonly gatewayType?: GatewayType;
}

export interface ApiRegistryCredential {
  readonly publicKeyCertificate: {
    readonly format: 'X509_CERTIFICATE_PEM';
    readonly certificate: string;
    /** Output only. */
    readonly x509Details?: ApiX509CertificateDetails;
  };
  readonly provisioningTemplate?: ApiProvisioningTemplate;
}

/** `…/registries/{r}:uploadCrl` (Keyway's extension). */
export interface ApiUploadCrlRequest {
  /** PEM ("BEGIN X509 CRL") or base64 DER. */
  readonly crl: string;
}

export interface ApiUploadCrlResponse {
  readonly issuer: string;
  /** Decimal; absent when the CRL has no CRL number. */
  readonly crlNumber?: string;
  readonly revokedCount: number;
  readonly thisUpdate: string;
  readonly nextUpdate?: string;
}

export interface ApiDeviceRegistry {
  readonly id: string;
  readonly name: string;
  readonly eventNotificationConfigs?: readonly ApiEventNotificationConfig[];
  readonly stateNotificationConfig?: ApiStateNotificationConfig;
  readonly mqttConfig?: { readonly mqttEnabledState?: MqttState };
  readonly httpConfig?: { readonly httpEnabledState?: HttpState };
  readonly logLevel?: LogLevel;
  readonly credentials?: readonly ApiRegistryCredential[];
  /** Keyway's extension; JWT_OR_CERTIFICATE when absent. */
  readonly deviceAuthMethod?: DeviceAuthMethod;
  /** Keyway's extension: the limits set; absent ones take the defaults. */
  readonly rateLimits?: Partial<RateLimits>;
}

/** What a caller may send to create or patch a registry (`id` only on create). */
export type ApiDeviceRegistryInput = Partial<Omit<ApiDeviceRegistry, 'name'>>;

export interface ApiPublicKeyCredential {
  readonly format: PublicKeyFormat;
  readonly key: string;
}

export interface ApiDeviceCredential {
  readonly publicKey: ApiPublicKeyCredential;
  /** RFC 3339. */
  readonly expirationTime?: string;
}

export interface ApiDeviceConfig {
  /** int64 as a string. */
  readonly version: string;
  readonly cloudUpdateTime?: string;
  readonly deviceAckTime?: string;
  /** base64. */
  readonly binaryData?: string;
}

export interface ApiDeviceState {
  readonly updateTime: string;
  readonly binaryData?: string;
}

export interface ApiGatewayConfig {
  readonly gatewayType?: GatewayType;
  readonly gatewayAuthMethod?: GatewayAuthMethod;
  readonly lastAccessedGatewayId?: string;
  readonly lastAccessedGatewayTime?: string;
}

/** bindDeviceToGateway / unbindDeviceFromGateway: either id may be a numeric id. */
export interface ApiBindDeviceToGatewayRequest {
  readonly gatewayId: string;
  readonly deviceId: string;
}

export interface ApiStatus {
  readonly code?: number;
  readonly message?: string;
}

export interface ApiDevice {
  readonly id: string;
  /** Ends in the numeric id (reference §3.2). */
  readonly name: string;
  readonly numId: string;
  readonly credentials?: readonly ApiDeviceCredential[];
  readonly lastHeartbeatTime?: string;
  readonly lastEventTime?: string;
  readonly lastStateTime?: string;
  readonly lastConfigAckTime?: string;
  readonly lastConfigSendTime?: string;
  readonly blocked?: boolean;
  readonly lastErrorTime?: string;
  readonly lastErrorStatus?: ApiStatus;
  readonly config?: ApiDeviceConfig;
  readonly state?: ApiDeviceState;
  readonly logLevel?: LogLevel;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly gatewayConfig?: ApiGatewayConfig;
}

/** What a caller may send to create or patch a device; output-only fields are ignored. */
export interface ApiDeviceInput {
  readonly id?: string;
  readonly credentials?: readonly ApiDeviceCredential[];
  readonly blocked?: boolean;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly logLevel?: LogLevel;
  readonly gatewayConfig?: Pick<ApiGatewayConfig, 'gatewayType' | 'gatewayAuthMethod'>;
  /** On create only: the initial config (version must be 0 or absent). */
  readonly config?: { readonly version?: string | number; readonly binaryData?: string };
}

export interface ApiListDeviceRegistriesResponse {
  readonly deviceRegistries?: readonly ApiDeviceRegistry[];
  readonly nextPageToken?: string;
}

export interface ApiListDevicesResponse {
  readonly devices?: readonly ApiDevice[];
  readonly nextPageToken?: string;
}

export interface ApiListDeviceConfigVersionsResponse {
  readonly deviceConfigs?: readonly ApiDeviceConfig[];
}

export interface ApiListDeviceStatesResponse {
  readonly deviceStates?: readonly ApiDeviceState[];
}

/** A device certificate (Keyway's extension, AWS IoT style): `…/devices/{d}/certificates/{fingerprint}`. */
export interface ApiDeviceCertificate {
  readonly name: string;
  /** SHA-256 (hex) of the certificate's DER. */
  readonly fingerprint: string;
  readonly state: 'ACTIVE' | 'INACTIVE' | 'REVOKED' | 'PENDING_ACTIVATION';
  readonly certificatePem: string;
  readonly subject: string;
  readonly issuer: string;
  readonly serialNumber: string;
  readonly startTime: string;
  readonly expiryTime: string;
  readonly createTime: string;
  readonly updateTime: string;
}

export interface ApiRegisterDeviceCertificateRequest {
  /** The device's certificate, optionally followed by intermediates up to a registry CA. */
  readonly certificatePem: string;
  /** ACTIVE when absent. */
  readonly state?: 'ACTIVE' | 'INACTIVE';
}

export interface ApiListDeviceCertificatesResponse {
  readonly deviceCertificates?: readonly ApiDeviceCertificate[];
}

/** The google.rpc error envelope (reference §3.8), as the device bridge answers it too. */
export type { ErrorEnvelope as ApiErrorEnvelope } from '../domain/error-envelope.js';
