/**
 * Migration 0009: gateway bindings (reference §1.10). One row per device bound to a gateway of
 * the same registry. A binding goes with its device (cascade, and explicitly in deleteDevice);
 * a gateway's foreign key has no cascade, so a gateway with bound devices cannot be deleted, even
 * by a delete racing a bind.
 */
import type { Kysely, Migration } from 'kysely';

export function gatewayBindingsMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('gateway_bindings')
        .addColumn('gateway_num_id', 'bigint', (c) => c.notNull())
        .addColumn('device_num_id', 'bigint', (c) => c.notNull())
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('registry_id', 'text', (c) => c.notNull())
        .addColumn('bound_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('gateway_bindings_pk', ['gateway_num_id', 'device_num_id'])
        .addForeignKeyConstraint('gateway_bindings_gateway_fk', ['gateway_num_id'], 'devices', ['num_id'])
        .addForeignKeyConstraint('gateway_bindings_device_fk', ['device_num_id'], 'devices', ['num_id'], (fk) =>
          fk.onDelete('cascade'),
        )
        .execute();
      // The gateways of a device (and the count per device) without a scan.
      await db.schema.createIndex('gateway_bindings_device_idx').on('gateway_bindings').column('device_num_id').execute();
    },
  };
}
