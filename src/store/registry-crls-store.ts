/**
 * CRLs uploaded to a registry: the queries behind the Store's registry-CRL methods, written
 * against Kysely once (KyselyStore delegates here). Only revoked serials are kept, per issuer.
 */
import type { Kysely, Transaction } from 'kysely';
import { normalizeSerial, type CertificateKey } from '../domain/certificate-keys.js';
import type { RegistryName } from '../domain/names.js';
import type { DialectTraits } from './dialect.js';
import type { Database } from './schema.js';
import { registryColumns, registryExists } from './registry-scope.js';
import type { RegistryCrlUpload, ReplaceRegistryCrlResult } from './store.js';

type Db = Kysely<Database> | Transaction<Database>;

/** Rows per insert of CRL entries: 9 parameters each, far below SQLite's 32766-parameter cap. */
const CRL_INSERT_BATCH = 500;

/** Inside the caller's transaction (registry deletion): removes every CRL of the registry. */
export async function deleteRegistryCrlsIn(trx: Db, registry: RegistryName): Promise<void> {
  for (const table of ['registry_crl_entries', 'registry_crls'] as const)
    await trx.deleteFrom(table).where((eb) => eb.and(registryColumns(registry))).execute();
}

export async function replaceRegistryCrl(
  db: Kysely<Database>,
  traits: DialectTraits,
  registry: RegistryName,
  crl: RegistryCrlUpload,
): Promise<ReplaceRegistryCrlResult> {
  const issuer = crl.issuerSpkiSha256.toLowerCase();
  const crlNumber = crl.crlNumber === undefined ? null : crl.crlNumber.toString();
  const uploadedAt = crl.uploadedAt.getTime();
  // Duplicate serials in one CRL collapse to one row (the primary key would refuse them).
  const entries = new Map(crl.entries.map((e) => [normalizeSerial(e.serial), e.revocationTime.getTime()]));
  const key = { ...registryColumns(registry), issuer_spki_sha256: issuer };
  try {
    return await db.transaction().execute(async (trx): Promise<ReplaceRegistryCrlResult> => {
      if (!(await registryExists(trx, registry))) return { status: 'registry-not-found' };
      const stored = await trx
        .selectFrom('registry_crls')
        .select('crl_number')
        .where((eb) => eb.and(key))
        .executeTakeFirst();
      if (stored?.crl_number != null && crl.crlNumber !== undefined && BigInt(stored.crl_number) > crl.crlNumber)
        return { status: 'stale', storedCrlNumber: BigInt(stored.crl_number) };
      for (const table of ['registry_crl_entries', 'registry_crls'] as const)
        await trx.deleteFrom(table).where((eb) => eb.and(key)).execute();
      await trx.insertInto('registry_crls').values({ ...key, crl_number: crlNumber, uploaded_at: uploadedAt }).execute();
      const rows = [...entries].map(([serial, revokedAt]) => ({
        ...key,
        serial,
        revocation_time: revokedAt,
        crl_number: crlNumber,
        uploaded_at: uploadedAt,
      }));
      // Bounded batches: SQLite caps the number of bound parameters per statement.
      for (let i = 0; i < rows.length; i += CRL_INSERT_BATCH)
        await trx.insertInto('registry_crl_entries').values(rows.slice(i, i + CRL_INSERT_BATCH)).execute();
      return { status: 'replaced' };
    });
  } catch (e) {
    if (traits.isForeignKeyViolation(e)) return { status: 'registry-not-found' };
    throw e;
  }
}

export async function revokedInRegistry(
  db: Db,
  registry: RegistryName,
  keys: readonly CertificateKey[],
): Promise<Set<CertificateKey>> {
  const wanted = new Map<string, CertificateKey>();
  for (const key of keys) {
    const m = /^serial:([0-9a-f]+)\/([0-9a-f]+)$/.exec(key);
    if (m) wanted.set(`${m[1]}/${m[2]}`, key);
  }
  const revoked = new Set<CertificateKey>();
  if (wanted.size === 0) return revoked;
  const serials = [...new Set([...wanted.keys()].map((k) => k.slice(k.indexOf('/') + 1)))];
  const rows = await db
    .selectFrom('registry_crl_entries')
    .select(['issuer_spki_sha256', 'serial'])
    .where((eb) => eb.and(registryColumns(registry)))
    .where('serial', 'in', serials)
    .execute();
  for (const row of rows) {
    const key = wanted.get(`${row.issuer_spki_sha256}/${row.serial}`);
    if (key !== undefined) revoked.add(key);
  }
  return revoked;
}
