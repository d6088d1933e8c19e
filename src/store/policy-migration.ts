/**
 * Migration 0006_policies: device policies of a registry, their versions (documents are
 * immutable once written) and attachments to the registry, a device type (the device's `type`
 * metadata value) or one device. Everything goes with its registry; a device's attachments go
 * with the device.
 */
import type { Kysely, Migration } from 'kysely';

export function policyMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('policies')
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('registry_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('default_version', 'integer', (c) => c.notNull())
        .addColumn('latest_version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('policies_pk', ['project', 'location', 'registry_id', 'id'])
        .addForeignKeyConstraint('policies_registry_fk', ['project', 'location', 'registry_id'], 'registries', ['project', 'location', 'id'], (fk) =>
          fk.onDelete('cascade'),
        )
        .execute();

      await db.schema
        .createTable('policy_versions')
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('registry_id', 'text', (c) => c.notNull())
        .addColumn('policy_id', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('document', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('policy_versions_pk', ['project', 'location', 'registry_id', 'policy_id', 'version'])
        .addForeignKeyConstraint(
          'policy_versions_policy_fk',
          ['project', 'location', 'registry_id', 'policy_id'],
          'policies',
          ['project', 'location', 'registry_id', 'id'],
          (fk) => fk.onDelete('cascade'),
        )
        .execute();

      await db.schema
        .createTable('policy_attachments')
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('registry_id', 'text', (c) => c.notNull())
        .addColumn('policy_id', 'text', (c) => c.notNull())
        .addColumn('target_kind', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('device_num_id', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('policy_attachments_pk', ['project', 'location', 'registry_id', 'policy_id', 'target_kind', 'target'])
        .addForeignKeyConstraint(
          'policy_attachments_policy_fk',
          ['project', 'location', 'registry_id', 'policy_id'],
          'policies',
          ['project', 'location', 'registry_id', 'id'],
          (fk) => fk.onDelete('cascade'),
        )
        .addForeignKeyConstraint('policy_attachments_device_fk', ['device_num_id'], 'devices', ['num_id'], (fk) => fk.onDelete('cascade'))
        .execute();
      // The connect-time lookup: a registry's attachments by target.
      await db.schema
        .createIndex('policy_attachments_target_idx')
        .on('policy_attachments')
        .columns(['project', 'location', 'registry_id', 'target_kind', 'target'])
        .execute();
      await db.schema.createIndex('policy_attachments_device_idx').on('policy_attachments').column('device_num_id').execute();
    },
  };
}
