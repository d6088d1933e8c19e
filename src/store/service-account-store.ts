/** Where service accounts and the hashes of their API keys live. */
import type { RoleBinding } from '../domain/roles.js';

export interface ServiceAccountRecord {
  readonly project: string;
  readonly id: string;
  readonly displayName: string;
  readonly bindings: readonly RoleBinding[];
  readonly disabled: boolean;
  readonly createdAt: Date;
}

export interface ServiceAccountPatch {
  readonly displayName?: string;
  readonly bindings?: readonly RoleBinding[];
  readonly disabled?: boolean;
}

export interface ApiKeyRecord {
  readonly keyId: string;
  readonly project: string;
  readonly accountId: string;
  readonly hash: string;
  readonly createdAt: Date;
  readonly expiresAt?: Date;
  readonly lastUsedAt?: Date;
}

/** A public key the account signs its JWTs with (the private key never reaches the server). */
export interface ServicePublicKeyRecord {
  readonly keyId: string;
  readonly project: string;
  readonly accountId: string;
  /** A PublicKeyFormat: RSA_PEM, ES256_PEM or their X.509 variants. */
  readonly format: string;
  /** The PEM text as submitted (checked by identity/public-key.ts before it is stored). */
  readonly pem: string;
  /** SHA-256 hex of the SPKI DER. */
  readonly fingerprint: string;
  readonly createdAt: Date;
  readonly expiresAt?: Date;
}

export interface ServiceAccountStore {
  insertAccount(account: ServiceAccountRecord): Promise<'created' | 'exists'>;
  getAccount(project: string, id: string): Promise<ServiceAccountRecord | undefined>;
  /** Ordered by id. */
  listAccounts(project: string): Promise<ServiceAccountRecord[]>;
  updateAccount(project: string, id: string, patch: ServiceAccountPatch): Promise<ServiceAccountRecord | undefined>;
  /** The account and its keys; false when there was none. */
  deleteAccount(project: string, id: string): Promise<boolean>;

  /** 'no-account' when the account is gone. */
  insertKey(key: ApiKeyRecord): Promise<'created' | 'no-account'>;
  /** Oldest first. */
  listKeys(project: string, accountId: string): Promise<ApiKeyRecord[]>;
  deleteKey(project: string, accountId: string, keyId: string): Promise<boolean>;
  /** The key and its account, for authentication. */
  findKey(keyId: string): Promise<{ readonly key: ApiKeyRecord; readonly account: ServiceAccountRecord } | undefined>;
  /** Last-used times, written behind in batches; unknown keys are skipped. */
  recordKeyUse(uses: ReadonlyMap<string, Date>): Promise<void>;

  /**
   * Adds a public key unless the account is gone, already holds `max` keys, or holds one with the
   * same fingerprint (checked and inserted in one transaction).
   */
  insertPublicKey(key: ServicePublicKeyRecord, max: number): Promise<'created' | 'no-account' | 'full' | 'duplicate'>;
  /** Oldest first. */
  listPublicKeys(project: string, accountId: string): Promise<ServicePublicKeyRecord[]>;
  deletePublicKey(project: string, accountId: string, keyId: string): Promise<boolean>;
}
