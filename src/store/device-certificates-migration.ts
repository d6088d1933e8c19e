/**
 * Migration 0004: device certificates (AWS IoT style). One row per certificate, keyed by the
 * SHA-256 of its DER so that a certificate belongs to exactly one device; the row goes with its
 * device (cascade, and explicitly in deleteDevice).
 */
import type { Kysely, Migration } from 'kysely';

export function deviceCertificatesMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('device_certificates')
        .addColumn('fingerprint', 'text', (c) => c.primaryKey())
        .addColumn('device_num_id', 'bigint', (c) => c.notNull())
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('registry_id', 'text', (c) => c.notNull())
        .addColumn('issuer_spki_sha256', 'text', (c) => c.notNull())
        .addColumn('serial', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('not_before', 'bigint', (c) => c.notNull())
        .addColumn('not_after', 'bigint', (c) => c.notNull())
        .addColumn('pem', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addForeignKeyConstraint('device_certificates_device_fk', ['device_num_id'], 'devices', ['num_id'], (fk) =>
          fk.onDelete('cascade'),
        )
        .execute();
      await db.schema.createIndex('device_certificates_device_idx').on('device_certificates').column('device_num_id').execute();
    },
  };
}
