/**
 * Migration 0008_service_account_public_keys: public keys a service account signs its JWTs with
 * (at most 3 per account, enforced by the service). A key belongs to one account and goes with it.
 */
import type { Kysely, Migration } from 'kysely';

export function serviceAccountPublicKeysMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('service_account_public_keys')
        .addColumn('key_id', 'text', (c) => c.primaryKey())
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('account_id', 'text', (c) => c.notNull())
        .addColumn('format', 'text', (c) => c.notNull())
        .addColumn('key_pem', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addForeignKeyConstraint('service_account_public_keys_account_fk', ['project', 'account_id'], 'service_accounts', ['project', 'id'], (fk) =>
          fk.onDelete('cascade'),
        )
        .execute();
      await db.schema
        .createIndex('service_account_public_keys_account_idx')
        .on('service_account_public_keys')
        .columns(['project', 'account_id'])
        .execute();
    },
  };
}
