/**
 * Migration 0003: what a registry trusts. Registries gain their CA credentials (JSON text: PEM,
 * output details and provisioning template) and the device authentication methods they accept;
 * CRLs uploaded to a registry are kept as one row per revoked serial plus one row per issuer
 * remembering the latest CRL number, so an older CRL cannot be replayed over a newer one.
 */
import { sql, type Kysely, type Migration } from 'kysely';

export function registryTrustMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .alterTable('registries')
        .addColumn('credentials', 'text', (c) => c.notNull().defaultTo('[]'))
        .execute();
      // Existing registries keep accepting what they accepted: JWTs (and, now, certificates).
      await db.schema
        .alterTable('registries')
        .addColumn('device_auth_method', 'text', (c) => c.notNull().defaultTo(sql.lit('JWT_OR_CERTIFICATE')))
        .execute();

      await db.schema
        .createTable('registry_crls')
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('registry_id', 'text', (c) => c.notNull())
        .addColumn('issuer_spki_sha256', 'text', (c) => c.notNull())
        // Decimal text: a CRL number may be up to 20 octets, beyond any SQL integer.
        .addColumn('crl_number', 'text')
        .addColumn('uploaded_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('registry_crls_pk', ['project', 'location', 'registry_id', 'issuer_spki_sha256'])
        .addForeignKeyConstraint('registry_crls_registry_fk', ['project', 'location', 'registry_id'], 'registries', [
          'project',
          'location',
          'id',
        ])
        .execute();

      await db.schema
        .createTable('registry_crl_entries')
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('registry_id', 'text', (c) => c.notNull())
        .addColumn('issuer_spki_sha256', 'text', (c) => c.notNull())
        /** normalizeSerial() form. */
        .addColumn('serial', 'text', (c) => c.notNull())
        .addColumn('revocation_time', 'bigint', (c) => c.notNull())
        .addColumn('crl_number', 'text')
        .addColumn('uploaded_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('registry_crl_entries_pk', [
          'project',
          'location',
          'registry_id',
          'issuer_spki_sha256',
          'serial',
        ])
        .addForeignKeyConstraint(
          'registry_crl_entries_crl_fk',
          ['project', 'location', 'registry_id', 'issuer_spki_sha256'],
          'registry_crls',
          ['project', 'location', 'registry_id', 'issuer_spki_sha256'],
        )
        .execute();
    },
  };
}
