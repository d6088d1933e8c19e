/**
 * The service-account tables (migration 0007_service_accounts), typed as in schema.ts: times are
 * epoch milliseconds in bigint columns, role bindings JSON text.
 */
import type { Int64, NullableInt64 } from './schema.js';

export interface ServiceAccountsTable {
  project: string;
  id: string;
  display_name: string;
  /** JSON `[{ role, scope }]`, scope as formatScope writes it. */
  bindings: string;
  disabled: number;
  created_at: Int64;
}

export interface ServiceAccountKeysTable {
  key_id: string;
  project: string;
  account_id: string;
  /** `sha256:{hex}` of the whole key. */
  hash: string;
  created_at: Int64;
  expires_at: NullableInt64;
  last_used_at: NullableInt64;
}

/** Migration 0008_service_account_public_keys. */
export interface ServiceAccountPublicKeysTable {
  key_id: string;
  project: string;
  account_id: string;
  /** A PublicKeyFormat (RSA_PEM, ES256_PEM, …). */
  format: string;
  key_pem: string;
  /** SHA-256 hex of the SPKI DER. */
  fingerprint: string;
  created_at: Int64;
  expires_at: NullableInt64;
}
