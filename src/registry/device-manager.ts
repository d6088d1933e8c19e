/**
 * The device manager's contract: what the admin API, the CLI (through the API) and the device
 * plane may ask of registries and devices. Implemented by `DeviceManagerService`.
 * Every method throws KeywayError (domain/errors) for anything a caller did wrong.
 */
import type { DeviceName, LocationName, RegistryName } from '../domain/names.js';
import type {
  Device,
  DeviceConfig,
  DeviceCredential,
  DeviceAuthMethod,
  DeviceState,
  EventNotificationConfig,
  GatewayConfig,
  HttpState,
  LogLevel,
  MqttState,
  NotificationConfig,
  Page,
  PageRequest,
  Registry,
  RegistryCredential,
  Status,
} from '../domain/resources.js';
import type { DeviceKey } from '../bus/bus.js';
import type { CrlUploadResult } from './registry-crl.js';
import type { DeviceCertificate } from './device-certificates.js';

/** The writable fields of a registry; absent fields take their defaults on create. */
export interface RegistryInput {
  readonly eventNotificationConfigs?: readonly EventNotificationConfig[];
  readonly stateNotificationConfig?: NotificationConfig;
  readonly mqttEnabledState?: MqttState;
  readonly httpEnabledState?: HttpState;
  readonly logLevel?: LogLevel;
  /** CA certificates (with optional provisioning templates); `x509Details` is ignored on input. */
  readonly credentials?: readonly RegistryCredential[];
  readonly deviceAuthMethod?: DeviceAuthMethod;
}

/** Update-mask paths accepted by patchRegistry (snake_case or camelCase, as Google accepted both). */
export type RegistryMaskPath =
  | 'event_notification_configs'
  | 'state_notification_config'
  | 'mqtt_config'
  | 'mqtt_config.mqtt_enabled_state'
  | 'http_config'
  | 'http_config.http_enabled_state'
  | 'log_level'
  | 'credentials'
  | 'device_auth_method';

export interface DeviceInput {
  readonly credentials?: readonly DeviceCredential[];
  readonly blocked?: boolean;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly logLevel?: LogLevel;
  readonly gatewayConfig?: Pick<GatewayConfig, 'gatewayType' | 'gatewayAuthMethod'>;
  /** Initial config data (version 1); empty when absent. */
  readonly configData?: Buffer;
}

export type DeviceMaskPath =
  | 'credentials'
  | 'blocked'
  | 'metadata'
  | 'log_level'
  | 'gateway_config.gateway_auth_method';

export interface ListDevicesRequest extends PageRequest {
  readonly deviceIds?: readonly string[];
  readonly deviceNumIds?: readonly string[];
}

export interface DeviceManager {
  createRegistry(parent: LocationName, id: string, input: RegistryInput): Promise<Registry>;
  getRegistry(name: RegistryName): Promise<Registry>;
  listRegistries(parent: LocationName, page: PageRequest): Promise<Page<Registry>>;
  /** `updateMask` is required and non-empty; unknown paths are INVALID_ARGUMENT. */
  patchRegistry(name: RegistryName, input: RegistryInput, updateMask: readonly string[]): Promise<Registry>;
  /** FAILED_PRECONDITION while the registry still has devices. */
  deleteRegistry(name: RegistryName): Promise<void>;
  /**
   * Stores a CRL (PEM or base64 DER) signed by one of the registry's CA certificates, replacing
   * that CA's earlier one; certificates it revokes are cut off at once.
   */
  uploadRegistryCrl(name: RegistryName, crl: string): Promise<CrlUploadResult>;

  createDevice(registry: RegistryName, id: string, input: DeviceInput): Promise<Device>;
  /** `name.device` may be the id or the numeric id. */
  getDevice(name: DeviceName): Promise<Device>;
  listDevices(registry: RegistryName, request: ListDevicesRequest): Promise<Page<Device>>;
  patchDevice(name: DeviceName, input: DeviceInput, updateMask: readonly string[]): Promise<Device>;
  deleteDevice(name: DeviceName): Promise<void>;

  /** `versionToUpdate` 0 = unconditional; otherwise FAILED_PRECONDITION when it is not current. */
  modifyCloudToDeviceConfig(name: DeviceName, versionToUpdate: number, binaryData: Buffer): Promise<DeviceConfig>;
  /** FAILED_PRECONDITION when the device is not connected or not subscribed to its commands. */
  sendCommandToDevice(name: DeviceName, binaryData: Buffer, subfolder?: string): Promise<void>;
  /** Newest first; `numVersions` 0 or absent = all kept. */
  listConfigVersions(name: DeviceName, numVersions?: number): Promise<readonly DeviceConfig[]>;
  /** Newest first; `numStates` 0 or absent = all kept. */
  listStates(name: DeviceName, numStates?: number): Promise<readonly DeviceState[]>;

  /**
   * Device certificates (device-certificates.ts). `certificatePem` is the device's certificate,
   * optionally followed by the intermediates up to a registry CA; it must verify against the
   * registry's CAs now. `fingerprint` is the SHA-256 (hex) of the certificate's DER.
   */
  registerDeviceCertificate(name: DeviceName, certificatePem: string, state?: 'ACTIVE' | 'INACTIVE'): Promise<DeviceCertificate>;
  listDeviceCertificates(name: DeviceName): Promise<readonly DeviceCertificate[]>;
  getDeviceCertificate(name: DeviceName, fingerprint: string): Promise<DeviceCertificate>;
  /** `updateMask` must be `state`; ACTIVE ↔ INACTIVE, → REVOKED permanently. */
  updateDeviceCertificateState(name: DeviceName, fingerprint: string, state: string, updateMask: readonly string[]): Promise<DeviceCertificate>;
  deleteDeviceCertificate(name: DeviceName, fingerprint: string): Promise<void>;
}

interface DeviceIdentity {
  readonly key: DeviceKey;
  /** Resolved: `name.device` is the id even if the client id used the numeric id. */
  readonly name: DeviceName;
  readonly numId: string;
}

/** A device whose JWT was verified on connect. */
export interface JwtAuthenticatedDevice extends DeviceIdentity {
  readonly method: 'jwt';
  /** SHA-256 (hex) of the SPKI of the credential that verified the token. */
  readonly credentialFingerprint: string;
  /** The token's `exp`; the connection must end at this instant plus the allowed skew. */
  readonly tokenExpiresAt: Date;
}

/** A device authenticated by the client certificate of its TLS connection. */
export interface CertificateAuthenticatedDevice extends DeviceIdentity {
  readonly method: 'certificate';
  /** SHA-256 (hex) of the leaf certificate's DER: the registered certificate's id. */
  readonly certificateFingerprint: string;
  /**
   * Set when the certificate matched one of the device's `*_X509_PEM` credentials rather than a
   * registered device certificate: the SPKI fingerprint of that credential, so that replacing the
   * device's credentials ends the connection as it does for JWTs.
   */
  readonly credentialFingerprint?: string;
  /** Revocation keys (domain/certificate-keys) of every certificate of the verified chain. */
  readonly revocationKeys: readonly string[];
  /** The earliest notAfter of the chain: the connection ends then. */
  readonly notAfter: Date;
  /** True when this very connection created the device (just-in-time provisioning). */
  readonly provisioned: boolean;
}

export type AuthenticatedDevice = JwtAuthenticatedDevice | CertificateAuthenticatedDevice;

export type DeviceAuthResult<D extends AuthenticatedDevice = AuthenticatedDevice> =
  | { readonly ok: true; readonly device: D }
  /** `reason` is for the log only; the device learns nothing but "not authorised". */
  | { readonly ok: false; readonly reason: string };

/**
 * What the device plane (MQTT now, the HTTPS bridge later) needs. Timestamps of activity
 * (`last*Time`) may be written behind, batched, as Cloud IoT Core documented them to be.
 */
export interface DeviceGateway {
  /** `clientId` is the full device path (id or numeric id); `token` the device JWT. */
  authenticateJwt(clientId: string, token: string, now?: Date): Promise<DeviceAuthResult<JwtAuthenticatedDevice>>;
  /**
   * `chain` is what the client presented in its TLS handshake, leaf first, as DER (the handshake
   * already proved possession of the leaf's key). Verifies it against the CAs of the registry
   * `clientId` names, the certificate's registration and state, and revocations; may create the
   * device when a registry CA allows just-in-time provisioning. Every refusal has a reason.
   */
  authenticateCertificate(clientId: string, chain: readonly Buffer[], now?: Date): Promise<DeviceAuthResult<CertificateAuthenticatedDevice>>;
  recordHeartbeat(device: DeviceKey, at: Date): void;
  recordEvent(device: DeviceKey, at: Date): void;
  /** Stores the state (10 kept; 64 KB limit is the caller's to enforce before). */
  recordState(device: DeviceKey, binaryData: Buffer, at: Date): Promise<void>;
  latestConfig(device: DeviceKey): Promise<{ readonly version: number; readonly binaryData: Buffer }>;
  recordConfigSent(device: DeviceKey, version: number, at: Date): void;
  recordConfigAck(device: DeviceKey, version: number, at: Date): Promise<void>;
  recordError(device: DeviceKey, status: Status, at: Date): void;
}
