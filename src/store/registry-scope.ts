/** What names a registry in SQL, for the tables that hang off it (CRLs, policies, devices). */
import type { Kysely, Transaction } from 'kysely';
import type { RegistryName } from '../domain/names.js';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/** The columns that name a registry in the tables hanging off it, as a where-filter. */
export const registryColumns = (r: RegistryName) => ({ project: r.project, location: r.location, registry_id: r.registry });

/** The key of the registry's own row in `registries`, as a where-filter. */
export const registryKey = (r: RegistryName) => ({ project: r.project, location: r.location, id: r.registry });

export async function registryExists(db: Db, name: RegistryName): Promise<boolean> {
  const row = await db
    .selectFrom('registries')
    .select('id')
    .where((eb) => eb.and(registryKey(name)))
    .executeTakeFirst();
  return row !== undefined;
}

