/** The ServiceAccountStore on Kysely, for every dialect. */
import type { Kysely, Selectable } from 'kysely';
import { formatScope, isRole, parseScope, type RoleBinding } from '../domain/roles.js';
import type { DialectTraits } from './dialect.js';
import { toDate } from './rows.js';
import type { Database } from './schema.js';
import type { ServiceAccountKeysTable, ServiceAccountPublicKeysTable, ServiceAccountsTable } from './service-accounts-schema.js';
import type { ApiKeyRecord, ServiceAccountPatch, ServiceAccountRecord, ServiceAccountStore, ServicePublicKeyRecord } from './service-account-store.js';

const bindingsToJson = (bindings: readonly RoleBinding[]): string =>
  JSON.stringify(bindings.map((b) => ({ role: b.role, scope: formatScope(b.scope) })));

/** Rows were written by this store: a value that does not decode means tampering, loudly. */
function bindingsFromJson(text: string): RoleBinding[] {
  const raw = JSON.parse(text) as Array<{ role: unknown; scope: unknown }>;
  return raw.map((b) => {
    if (!isRole(b.role) || typeof b.scope !== 'string') throw new Error(`store: unexpected role binding ${JSON.stringify(b)}`);
    return { role: b.role, scope: parseScope(b.scope, 'bindings') };
  });
}

function toAccount(r: Selectable<ServiceAccountsTable>): ServiceAccountRecord {
  return {
    project: r.project,
    id: r.id,
    displayName: r.display_name,
    bindings: bindingsFromJson(r.bindings),
    disabled: Number(r.disabled) !== 0,
    createdAt: toDate(r.created_at),
  };
}

function toKey(r: Selectable<ServiceAccountKeysTable>): ApiKeyRecord {
  return {
    keyId: r.key_id,
    project: r.project,
    accountId: r.account_id,
    hash: r.hash,
    createdAt: toDate(r.created_at),
    ...(r.expires_at !== null ? { expiresAt: toDate(r.expires_at) } : {}),
    ...(r.last_used_at !== null ? { lastUsedAt: toDate(r.last_used_at) } : {}),
  };
}

function toPublicKey(r: Selectable<ServiceAccountPublicKeysTable>): ServicePublicKeyRecord {
  return {
    keyId: r.key_id,
    project: r.project,
    accountId: r.account_id,
    format: r.format,
    pem: r.key_pem,
    fingerprint: r.fingerprint,
    createdAt: toDate(r.created_at),
    ...(r.expires_at !== null ? { expiresAt: toDate(r.expires_at) } : {}),
  };
}

/** The two kinds of key an account holds: API keys and service public keys. */
type KeyTable = 'service_account_keys' | 'service_account_public_keys';

export class KyselyServiceAccountStore implements ServiceAccountStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly traits: DialectTraits,
  ) {}

  async insertAccount(a: ServiceAccountRecord): Promise<'created' | 'exists'> {
    try {
      await this.db
        .insertInto('service_accounts')
        .values({
          project: a.project,
          id: a.id,
          display_name: a.displayName,
          bindings: bindingsToJson(a.bindings),
          disabled: a.disabled ? 1 : 0,
          created_at: a.createdAt.getTime(),
        })
        .execute();
      return 'created';
    } catch (e) {
      if (this.traits.isUniqueViolation(e)) return 'exists';
      throw e;
    }
  }

  async getAccount(project: string, id: string): Promise<ServiceAccountRecord | undefined> {
    const row = await this.db.selectFrom('service_accounts').selectAll().where('project', '=', project).where('id', '=', id).executeTakeFirst();
    return row && toAccount(row);
  }

  async listAccounts(project: string): Promise<ServiceAccountRecord[]> {
    const rows = await this.db.selectFrom('service_accounts').selectAll().where('project', '=', project).orderBy('id').execute();
    return rows.map(toAccount);
  }

  async updateAccount(project: string, id: string, patch: ServiceAccountPatch): Promise<ServiceAccountRecord | undefined> {
    const values = {
      ...(patch.displayName !== undefined ? { display_name: patch.displayName } : {}),
      ...(patch.bindings !== undefined ? { bindings: bindingsToJson(patch.bindings) } : {}),
      ...(patch.disabled !== undefined ? { disabled: patch.disabled ? 1 : 0 } : {}),
    };
    if (Object.keys(values).length > 0) {
      await this.db.updateTable('service_accounts').set(values).where('project', '=', project).where('id', '=', id).execute();
    }
    return this.getAccount(project, id);
  }

  async deleteAccount(project: string, id: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('service_account_keys').where('project', '=', project).where('account_id', '=', id).execute();
      await trx.deleteFrom('service_account_public_keys').where('project', '=', project).where('account_id', '=', id).execute();
      const r = await trx.deleteFrom('service_accounts').where('project', '=', project).where('id', '=', id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  async insertKey(k: ApiKeyRecord): Promise<'created' | 'no-account'> {
    try {
      await this.db
        .insertInto('service_account_keys')
        .values({
          key_id: k.keyId,
          project: k.project,
          account_id: k.accountId,
          hash: k.hash,
          created_at: k.createdAt.getTime(),
          expires_at: k.expiresAt?.getTime() ?? null,
          last_used_at: null,
        })
        .execute();
      return 'created';
    } catch (e) {
      if (this.traits.isForeignKeyViolation(e)) return 'no-account';
      throw e;
    }
  }

  /** An account's keys of one kind, oldest first (Kysely types a union of tables loosely: T names the row). */
  #keysOf<T extends KeyTable>(table: T, project: string, accountId: string) {
    return this.db
      .selectFrom(table as KeyTable)
      .selectAll()
      .where('project', '=', project)
      .where('account_id', '=', accountId)
      .orderBy('created_at')
      .orderBy('key_id')
      .execute() as Promise<Array<Selectable<Database[T]>>>;
  }

  async #deleteKeyOf(table: KeyTable, project: string, accountId: string, keyId: string): Promise<boolean> {
    const r = await this.db
      .deleteFrom(table)
      .where('project', '=', project)
      .where('account_id', '=', accountId)
      .where('key_id', '=', keyId)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async listKeys(project: string, accountId: string): Promise<ApiKeyRecord[]> {
    return (await this.#keysOf('service_account_keys', project, accountId)).map(toKey);
  }

  deleteKey(project: string, accountId: string, keyId: string): Promise<boolean> {
    return this.#deleteKeyOf('service_account_keys', project, accountId, keyId);
  }

  async findKey(keyId: string): Promise<{ key: ApiKeyRecord; account: ServiceAccountRecord } | undefined> {
    const key = await this.db.selectFrom('service_account_keys').selectAll().where('key_id', '=', keyId).executeTakeFirst();
    if (!key) return undefined;
    const account = await this.getAccount(key.project, key.account_id);
    return account && { key: toKey(key), account };
  }

  async recordKeyUse(uses: ReadonlyMap<string, Date>): Promise<void> {
    if (uses.size === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (const [keyId, at] of uses) {
        await trx.updateTable('service_account_keys').set({ last_used_at: at.getTime() }).where('key_id', '=', keyId).execute();
      }
    });
  }

  async insertPublicKey(k: ServicePublicKeyRecord, max: number): Promise<'created' | 'no-account' | 'full' | 'duplicate'> {
    return this.db.transaction().execute(async (trx) => {
      const account = await trx.selectFrom('service_accounts').select('id').where('project', '=', k.project).where('id', '=', k.accountId).executeTakeFirst();
      if (!account) return 'no-account';
      const held = await trx
        .selectFrom('service_account_public_keys')
        .select('fingerprint')
        .where('project', '=', k.project)
        .where('account_id', '=', k.accountId)
        .execute();
      if (held.some((h) => h.fingerprint === k.fingerprint)) return 'duplicate';
      if (held.length >= max) return 'full';
      await trx
        .insertInto('service_account_public_keys')
        .values({
          key_id: k.keyId,
          project: k.project,
          account_id: k.accountId,
          format: k.format,
          key_pem: k.pem,
          fingerprint: k.fingerprint,
          created_at: k.createdAt.getTime(),
          expires_at: k.expiresAt?.getTime() ?? null,
        })
        .execute();
      return 'created';
    });
  }

  async listPublicKeys(project: string, accountId: string): Promise<ServicePublicKeyRecord[]> {
    return (await this.#keysOf('service_account_public_keys', project, accountId)).map(toPublicKey);
  }

  deletePublicKey(project: string, accountId: string, keyId: string): Promise<boolean> {
    return this.#deleteKeyOf('service_account_public_keys', project, accountId, keyId);
  }
}
