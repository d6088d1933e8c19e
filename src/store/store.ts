/**
 * The Store: durable registries, devices, credentials, config versions, states and settings.
 * It records facts and reports outcomes as values ('not-found', 'stale', …); deciding what a
 * caller did wrong, and saying so, is the services' job. Validation happens before the store.
 */
import type { CertificateKey } from '../domain/certificate-keys.js';
import type { DeviceName, LocationName, RegistryName } from '../domain/names.js';
import type { PkiStore } from './pki-store.js';
import type { AuditStore } from './audit-store.js';
import type { PolicyStore } from './policy-store.js';
import type { ServiceAccountStore } from './service-account-store.js';
import type {
  InsertDeviceCertificateResult,
  NewDeviceCertificate,
  StoredDeviceCertificate,
  UpdateDeviceCertificateResult,
} from './device-certificates-store.js';
import type { BindingLimits, BindingSide, BindResult, GatewayBinding } from './gateway-bindings-store.js';
import type {
  Device,
  DeviceConfig,
  DeviceCredential,
  DeviceState,
  GatewayAuthMethod,
  GatewayType,
  LogLevel,
  Registry,
  Status,
} from '../domain/resources.js';

/** A credential as stored: with the SHA-256 (hex) of its SubjectPublicKeyInfo. */
export interface StoredCredential extends DeviceCredential {
  readonly fingerprint: string;
}

/**
 * What authenticating a device needs: its resolved name, numeric id, blocked flag and stored
 * credentials, without the config and state a DeviceRecord also reads.
 */
export interface DeviceCredentials {
  readonly name: DeviceName;
  readonly numId: string;
  readonly blocked: boolean;
  /** In their order on the device. */
  readonly credentials: readonly StoredCredential[];
  /** Whether it is a gateway, and how devices may use it. */
  readonly gatewayConfig: { readonly gatewayType: GatewayType; readonly gatewayAuthMethod: GatewayAuthMethod };
}

/** A device with its latest config and state, plus what the store knows of its credentials. */
export interface DeviceRecord {
  readonly device: Device;
  /** The same credentials as `device.credentials`, in the same order, with their fingerprints. */
  readonly credentials: readonly StoredCredential[];
}

/** How a caller refers to a device inside a registry: its id or its numeric id. */
export type DeviceRef = { readonly id: string } | { readonly numId: string };

export interface NewDevice {
  /** `name.device` is the device id. */
  readonly name: DeviceName;
  readonly numId: string;
  readonly credentials: readonly StoredCredential[];
  readonly blocked: boolean;
  readonly metadata: Readonly<Record<string, string>>;
  readonly logLevel: LogLevel;
  readonly gatewayType: GatewayType;
  readonly gatewayAuthMethod: GatewayAuthMethod;
  /** Data of config version 1, created with the device. */
  readonly configData: Buffer;
  readonly createdAt: Date;
  /** Device certificates registered with the device, in the same transaction (just-in-time provisioning). */
  readonly certificates?: readonly NewDeviceCertificate[];
}

/** 'certificate-taken': one of `certificates` is registered already (nothing was written). */
export type InsertDeviceResult = 'created' | 'registry-not-found' | 'id-taken' | 'num-id-taken' | 'certificate-taken';

/** Fields of a device to overwrite; absent fields are left alone. */
export interface DevicePatch {
  readonly credentials?: readonly StoredCredential[];
  readonly blocked?: boolean;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly logLevel?: LogLevel;
  readonly gatewayAuthMethod?: GatewayAuthMethod;
}

/** Fields of a registry to overwrite; absent fields are left alone, `null` clears the state topic. */
export interface RegistryPatch {
  readonly eventNotificationConfigs?: Registry['eventNotificationConfigs'];
  readonly stateNotificationConfig?: NonNullable<Registry['stateNotificationConfig']> | null;
  readonly mqttEnabledState?: Registry['mqttEnabledState'];
  readonly httpEnabledState?: Registry['httpEnabledState'];
  readonly logLevel?: Registry['logLevel'];
  readonly credentials?: Registry['credentials'];
  readonly deviceAuthMethod?: Registry['deviceAuthMethod'];
  /** Replaces every limit set; `{}` returns them all to the defaults. */
  readonly rateLimits?: NonNullable<Registry['rateLimits']>;
}

/** One revoked certificate of a CRL uploaded to a registry. */
export interface RegistryCrlEntry {
  /** Any hex form; stored normalized (normalizeSerial). */
  readonly serial: string;
  readonly revocationTime: Date;
}

export interface RegistryCrlUpload {
  /** SHA-256 (hex) of the CRL issuer's SubjectPublicKeyInfo DER. */
  readonly issuerSpkiSha256: string;
  /** The CRL's cRLNumber, when it has one. */
  readonly crlNumber: bigint | undefined;
  readonly entries: readonly RegistryCrlEntry[];
  readonly uploadedAt: Date;
}

export type ReplaceRegistryCrlResult =
  | { readonly status: 'replaced' }
  | { readonly status: 'registry-not-found' }
  /** A CRL with a higher number than this one is already stored for the issuer. */
  | { readonly status: 'stale'; readonly storedCrlNumber: bigint };

export interface ListQuery {
  /** Keyset paging: only ids sorting after this one. */
  readonly afterId?: string;
  readonly limit: number;
}

export interface ListDevicesQuery extends ListQuery {
  /** When given, only these ids (and, with `numIds`, only those also among them). */
  readonly ids?: readonly string[];
  readonly numIds?: readonly string[];
  /** Only gateways, or only devices that are not (GATEWAY_TYPE_UNSPECIFIED counts as NON_GATEWAY). */
  readonly gatewayType?: 'GATEWAY' | 'NON_GATEWAY';
  /** Only the devices bound to this gateway (numeric id). */
  readonly boundToGateway?: string;
  /** Only the gateways this device (numeric id) is bound to. */
  readonly gatewaysOfDevice?: string;
}

export interface NewConfigVersion {
  /** Insert only if this is the current version; absent = unconditional. */
  readonly ifCurrentVersion?: number;
  readonly binaryData: Buffer;
  readonly at: Date;
  /** How many versions to keep, newest first, after the insert. */
  readonly keep: number;
}

export type InsertConfigResult =
  | { readonly status: 'created'; readonly config: DeviceConfig }
  | { readonly status: 'stale'; readonly currentVersion: number }
  | { readonly status: 'not-found' };

/** Activity timestamps written behind, in batches. Only the fields present are written. */
export interface ActivityUpdate {
  /** `device` is the device id. */
  readonly device: DeviceName;
  readonly lastHeartbeatTime?: Date;
  readonly lastEventTime?: Date;
  readonly lastConfigSendTime?: Date;
  readonly lastError?: { readonly time: Date; readonly status: Status };
  /** The gateway (by id) a device last came through (gatewayConfig.lastAccessedGateway*). */
  readonly lastAccessedGateway?: { readonly id: string; readonly time: Date };
}

export interface Store {
  /** Keyway's own certificate authorities and the certificates they issued. */
  readonly pki: PkiStore;
  /** The hash-chained audit log. */
  readonly audit: AuditStore;
  /** Device policies: documents, versions, attachments. */
  readonly policies: PolicyStore;
  /** Service accounts and their API keys' hashes. */
  readonly accounts: ServiceAccountStore;

  insertRegistry(registry: Registry, createdAt: Date): Promise<'created' | 'exists'>;
  getRegistry(name: RegistryName): Promise<Registry | undefined>;
  /** Ordered by id. */
  listRegistries(parent: LocationName, query: ListQuery): Promise<Registry[]>;
  updateRegistry(name: RegistryName, patch: RegistryPatch): Promise<Registry | undefined>;
  /** Refused with 'not-empty' while any device remains, atomically with respect to device inserts. */
  deleteRegistry(name: RegistryName): Promise<'deleted' | 'not-found' | 'not-empty'>;

  /**
   * Replaces the registry's revoked serials of that issuer with the CRL's, in one transaction;
   * 'stale' (nothing written) when the stored CRL of the issuer has a higher CRL number.
   */
  replaceRegistryCrl(registry: RegistryName, crl: RegistryCrlUpload): Promise<ReplaceRegistryCrlResult>;
  /** Those of `keys` an uploaded CRL of the registry revokes; only `serial:` keys can match. */
  revokedInRegistry(registry: RegistryName, keys: readonly CertificateKey[]): Promise<Set<CertificateKey>>;

  /** The device, its credentials and config version 1, in one transaction. */
  insertDevice(device: NewDevice): Promise<InsertDeviceResult>;
  findDevice(registry: RegistryName, ref: DeviceRef): Promise<DeviceRecord | undefined>;
  /** findDevice's device name, numeric id, blocked flag and credentials only: for every CONNECT. */
  findDeviceCredentials(registry: RegistryName, ref: DeviceRef): Promise<DeviceCredentials | undefined>;
  /** Ordered by id. */
  listDevices(registry: RegistryName, query: ListDevicesQuery): Promise<DeviceRecord[]>;
  /** Both sides of the change, read and written in one transaction; undefined when the device is gone. */
  updateDevice(
    numId: string,
    patch: DevicePatch,
  ): Promise<{ readonly before: DeviceRecord; readonly after: DeviceRecord } | undefined>;
  /**
   * The deleted device, or undefined when there was none. Its configs, states, credentials and
   * bindings go with it. 'has-bound-devices' (nothing deleted): it is a gateway with devices bound.
   */
  deleteDevice(numId: string): Promise<DeviceRecord | 'has-bound-devices' | undefined>;

  /** Both ends must be devices of `registry`; see BindResult. Checks and insert in one transaction. */
  bindDeviceToGateway(
    registry: RegistryName,
    gatewayNumId: string,
    deviceNumId: string,
    at: Date,
    limits: BindingLimits,
  ): Promise<BindResult>;
  /** False when the device was not bound to the gateway. */
  unbindDeviceFromGateway(registry: RegistryName, gatewayNumId: string, deviceNumId: string): Promise<boolean>;
  isBoundToGateway(gatewayNumId: string, deviceNumId: string): Promise<boolean>;
  /** The devices bound to a gateway, or the gateways a device is bound to, by the other end's id. */
  listGatewayBindings(side: BindingSide): Promise<GatewayBinding[]>;
  countGatewayBindings(side: BindingSide): Promise<number>;

  /** Check-and-insert in one transaction; trims to `keep` versions. */
  insertConfigVersion(numId: string, version: NewConfigVersion): Promise<InsertConfigResult>;
  /** Newest first; all kept versions when `limit` is absent. */
  listConfigVersions(numId: string, limit?: number): Promise<DeviceConfig[]>;
  latestConfig(device: DeviceName): Promise<DeviceConfig | undefined>;
  /** Sets the version's deviceAckTime (when still kept) and the device's lastConfigAckTime; false when no such device. */
  ackConfig(device: DeviceName, version: number, at: Date): Promise<boolean>;

  /** Stores a state and the device's lastStateTime, trims to `keep`; false when no such device. */
  insertState(device: DeviceName, binaryData: Buffer, at: Date, keep: number): Promise<boolean>;
  /** Newest first; all kept states when `limit` is absent. */
  listStates(numId: string, limit?: number): Promise<DeviceState[]>;

  /** Writes a batch of activity timestamps in one transaction; updates of unknown devices are dropped. */
  recordActivity(updates: readonly ActivityUpdate[]): Promise<void>;

  getSetting(key: string): Promise<string | undefined>;
  putSetting(key: string, value: string): Promise<void>;

  /** A certificate belongs to one device: 'exists' when its fingerprint is registered anywhere. */
  insertDeviceCertificate(numId: string, certificate: NewDeviceCertificate): Promise<InsertDeviceCertificateResult>;
  getDeviceCertificate(fingerprint: string): Promise<StoredDeviceCertificate | undefined>;
  /** Oldest first. */
  listDeviceCertificates(numId: string): Promise<StoredDeviceCertificate[]>;
  /** Read and written in one transaction; REVOKED is never left ('revoked', nothing written). */
  updateDeviceCertificateState(fingerprint: string, state: StoredDeviceCertificate['state'], at: Date): Promise<UpdateDeviceCertificateResult>;
  /** The deleted certificate, or undefined when there was none. */
  deleteDeviceCertificate(fingerprint: string): Promise<StoredDeviceCertificate | undefined>;

  close(): Promise<void>;
}
