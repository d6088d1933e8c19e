/**
 * Schema migrations, in code so they ship inside the build and run the same on every dialect.
 * Names sort in the order they apply; never edit a released migration, add the next one.
 */
import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { DialectTraits } from './dialect.js';
import { pkiSchema } from './pki-migration.js';
import { registryTrustMigration } from './registry-trust-migration.js';
import { deviceCertificatesMigration } from './device-certificates-migration.js';
import { auditMigration } from './audit-migration.js';
import { policyMigration } from './policy-migration.js';
import { serviceAccountsMigration } from './service-accounts-migration.js';
import { serviceAccountPublicKeysMigration } from './service-account-public-keys-migration.js';
import { gatewayBindingsMigration } from './gateway-bindings-migration.js';
import { registryRateLimitsMigration } from './registry-rate-limits-migration.js';

function initialSchema(traits: DialectTraits): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('registries')
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('event_notification_configs', 'text', (c) => c.notNull())
        .addColumn('state_notification_topic', 'text')
        .addColumn('mqtt_enabled_state', 'text', (c) => c.notNull())
        .addColumn('http_enabled_state', 'text', (c) => c.notNull())
        .addColumn('log_level', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('registries_pk', ['project', 'location', 'id'])
        .execute();

      await db.schema
        .createTable('devices')
        .addColumn('num_id', 'bigint', (c) => c.primaryKey())
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('registry_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('blocked', 'integer', (c) => c.notNull())
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('log_level', 'text', (c) => c.notNull())
        .addColumn('gateway_type', 'text', (c) => c.notNull())
        .addColumn('gateway_auth_method', 'text', (c) => c.notNull())
        .addColumn('last_accessed_gateway_id', 'text')
        .addColumn('last_accessed_gateway_time', 'bigint')
        .addColumn('last_heartbeat_time', 'bigint')
        .addColumn('last_event_time', 'bigint')
        .addColumn('last_state_time', 'bigint')
        .addColumn('last_config_ack_time', 'bigint')
        .addColumn('last_config_send_time', 'bigint')
        .addColumn('last_error_time', 'bigint')
        .addColumn('last_error_code', 'integer')
        .addColumn('last_error_message', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('devices_registry_id_unique', ['project', 'location', 'registry_id', 'id'])
        // No cascade: a registry with devices cannot be deleted, even by a racing insert.
        .addForeignKeyConstraint('devices_registry_fk', ['project', 'location', 'registry_id'], 'registries', [
          'project',
          'location',
          'id',
        ])
        .execute();

      await db.schema
        .createTable('device_credentials')
        .addColumn('device_num_id', 'bigint', (c) => c.notNull())
        .addColumn('position', 'integer', (c) => c.notNull())
        .addColumn('format', 'text', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('expiration_time', 'bigint')
        .addPrimaryKeyConstraint('device_credentials_pk', ['device_num_id', 'position'])
        .addForeignKeyConstraint('device_credentials_device_fk', ['device_num_id'], 'devices', ['num_id'], (fk) =>
          fk.onDelete('cascade'),
        )
        .execute();
      await db.schema
        .createIndex('device_credentials_fingerprint_idx')
        .on('device_credentials')
        .column('fingerprint')
        .execute();

      await db.schema
        .createTable('device_configs')
        .addColumn('device_num_id', 'bigint', (c) => c.notNull())
        .addColumn('version', 'bigint', (c) => c.notNull())
        .addColumn('cloud_update_time', 'bigint', (c) => c.notNull())
        .addColumn('device_ack_time', 'bigint')
        .addColumn('binary_data', traits.bytesType, (c) => c.notNull())
        // Two writers racing for the same next version: one of them hits this key.
        .addPrimaryKeyConstraint('device_configs_pk', ['device_num_id', 'version'])
        .addForeignKeyConstraint('device_configs_device_fk', ['device_num_id'], 'devices', ['num_id'], (fk) =>
          fk.onDelete('cascade'),
        )
        .execute();

      await db.schema
        .createTable('device_states')
        .addColumn('device_num_id', 'bigint', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('update_time', 'bigint', (c) => c.notNull())
        .addColumn('binary_data', traits.bytesType, (c) => c.notNull())
        .addPrimaryKeyConstraint('device_states_pk', ['device_num_id', 'seq'])
        .addForeignKeyConstraint('device_states_device_fk', ['device_num_id'], 'devices', ['num_id'], (fk) =>
          fk.onDelete('cascade'),
        )
        .execute();

      await db.schema
        .createTable('settings')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  };
}

export function migrations(traits: DialectTraits): Record<string, Migration> {
  return {
    '0001_initial_schema': initialSchema(traits),
    '0002_pki': pkiSchema(traits),
    '0003_registry_trust': registryTrustMigration(),
    '0004_device_certificates': deviceCertificatesMigration(),
    '0005_audit': auditMigration(),
    '0006_policies': policyMigration(),
    '0007_service_accounts': serviceAccountsMigration(),
    '0008_service_account_public_keys': serviceAccountPublicKeysMigration(),
    '0009_gateway_bindings': gatewayBindingsMigration(),
    '0010_registry_rate_limits': registryRateLimitsMigration(),
  };
}

class InCodeMigrationProvider implements MigrationProvider {
  constructor(private readonly traits: DialectTraits) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.traits);
  }
}

/** Brings the schema to the latest version; throws with the failing migration's error. */
export async function migrateToLatest(db: Kysely<unknown>, traits: DialectTraits): Promise<void> {
  const migrator = new Migrator({ db, provider: new InCodeMigrationProvider(traits) });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`store migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}
