/**
 * Migration 0007_service_accounts: service identities for backends and operators, and their API
 * keys (hashes only). A key belongs to one account and goes with it.
 */
import type { Kysely, Migration } from 'kysely';

export function serviceAccountsMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('service_accounts')
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('bindings', 'text', (c) => c.notNull())
        .addColumn('disabled', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('service_accounts_pk', ['project', 'id'])
        .execute();
      await db.schema
        .createTable('service_account_keys')
        .addColumn('key_id', 'text', (c) => c.primaryKey())
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('account_id', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addColumn('last_used_at', 'bigint')
        .addForeignKeyConstraint('service_account_keys_account_fk', ['project', 'account_id'], 'service_accounts', ['project', 'id'], (fk) =>
          fk.onDelete('cascade'),
        )
        .execute();
      await db.schema
        .createIndex('service_account_keys_account_idx')
        .on('service_account_keys')
        .columns(['project', 'account_id'])
        .execute();
    },
  };
}
