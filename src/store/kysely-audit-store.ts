/** The AuditStore on Kysely, for every dialect. */
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { AuditEntriesTable } from './audit-schema.js';
import type { AuditHead, AuditQuery, AuditRow, AuditStore } from './audit-store.js';
import { toMillis } from './rows.js';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/** Rows per insert: 10 parameters each, far below SQLite's 32766-parameter cap. */
const INSERT_BATCH = 500;

function toRow(r: Selectable<AuditEntriesTable>): AuditRow {
  return {
    sequence: toMillis(r.sequence),
    time: toMillis(r.time),
    kind: r.kind,
    outcome: r.outcome,
    actor: r.actor,
    subject: r.subject,
    reason: r.reason,
    details: r.details,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

async function headOf(db: Db): Promise<AuditHead | undefined> {
  const row = await db.selectFrom('audit_entries').select(['sequence', 'hash']).orderBy('sequence', 'desc').limit(1).executeTakeFirst();
  return row && { sequence: toMillis(row.sequence), hash: row.hash };
}

export class KyselyAuditStore implements AuditStore {
  constructor(private readonly db: Kysely<Database>) {}

  append(build: (head: AuditHead | undefined) => readonly AuditRow[]): Promise<readonly AuditRow[]> {
    return this.db.transaction().execute(async (trx) => {
      const rows = build(await headOf(trx));
      for (let i = 0; i < rows.length; i += INSERT_BATCH) {
        await trx
          .insertInto('audit_entries')
          .values(
            rows.slice(i, i + INSERT_BATCH).map((r) => ({
              sequence: r.sequence,
              time: r.time,
              kind: r.kind,
              outcome: r.outcome,
              actor: r.actor,
              subject: r.subject,
              reason: r.reason,
              details: r.details,
              prev_hash: r.prevHash,
              hash: r.hash,
            })),
          )
          .execute();
      }
      return rows;
    });
  }

  head(): Promise<AuditHead | undefined> {
    return headOf(this.db);
  }

  async query(q: AuditQuery): Promise<AuditRow[]> {
    let sql = this.db.selectFrom('audit_entries').selectAll();
    if (q.afterSequence !== undefined) sql = sql.where('sequence', '>', q.afterSequence);
    if (q.start !== undefined) sql = sql.where('time', '>=', q.start);
    if (q.end !== undefined) sql = sql.where('time', '<', q.end);
    if (q.actor !== undefined) sql = sql.where('actor', '=', q.actor);
    if (q.outcome !== undefined) sql = sql.where('outcome', '=', q.outcome);
    if (q.kind !== undefined) sql = sql.where('kind', '=', q.kind);
    const party = q.party;
    if (party !== undefined) sql = sql.where((eb) => eb.or([eb('actor', '=', party), eb('subject', '=', party)]));
    const rows = await sql.orderBy('sequence').limit(q.limit).execute();
    return rows.map(toRow);
  }

  async scan(afterSequence: number, limit: number): Promise<AuditRow[]> {
    const rows = await this.db
      .selectFrom('audit_entries')
      .selectAll()
      .where('sequence', '>', afterSequence)
      .orderBy('sequence')
      .limit(limit)
      .execute();
    return rows.map(toRow);
  }
}
