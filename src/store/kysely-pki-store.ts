/**
 * PkiStore on Kysely, for every dialect the Store runs on (differences in DialectTraits).
 */
import type { Kysely, Selectable } from 'kysely';
import {
  AUTHORITY_STATES,
  AUTHORITY_TYPES,
  REVOCATION_REASONS,
  type AuthorityName,
  type RevocationReason,
} from '../domain/authorities.js';
import type { LocationName } from '../domain/names.js';
import type { DialectTraits } from './dialect.js';
import type { CertificateAuthoritiesTable, IssuedCertificatesTable } from './pki-schema.js';
import type {
  CertificateFact,
  PkiStore,
  RevokeResult,
  SerialRef,
  StoredAuthority,
  StoredCertificate,
} from './pki-store.js';
import { toDate } from './rows.js';
import type { Database } from './schema.js';

type AuthorityRow = Selectable<CertificateAuthoritiesTable>;
type CertificateRow = Selectable<IssuedCertificatesTable>;

/** Bounds the IN lists of one query; revocation checks ask about a few chains at a time. */
const MAX_LOOKUP = 500;

function oneOf<T extends string>(values: readonly T[], value: string, column: string): T {
  if (!(values as readonly string[]).includes(value)) throw new Error(`store: unexpected ${column} '${value}'`);
  return value as T;
}

const reasonOf = (v: string | null): RevocationReason | undefined =>
  v === null ? undefined : oneOf(REVOCATION_REASONS, v, 'revoke_reason');

function toAuthority(row: AuthorityRow): StoredAuthority {
  const reason = reasonOf(row.revoke_reason);
  return {
    name: { project: row.project, location: row.location, authority: row.id },
    type: oneOf(AUTHORITY_TYPES, row.kind, 'kind'),
    ...(row.parent_id !== null ? { parent: row.parent_id } : {}),
    ...(row.batch !== null ? { batch: row.batch } : {}),
    certificatePem: row.certificate_pem,
    serialNumber: row.serial_number,
    derSha256: row.der_sha256,
    spkiSha256: row.spki_sha256,
    issuerSpkiSha256: row.issuer_spki_sha256,
    subject: row.subject,
    notBefore: toDate(row.not_before),
    notAfter: toDate(row.not_after),
    keyAlgorithm: row.key_algorithm,
    custodyKind: row.custody_kind,
    keyReference: row.key_reference,
    state: oneOf(AUTHORITY_STATES, row.status, 'status'),
    ...(row.revoke_time !== null ? { revokeTime: toDate(row.revoke_time) } : {}),
    ...(reason ? { revokeReason: reason } : {}),
    createTime: toDate(row.created_at),
  };
}

function toCertificate(row: CertificateRow): StoredCertificate {
  const reason = reasonOf(row.revoke_reason);
  return {
    authority: { project: row.project, location: row.location, authority: row.ca_id },
    serialNumber: row.serial_number,
    issuerSpkiSha256: row.issuer_spki_sha256,
    derSha256: row.der_sha256,
    subject: row.subject,
    ...(row.device_id !== null ? { deviceId: row.device_id } : {}),
    notBefore: toDate(row.not_before),
    notAfter: toDate(row.not_after),
    certificatePem: row.certificate_pem,
    ...(row.revoke_time !== null ? { revokeTime: toDate(row.revoke_time) } : {}),
    ...(reason ? { revokeReason: reason } : {}),
    createTime: toDate(row.created_at),
  };
}

export class KyselyPkiStore implements PkiStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly traits: DialectTraits,
  ) {}

  async insertAuthority(a: StoredAuthority): Promise<'created' | 'exists' | 'parent-not-found'> {
    try {
      return await this.db.transaction().execute(async (trx) => {
        if (a.parent !== undefined) {
          const parent = await trx
            .selectFrom('certificate_authorities')
            .select('id')
            .where('project', '=', a.name.project)
            .where('location', '=', a.name.location)
            .where('id', '=', a.parent)
            .executeTakeFirst();
          if (!parent) return 'parent-not-found';
        }
        await trx
          .insertInto('certificate_authorities')
          .values({
            project: a.name.project,
            location: a.name.location,
            id: a.name.authority,
            kind: a.type,
            parent_id: a.parent ?? null,
            batch: a.batch ?? null,
            certificate_pem: a.certificatePem,
            serial_number: a.serialNumber,
            der_sha256: a.derSha256,
            spki_sha256: a.spkiSha256,
            issuer_spki_sha256: a.issuerSpkiSha256,
            subject: a.subject,
            not_before: a.notBefore.getTime(),
            not_after: a.notAfter.getTime(),
            key_algorithm: a.keyAlgorithm,
            custody_kind: a.custodyKind,
            key_reference: a.keyReference,
            status: a.state,
            revoke_time: a.revokeTime?.getTime() ?? null,
            revoke_reason: a.revokeReason ?? null,
            next_crl_number: 1,
            created_at: a.createTime.getTime(),
          })
          .execute();
        return 'created';
      });
    } catch (e) {
      if (this.traits.isUniqueViolation(e)) return 'exists';
      if (this.traits.isForeignKeyViolation(e)) return 'parent-not-found';
      throw e;
    }
  }

  async getAuthority(name: AuthorityName): Promise<StoredAuthority | undefined> {
    const row = await this.#authorities()
      .where('project', '=', name.project)
      .where('location', '=', name.location)
      .where('id', '=', name.authority)
      .executeTakeFirst();
    return row && toAuthority(row);
  }

  async listAuthorities(parent: LocationName, limit: number): Promise<StoredAuthority[]> {
    const rows = await this.#authorities()
      .where('project', '=', parent.project)
      .where('location', '=', parent.location)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toAuthority);
  }

  async revokeAuthority(name: AuthorityName, at: Date, reason: RevocationReason): Promise<RevokeResult<StoredAuthority>> {
    return this.db.transaction().execute(async (trx) => {
      const result = await trx
        .updateTable('certificate_authorities')
        .set({ status: 'REVOKED', revoke_time: at.getTime(), revoke_reason: reason })
        .where('project', '=', name.project)
        .where('location', '=', name.location)
        .where('id', '=', name.authority)
        .where('status', '=', 'ACTIVE')
        .executeTakeFirst();
      const row = await trx
        .selectFrom('certificate_authorities')
        .selectAll()
        .where('project', '=', name.project)
        .where('location', '=', name.location)
        .where('id', '=', name.authority)
        .executeTakeFirst();
      if (!row) return { status: 'not-found' } as const;
      return { status: result.numUpdatedRows > 0n ? 'revoked' : 'already-revoked', record: toAuthority(row) } as const;
    });
  }

  async takeCrlNumber(name: AuthorityName): Promise<number | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('certificate_authorities')
        .select('next_crl_number')
        .where('project', '=', name.project)
        .where('location', '=', name.location)
        .where('id', '=', name.authority)
        .executeTakeFirst();
      if (!row) return undefined;
      const current = Number(row.next_crl_number);
      // Compare-and-set: of two racing writers, only one advances from `current`.
      const updated = await trx
        .updateTable('certificate_authorities')
        .set({ next_crl_number: current + 1 })
        .where('project', '=', name.project)
        .where('location', '=', name.location)
        .where('id', '=', name.authority)
        .where('next_crl_number', '=', current)
        .executeTakeFirst();
      if (updated.numUpdatedRows === 0n) throw new Error('store: CRL number changed concurrently');
      return current;
    });
  }

  async insertCertificate(c: StoredCertificate): Promise<'created' | 'exists' | 'authority-not-found'> {
    try {
      await this.db
        .insertInto('issued_certificates')
        .values({
          project: c.authority.project,
          location: c.authority.location,
          ca_id: c.authority.authority,
          serial_number: c.serialNumber,
          issuer_spki_sha256: c.issuerSpkiSha256,
          der_sha256: c.derSha256,
          subject: c.subject,
          device_id: c.deviceId ?? null,
          not_before: c.notBefore.getTime(),
          not_after: c.notAfter.getTime(),
          certificate_pem: c.certificatePem,
          revoke_time: c.revokeTime?.getTime() ?? null,
          revoke_reason: c.revokeReason ?? null,
          created_at: c.createTime.getTime(),
        })
        .execute();
      return 'created';
    } catch (e) {
      if (this.traits.isUniqueViolation(e)) return 'exists';
      if (this.traits.isForeignKeyViolation(e)) return 'authority-not-found';
      throw e;
    }
  }

  async getCertificate(authority: AuthorityName, serialNumber: string): Promise<StoredCertificate | undefined> {
    const row = await this.#certificatesOf(authority).where('serial_number', '=', serialNumber).executeTakeFirst();
    return row && toCertificate(row);
  }

  async revokeCertificate(
    authority: AuthorityName,
    serialNumber: string,
    at: Date,
    reason: RevocationReason,
  ): Promise<RevokeResult<StoredCertificate>> {
    return this.db.transaction().execute(async (trx) => {
      const result = await trx
        .updateTable('issued_certificates')
        .set({ revoke_time: at.getTime(), revoke_reason: reason })
        .where('project', '=', authority.project)
        .where('location', '=', authority.location)
        .where('ca_id', '=', authority.authority)
        .where('serial_number', '=', serialNumber)
        .where('revoke_time', 'is', null)
        .executeTakeFirst();
      const row = await trx
        .selectFrom('issued_certificates')
        .selectAll()
        .where('project', '=', authority.project)
        .where('location', '=', authority.location)
        .where('ca_id', '=', authority.authority)
        .where('serial_number', '=', serialNumber)
        .executeTakeFirst();
      if (!row) return { status: 'not-found' } as const;
      return { status: result.numUpdatedRows > 0n ? 'revoked' : 'already-revoked', record: toCertificate(row) } as const;
    });
  }

  async listRevokedCertificates(authority: AuthorityName): Promise<StoredCertificate[]> {
    const rows = await this.#certificatesOf(authority).where('revoke_time', 'is not', null).orderBy('serial_number').execute();
    return rows.map(toCertificate);
  }

  async findAuthoritiesByFingerprint(derSha256s: readonly string[]): Promise<StoredAuthority[]> {
    const wanted = [...new Set(derSha256s)].slice(0, MAX_LOOKUP);
    if (wanted.length === 0) return [];
    return (await this.#authorities().where('der_sha256', 'in', wanted).execute()).map(toAuthority);
  }

  async listRevokedChildren(authority: AuthorityName): Promise<StoredAuthority[]> {
    const rows = await this.#authorities()
      .where('project', '=', authority.project)
      .where('location', '=', authority.location)
      .where('parent_id', '=', authority.authority)
      .where('status', '=', 'REVOKED')
      .orderBy('id')
      .execute();
    return rows.map(toAuthority);
  }

  async lookupCertificates(derSha256s: readonly string[], serials: readonly SerialRef[]): Promise<CertificateFact[]> {
    const hashes = [...new Set(derSha256s)].slice(0, MAX_LOOKUP);
    const serialNumbers = [...new Set(serials.map((s) => s.serialNumber))].slice(0, MAX_LOOKUP);
    const wanted = new Set(serials.map((s) => `${s.issuerSpkiSha256}/${s.serialNumber}`));
    if (hashes.length === 0 && serialNumbers.length === 0) return [];
    const [issued, authorities] = await Promise.all([
      this.db
        .selectFrom('issued_certificates')
        .select(['der_sha256', 'issuer_spki_sha256', 'serial_number', 'revoke_time'])
        .where((eb) =>
          eb.or([
            ...(hashes.length ? [eb('der_sha256', 'in', hashes)] : []),
            ...(serialNumbers.length ? [eb('serial_number', 'in', serialNumbers)] : []),
          ]),
        )
        .execute(),
      this.db
        .selectFrom('certificate_authorities')
        .select(['der_sha256', 'issuer_spki_sha256', 'serial_number', 'status'])
        .where((eb) =>
          eb.or([
            ...(hashes.length ? [eb('der_sha256', 'in', hashes)] : []),
            ...(serialNumbers.length ? [eb('serial_number', 'in', serialNumbers)] : []),
          ]),
        )
        .execute(),
    ]);
    const facts: CertificateFact[] = [
      ...issued.map((r) => ({ ...r, revoked: r.revoke_time !== null })),
      ...authorities.map((r) => ({ ...r, revoked: r.status === 'REVOKED' })),
    ]
      // A serial alone is not an identity: only the (issuer, serial) pairs asked for count.
      .filter((r) => hashes.includes(r.der_sha256) || wanted.has(`${r.issuer_spki_sha256}/${r.serial_number}`))
      .map((r) => ({
        derSha256: r.der_sha256,
        issuerSpkiSha256: r.issuer_spki_sha256,
        serialNumber: r.serial_number,
        revoked: r.revoked,
      }));
    return facts;
  }

  async revokedAuthorityKeys(spkiSha256s: readonly string[]): Promise<Set<string>> {
    const keys = [...new Set(spkiSha256s)].slice(0, MAX_LOOKUP);
    if (keys.length === 0) return new Set();
    const rows = await this.db
      .selectFrom('certificate_authorities')
      .select('spki_sha256')
      .where('spki_sha256', 'in', keys)
      .where('status', '=', 'REVOKED')
      .execute();
    return new Set(rows.map((r) => r.spki_sha256));
  }

  #authorities() {
    return this.db.selectFrom('certificate_authorities').selectAll();
  }

  #certificatesOf(authority: AuthorityName) {
    return this.db
      .selectFrom('issued_certificates')
      .selectAll()
      .where('project', '=', authority.project)
      .where('location', '=', authority.location)
      .where('ca_id', '=', authority.authority);
  }
}
