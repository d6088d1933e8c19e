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
}
