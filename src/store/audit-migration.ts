/**
 * Migration 0005_audit: the append-only, hash-chained audit log. The sequence is the primary
 * key, so two writers racing for the same next entry cannot both win; the indexes serve the
 * queries by time, actor and subject (a device is either).
 */
import type { Kysely, Migration } from 'kysely';

export function auditMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('audit_entries')
        .addColumn('sequence', 'bigint', (c) => c.primaryKey())
        .addColumn('time', 'bigint', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('subject', 'text')
        .addColumn('reason', 'text')
        .addColumn('details', 'text')
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_entries_time_idx').on('audit_entries').column('time').execute();
      await db.schema.createIndex('audit_entries_actor_idx').on('audit_entries').columns(['actor', 'sequence']).execute();
      await db.schema.createIndex('audit_entries_subject_idx').on('audit_entries').columns(['subject', 'sequence']).execute();
    },
  };
}
