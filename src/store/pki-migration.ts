/**
 * Migration 0002_pki: Keyway's certificate authorities and the certificates they issued. Column
 * types follow 0001 so that they mean the same on SQLite and PostgreSQL.
 */
import type { Kysely, Migration } from 'kysely';
import type { DialectTraits } from './dialect.js';

export function pkiSchema(_traits: DialectTraits): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('certificate_authorities')
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('parent_id', 'text')
        .addColumn('batch', 'text')
        .addColumn('certificate_pem', 'text', (c) => c.notNull())
        .addColumn('serial_number', 'text', (c) => c.notNull())
        .addColumn('der_sha256', 'text', (c) => c.notNull())
        .addColumn('spki_sha256', 'text', (c) => c.notNull())
        .addColumn('issuer_spki_sha256', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('not_before', 'bigint', (c) => c.notNull())
        .addColumn('not_after', 'bigint', (c) => c.notNull())
        .addColumn('key_algorithm', 'text', (c) => c.notNull())
        .addColumn('custody_kind', 'text', (c) => c.notNull())
        .addColumn('key_reference', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('revoke_time', 'bigint')
        .addColumn('revoke_reason', 'text')
        .addColumn('next_crl_number', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('certificate_authorities_pk', ['project', 'location', 'id'])
        // No cascade: a CA that issued intermediates stays as long as they do.
        .addForeignKeyConstraint(
          'certificate_authorities_parent_fk',
          ['project', 'location', 'parent_id'],
          'certificate_authorities',
          ['project', 'location', 'id'],
        )
        .execute();
      await db.schema
        .createIndex('certificate_authorities_spki_idx')
        .on('certificate_authorities')
        .column('spki_sha256')
        .execute();
      await db.schema
        .createIndex('certificate_authorities_der_idx')
        .on('certificate_authorities')
        .column('der_sha256')
        .execute();

      await db.schema
        .createTable('issued_certificates')
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('ca_id', 'text', (c) => c.notNull())
        .addColumn('serial_number', 'text', (c) => c.notNull())
        .addColumn('issuer_spki_sha256', 'text', (c) => c.notNull())
        .addColumn('der_sha256', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text')
        .addColumn('not_before', 'bigint', (c) => c.notNull())
        .addColumn('not_after', 'bigint', (c) => c.notNull())
        .addColumn('certificate_pem', 'text', (c) => c.notNull())
        .addColumn('revoke_time', 'bigint')
        .addColumn('revoke_reason', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('issued_certificates_pk', ['project', 'location', 'ca_id', 'serial_number'])
        .addForeignKeyConstraint('issued_certificates_ca_fk', ['project', 'location', 'ca_id'], 'certificate_authorities', [
          'project',
          'location',
          'id',
        ])
        .execute();
      // Revocation checks look certificates up by (issuer key, serial), as CRLs name them, and by DER hash.
      await db.schema
        .createIndex('issued_certificates_issuer_serial_idx')
        .on('issued_certificates')
        .columns(['issuer_spki_sha256', 'serial_number'])
        .execute();
      await db.schema
        .createIndex('issued_certificates_der_idx')
        .on('issued_certificates')
        .column('der_sha256')
        .execute();
    },
  };
}
