/**
 * The tables as Kysely sees them. Types are chosen to mean the same in SQLite and PostgreSQL:
 * times are epoch milliseconds in `bigint` columns, flags are integers 0/1, bytes are blob/bytea,
 * structured values (metadata, notification configs) are JSON text. 64-bit columns come back as
 * numbers from better-sqlite3 and as strings from pg, so reads accept both.
 */
import type { ColumnType } from 'kysely';
import type { CertificateAuthoritiesTable, IssuedCertificatesTable } from './pki-schema.js';
import type { DeviceCertificatesTable } from './device-certificates-schema.js';
import type { AuditEntriesTable } from './audit-schema.js';
import type { PoliciesTable, PolicyAttachmentsTable, PolicyVersionsTable } from './policy-schema.js';
import type { ServiceAccountKeysTable, ServiceAccountPublicKeysTable, ServiceAccountsTable } from './service-accounts-schema.js';
import type { GatewayBindingsTable } from './gateway-bindings-schema.js';

/** A bigint column: written as a number (all our values are below 2^53), read as whatever the driver gives. */
export type Int64 = ColumnType<number | string | bigint, number | string, number | string>;
export type NullableInt64 = ColumnType<number | string | bigint | null, number | string | null, number | string | null>;
export type Bytes = ColumnType<Uint8Array, Uint8Array, Uint8Array>;

export interface RegistriesTable {
  project: string;
  location: string;
  id: string;
  /** JSON array of EventNotificationConfig. */
  event_notification_configs: string;
  state_notification_topic: string | null;
  mqtt_enabled_state: string;
  http_enabled_state: string;
  log_level: string;
  created_at: Int64;
  /** JSON array of stored registry CA credentials (rows.ts encodes them). */
  credentials: ColumnType<string, string | undefined, string>;
  device_auth_method: ColumnType<string, string | undefined, string>;
  /** JSON object of the rate limits the operator set (only those). */
  rate_limits: ColumnType<string, string | undefined, string>;
}

/** The latest CRL uploaded to a registry per issuer (its CRL number, decimal text, guards replays). */
export interface RegistryCrlsTable {
  project: string;
  location: string;
  registry_id: string;
  issuer_spki_sha256: string;
  crl_number: string | null;
  uploaded_at: Int64;
}

/** One revoked serial of an uploaded CRL; replaced with the issuer's CRL on every upload. */
export interface RegistryCrlEntriesTable {
  project: string;
  location: string;
  registry_id: string;
  issuer_spki_sha256: string;
  /** normalizeSerial() form. */
  serial: string;
  revocation_time: Int64;
  crl_number: string | null;
  uploaded_at: Int64;
}

export interface DevicesTable {
  num_id: Int64;
  project: string;
  location: string;
  registry_id: string;
  id: string;
  blocked: number;
  /** JSON object of string values. */
  metadata: string;
  log_level: string;
  gateway_type: string;
  gateway_auth_method: string;
  last_accessed_gateway_id: string | null;
  last_accessed_gateway_time: NullableInt64;
  last_heartbeat_time: NullableInt64;
  last_event_time: NullableInt64;
  last_state_time: NullableInt64;
  last_config_ack_time: NullableInt64;
  last_config_send_time: NullableInt64;
  last_error_time: NullableInt64;
  last_error_code: number | null;
  last_error_message: string | null;
  created_at: Int64;
}

export interface DeviceCredentialsTable {
  device_num_id: Int64;
  /** Order of the credential in the device's list, from 0. */
  position: number;
  format: string;
  public_key: string;
  /** SHA-256 (hex) of the key's SubjectPublicKeyInfo. */
  fingerprint: string;
  expiration_time: NullableInt64;
}

export interface DeviceConfigsTable {
  device_num_id: Int64;
  version: Int64;
  cloud_update_time: Int64;
  device_ack_time: NullableInt64;
  binary_data: Bytes;
}

export interface DeviceStatesTable {
  device_num_id: Int64;
  /** Per-device sequence: states are ordered by it, not by time, so equal timestamps keep their order. */
  seq: Int64;
  update_time: Int64;
  binary_data: Bytes;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface Database {
  registries: RegistriesTable;
  registry_crls: RegistryCrlsTable;
  registry_crl_entries: RegistryCrlEntriesTable;
  devices: DevicesTable;
  device_credentials: DeviceCredentialsTable;
  device_configs: DeviceConfigsTable;
  device_states: DeviceStatesTable;
  settings: SettingsTable;
  certificate_authorities: CertificateAuthoritiesTable;
  device_certificates: DeviceCertificatesTable;
  audit_entries: AuditEntriesTable;
  service_accounts: ServiceAccountsTable;
  service_account_keys: ServiceAccountKeysTable;
  service_account_public_keys: ServiceAccountPublicKeysTable;
  issued_certificates: IssuedCertificatesTable;
  policies: PoliciesTable;
  policy_versions: PolicyVersionsTable;
  policy_attachments: PolicyAttachmentsTable;
  gateway_bindings: GatewayBindingsTable;
}
