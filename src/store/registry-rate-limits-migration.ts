/**
 * Migration 0010: a registry's device-plane rate limits (`rateLimits`), as JSON text holding only
 * the limits the operator set; existing registries set none and keep the defaults.
 */
import type { Kysely, Migration } from 'kysely';

export function registryRateLimitsMigration(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .alterTable('registries')
        .addColumn('rate_limits', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute();
    },
  };
}
