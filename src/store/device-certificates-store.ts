/**
 * Device certificates in the store: the queries behind the Store's device-certificate methods,
 * written against Kysely once (KyselyStore delegates here). A certificate row belongs to one
 * device; REVOKED is permanent, which the update enforces inside its transaction.
 */
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { DeviceName } from '../domain/names.js';
import { CERTIFICATE_STATES, type CertificateState } from '../domain/resources.js';
import type { DialectTraits } from './dialect.js';
import type { DeviceCertificatesTable } from './device-certificates-schema.js';
import { numIdParam, toDate, toNumId } from './rows.js';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/** A device certificate to store. */
export interface NewDeviceCertificate {
  /** SHA-256 (hex) of the DER. */
  readonly fingerprint: string;
  readonly issuerSpkiSha256: string;
  readonly serial: string;
  readonly subject: string;
  readonly issuer: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly pem: string;
  readonly state: CertificateState;
  readonly createdAt: Date;
}

/** A device certificate as stored. */
export interface StoredDeviceCertificate extends Omit<NewDeviceCertificate, 'createdAt'> {
  /** The owning device, by id. */
  readonly device: DeviceName;
  readonly deviceNumId: string;
  readonly createTime: Date;
  readonly updateTime: Date;
}

export type InsertDeviceCertificateResult = 'created' | 'device-not-found' | 'exists';

export type UpdateDeviceCertificateResult =
  | { readonly status: 'updated'; readonly before: StoredDeviceCertificate; readonly after: StoredDeviceCertificate }
  | { readonly status: 'not-found' }
  /** The certificate is REVOKED, which is permanent; nothing was written. */
  | { readonly status: 'revoked'; readonly current: StoredDeviceCertificate };

type Row = Selectable<DeviceCertificatesTable> & { device_id: string };

function toStored(row: Row): StoredDeviceCertificate {
  if (!(CERTIFICATE_STATES as readonly string[]).includes(row.state)) throw new Error(`store: unexpected certificate state '${row.state}'`);
  return {
    fingerprint: row.fingerprint,
    device: { project: row.project, location: row.location, registry: row.registry_id, device: row.device_id },
    deviceNumId: toNumId(row.device_num_id),
    issuerSpkiSha256: row.issuer_spki_sha256,
    serial: row.serial,
    subject: row.subject,
    issuer: row.issuer,
    notBefore: toDate(row.not_before),
    notAfter: toDate(row.not_after),
    pem: row.pem,
    state: row.state as CertificateState,
    createTime: toDate(row.created_at),
    updateTime: toDate(row.updated_at),
  };
}

const selectRows = (db: Db) =>
  db.selectFrom('device_certificates as c').innerJoin('devices as d', 'd.num_id', 'c.device_num_id').selectAll('c').select('d.id as device_id');

export async function getDeviceCertificate(db: Db, fingerprint: string): Promise<StoredDeviceCertificate | undefined> {
  const row = await selectRows(db).where('c.fingerprint', '=', fingerprint.toLowerCase()).executeTakeFirst();
  return row && toStored(row);
}

/** Oldest first. */
export async function listDeviceCertificates(db: Db, numId: string): Promise<StoredDeviceCertificate[]> {
  const key = numIdParam(numId);
  if (key === undefined) return [];
  const rows = await selectRows(db).where('c.device_num_id', '=', key).orderBy('c.created_at').orderBy('c.fingerprint').execute();
  return rows.map(toStored);
}

/**
 * Inserts certificates of a device that exists (the caller's transaction, or a new one).
 * 'exists' when any of them is registered already, to this device or another.
 */
export async function insertDeviceCertificatesIn(
  trx: Db,
  numId: number,
  certificates: readonly NewDeviceCertificate[],
): Promise<'created' | 'device-not-found' | 'exists'> {
  const device = await trx
    .selectFrom('devices')
    .select(['num_id', 'project', 'location', 'registry_id'])
    .where('num_id', '=', numId)
    .executeTakeFirst();
  if (!device) return 'device-not-found';
  for (const c of certificates) {
    const taken = await trx.selectFrom('device_certificates').select('fingerprint').where('fingerprint', '=', c.fingerprint).executeTakeFirst();
    if (taken) return 'exists';
  }
  for (const c of certificates) {
    const at = c.createdAt.getTime();
    await trx
      .insertInto('device_certificates')
      .values({
        fingerprint: c.fingerprint.toLowerCase(),
        device_num_id: numId,
        project: device.project,
        location: device.location,
        registry_id: device.registry_id,
        issuer_spki_sha256: c.issuerSpkiSha256.toLowerCase(),
        serial: c.serial,
        subject: c.subject,
        issuer: c.issuer,
        not_before: c.notBefore.getTime(),
        not_after: c.notAfter.getTime(),
        pem: c.pem,
        state: c.state,
        created_at: at,
        updated_at: at,
      })
      .execute();
  }
  return 'created';
}

export async function insertDeviceCertificate(
  db: Kysely<Database>,
  traits: DialectTraits,
  numId: string,
  certificate: NewDeviceCertificate,
): Promise<InsertDeviceCertificateResult> {
  const key = numIdParam(numId);
  if (key === undefined) return 'device-not-found';
  try {
    return await db.transaction().execute((trx) => insertDeviceCertificatesIn(trx, key, [certificate]));
  } catch (e) {
    // A concurrent registration of the same certificate, or the device deleted meanwhile.
    if (traits.isUniqueViolation(e)) return 'exists';
    if (traits.isForeignKeyViolation(e)) return 'device-not-found';
    throw e;
  }
}

export async function updateDeviceCertificateState(
  db: Kysely<Database>,
  fingerprint: string,
  state: CertificateState,
  at: Date,
): Promise<UpdateDeviceCertificateResult> {
  return db.transaction().execute(async (trx): Promise<UpdateDeviceCertificateResult> => {
    const before = await getDeviceCertificate(trx, fingerprint);
    if (!before) return { status: 'not-found' };
    if (before.state === 'REVOKED' && state !== 'REVOKED') return { status: 'revoked', current: before };
    if (before.state !== state)
      await trx
        .updateTable('device_certificates')
        .set({ state, updated_at: at.getTime() })
        .where('fingerprint', '=', before.fingerprint)
        .execute();
    const after = await getDeviceCertificate(trx, fingerprint);
    if (!after) throw new Error('store: certificate vanished inside its own transaction');
    return { status: 'updated', before, after };
  });
}

export async function deleteDeviceCertificate(db: Kysely<Database>, fingerprint: string): Promise<StoredDeviceCertificate | undefined> {
  return db.transaction().execute(async (trx) => {
    const current = await getDeviceCertificate(trx, fingerprint);
    if (!current) return undefined;
    await trx.deleteFrom('device_certificates').where('fingerprint', '=', current.fingerprint).execute();
    return current;
  });
}
