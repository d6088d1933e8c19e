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
  DeviceProtocol,
  GatewayAuthMethod,
  GatewayConfig,
  GatewayType,
  HttpState,
  LogLevel,
  MqttState,
  NotificationConfig,
  Page,
  PageRequest,
  Registry,
  RateLimits,
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
  /** Only the limits to set; absent ones take the defaults. */
  readonly rateLimits?: Partial<RateLimits>;
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
  | 'device_auth_method'
  | 'rate_limits'
  /** One limit: `rate_limits.state_updates_per_second` and so on. */
  | `rate_limits.${string}`;

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

/**
 * `gatewayListOptions` of devices.list: a oneof (reference §3.5). Ids may be numeric ids.
 * - `gatewayType`: only gateways (GATEWAY) or only non-gateways (NON_GATEWAY);
 * - `associationsGatewayId`: the devices bound to that gateway;
 * - `associationsDeviceId`: the gateways that device is bound to.
 */
export type GatewayListOptions =
  | { readonly gatewayType: Exclude<GatewayType, 'GATEWAY_TYPE_UNSPECIFIED'> }
  | { readonly associationsGatewayId: string }
  | { readonly associationsDeviceId: string };

export interface ListDevicesRequest extends PageRequest {
  readonly deviceIds?: readonly string[];
  readonly deviceNumIds?: readonly string[];
  readonly gatewayListOptions?: GatewayListOptions;
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
  /** FAILED_PRECONDITION for a gateway that still has devices bound; a device's own bindings go with it. */
  deleteDevice(name: DeviceName): Promise<void>;

  /**
   * Binds a device to a gateway of the same registry (either may be named by numeric id).
   * The gateway must be a GATEWAY, the device must not be one; binding twice is a no-op.
   * At most LIMITS.devicesBoundPerGateway per gateway and LIMITS.gatewaysPerDevice per device
   * (RESOURCE_EXHAUSTED beyond). NOT_FOUND when either is not a device of `registry`;
   * INVALID_ARGUMENT (on `gatewayId` / `deviceId`) when the gateway is no GATEWAY or the device is one.
   */
  bindDeviceToGateway(registry: RegistryName, gatewayId: string, deviceId: string): Promise<void>;
  /** NOT_FOUND when not bound. A gateway connection that has the device attached by association loses it at once. */
  unbindDeviceFromGateway(registry: RegistryName, gatewayId: string, deviceId: string): Promise<void>;

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
  /** Present when the device is a gateway (gatewayType GATEWAY): how devices may use it. */
  readonly gateway?: { readonly authMethod: GatewayAuthMethod };
  /** The registry's rate limits, defaults filled in, as read at authentication. */
  readonly rateLimits: RateLimits;
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

/**
 * A device a gateway may act for (MQTT attach, HTTP `gatewayInfo`), admitted by the gateway's
 * `gatewayAuthMethod` (reference §1.10): by its binding to the gateway, by its own JWT, or both.
 */
export interface GatewayDelegatedDevice extends Omit<DeviceIdentity, 'gateway'> {
  readonly method: 'gateway';
  /** The gateway it was admitted through. */
  readonly gatewayKey: DeviceKey;
  /** Whether a binding admitted it: unbinding then ends the attachment. */
  readonly byAssociation: boolean;
  /** Set when its own JWT admitted it: the credential that verified the token, and the token's `exp`. */
  readonly token?: { readonly credentialFingerprint: string; readonly expiresAt: Date };
}

export type DeviceAuthResult<D extends AuthenticatedDevice | GatewayDelegatedDevice = AuthenticatedDevice> =
  | { readonly ok: true; readonly device: D }
  /**
   * `reason` is for the log only; the device learns nothing but "not authorised", unless
   * `forbidden` is set: the credential verified, so the caller is the device, but it may not come
   * in now (blocked, or its protocol switched off for the registry). A protocol that can say so
   * (HTTP 403) may tell it these words.
   */
  | { readonly ok: false; readonly reason: string; readonly forbidden?: string };

/**
 * What the device plane (MQTT now, the HTTPS bridge later) needs. Timestamps of activity
 * (`last*Time`) may be written behind, batched, as Cloud IoT Core documented them to be.
 */
export interface DeviceGateway {
  /**
   * `clientId` is the full device path (id or numeric id); `token` the device JWT. `protocol`
   * (default 'mqtt') is refused when the registry switched it off (mqttConfig, httpConfig).
   */
  authenticateJwt(clientId: string, token: string, now?: Date, protocol?: DeviceProtocol): Promise<DeviceAuthResult<JwtAuthenticatedDevice>>;
  /**
   * May the authenticated `gateway` act for the device `deviceId` (id or numeric id) of its own
   * registry? By the gateway's auth method: ASSOCIATION_ONLY needs a binding, DEVICE_AUTH_TOKEN_ONLY
   * the device's JWT in `token` (verified as on connect, same registry/protocol rules), the third
   * both; UNSPECIFIED admits nobody. The device must exist, not be blocked, not be a gateway. On
   * success records `gatewayConfig.lastAccessedGatewayId/Time` on the device (written behind).
   */
  authorizeGatewayDevice(
    gateway: AuthenticatedDevice,
    deviceId: string,
    token: string | undefined,
    protocol: DeviceProtocol,
    now?: Date,
  ): Promise<DeviceAuthResult<GatewayDelegatedDevice>>;
  /**
   * HTTP `gatewayInfo.gatewayId`: `device` authenticated with its own JWT says it relays through
   * the gateway `gatewayId` (id or numeric id) of its registry. Refused unless that is a GATEWAY
   * that is not blocked, whose auth method is not UNSPECIFIED, and, when the method needs an
   * association, the device is bound to it. Records lastAccessedGatewayId/Time on success.
   */
  checkGatewayRelay(device: AuthenticatedDevice, gatewayId: string, now?: Date): Promise<{ readonly ok: true } | { readonly ok: false; readonly reason: string }>;
  /**
   * `chain` is what the client presented in its TLS handshake, leaf first, as DER (the handshake
   * already proved possession of the leaf's key). Verifies it against the CAs of the registry
   * `clientId` names, the certificate's registration and state, and revocations; may create the
   * device when a registry CA allows just-in-time provisioning. Every refusal has a reason.
   */
  authenticateCertificate(
    clientId: string,
    chain: readonly Buffer[],
    now?: Date,
    protocol?: DeviceProtocol,
  ): Promise<DeviceAuthResult<CertificateAuthenticatedDevice>>;
  recordHeartbeat(device: DeviceKey, at: Date): void;
  recordEvent(device: DeviceKey, at: Date): void;
  /** Stores the state (10 kept; 64 KB limit is the caller's to enforce before). */
  recordState(device: DeviceKey, binaryData: Buffer, at: Date): Promise<void>;
  latestConfig(device: DeviceKey): Promise<{ readonly version: number; readonly binaryData: Buffer }>;
  recordConfigSent(device: DeviceKey, version: number, at: Date): void;
  recordConfigAck(device: DeviceKey, version: number, at: Date): Promise<void>;
  recordError(device: DeviceKey, status: Status, at: Date): void;
}

/**
 * Where device data goes once accepted, whatever protocol brought it (the broker's backend
 * namespace: backend subscribers, later routes). The HTTP bridge hands events and state here
 * after storing the state, as the broker does for MQTT.
 */
export interface DeviceMessageSink {
  /** `subfolder` is the text after `events/`, absent for the default topic. */
  publishEvent(device: AuthenticatedDevice | GatewayDelegatedDevice, payload: Buffer, subfolder?: string): void;
  publishState(device: AuthenticatedDevice | GatewayDelegatedDevice, payload: Buffer): void;
}
