/**
 * The audit log: producers `record()` events without waiting; one writer appends them to the
 * store in batches (every `flushIntervalMs`, or sooner once `batchSize` are queued), each batch
 * chained onto the stored head in one transaction. `verify()` walks the whole chain.
 */
import type { Logger } from 'pino';
import type { AuditEvent, AuditJson, AuditSink } from '../domain/audit-events.js';
import type { AuditQuery, AuditRow, AuditStore } from '../store/audit-store.js';
import { CHAIN_START, chainEntries, isBreak, verifyRows, type ChainBreak, type PendingEntry } from './audit-chain.js';
import { AuditQueue, type AuditQueueLimits } from './audit-queue.js';
import { canonicalJson } from './canonical-json.js';

export interface AuditLogOptions {
  readonly store: AuditStore;
  readonly logger: Logger;
  readonly now?: () => Date;
  readonly flushIntervalMs?: number;
  /** Queued entries that trigger a write before the interval is up. */
  readonly batchSize?: number;
  readonly queue?: Partial<AuditQueueLimits>;
}

/** An entry as read back: details parsed. */
export interface AuditEntry {
  readonly sequence: number;
  readonly time: Date;
  readonly kind: string;
  readonly outcome: string;
  readonly actor: string;
  readonly subject?: string;
  readonly reason?: string;
  readonly details?: unknown;
  readonly prevHash: string;
  readonly hash: string;
}

export interface VerifyResult {
  readonly ok: boolean;
  /** Entries checked before the first break (all of them when ok). */
  readonly checked: number;
  readonly firstBad?: ChainBreak & { readonly entry?: AuditEntry };
}

/** What the admin API needs of the log. */
export interface AuditReader {
  query(query: AuditQuery): Promise<AuditEntry[]>;
  verify(): Promise<VerifyResult>;
}

const FLUSH_INTERVAL_MS = 200;
const BATCH_SIZE = 500;
const VERIFY_PAGE = 1000;
/** Longest text kept in actor, subject and reason: a client id or topic is attacker-chosen. */
const MAX_TEXT = 512;

const clipText = (s: string): string => (s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s);

export function toEntry(row: AuditRow): AuditEntry {
  let details: unknown;
  try {
    details = row.details === null ? undefined : JSON.parse(row.details);
  } catch {
    details = row.details;
  }
  return {
    sequence: row.sequence,
    time: new Date(row.time),
    kind: row.kind,
    outcome: row.outcome,
    actor: row.actor,
    ...(row.subject !== null ? { subject: row.subject } : {}),
    ...(row.reason !== null ? { reason: row.reason } : {}),
    ...(details !== undefined ? { details } : {}),
    prevHash: row.prevHash,
    hash: row.hash,
  };
}

export class AuditLog implements AuditSink, AuditReader {
  readonly #store: AuditStore;
  readonly #log: Logger;
  readonly #now: () => Date;
  readonly #queue: AuditQueue;
  readonly #batchSize: number;
  readonly #timer: NodeJS.Timeout;
  #writing: Promise<void> | undefined;
  #again = false;
  #closed = false;

  constructor(o: AuditLogOptions) {
    this.#store = o.store;
    this.#log = o.logger;
    this.#now = o.now ?? (() => new Date());
    this.#queue = new AuditQueue(o.queue);
    this.#batchSize = o.batchSize ?? BATCH_SIZE;
    this.#timer = setInterval(() => void this.flush(), o.flushIntervalMs ?? FLUSH_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Entries waiting for the writer (an aggregate counts once): bounded for device-plane floods. */
  get pending(): number {
    return this.#queue.size;
  }

  /** Writes the genesis entry into an empty log, else a start entry; resolves once written. */
  async start(details: Record<string, AuditJson> = {}): Promise<void> {
    const empty = (await this.#store.head()) === undefined;
    this.record({
      kind: empty ? 'audit.genesis' : 'audit.start',
      outcome: 'ok',
      actor: 'keyway',
      reason: empty ? 'audit log created' : 'server started',
      details,
    });
    await this.flush();
  }

  record(event: AuditEvent): void {
    if (this.#closed) {
      this.#log.warn({ kind: event.kind }, 'audit event after close, not recorded');
      return;
    }
    this.#queue.push(pendingOf(event, this.#now()));
    if (this.#queue.size >= this.#batchSize) void this.flush();
  }

  /** Writes everything queued so far; one writer at a time, so appends never interleave. */
  flush(): Promise<void> {
    if (this.#writing) {
      this.#again = true;
      return this.#writing;
    }
    this.#writing = this.#drainLoop().finally(() => (this.#writing = undefined));
    return this.#writing;
  }

  async #drainLoop(): Promise<void> {
    do {
      this.#again = false;
      const batch = this.#queue.drain();
      if (batch.length === 0) continue;
      try {
        await this.#store.append((head) => chainEntries(head, batch));
      } catch (e) {
        // Kept for the next attempt; the queue's bounds still hold for the device plane.
        this.#queue.requeue(batch);
        this.#log.error({ err: (e as Error).message, entries: batch.length }, 'audit entries not written yet; retrying');
        return;
      }
    } while (this.#again || this.#queue.size >= this.#batchSize);
  }

  async query(query: AuditQuery): Promise<AuditEntry[]> {
    return (await this.#store.query(query)).map(toEntry);
  }

  async verify(): Promise<VerifyResult> {
    let cursor = CHAIN_START;
    let checked = 0;
    for (;;) {
      const rows = await this.#store.scan(cursor.sequence, VERIFY_PAGE);
      if (rows.length === 0) return { ok: true, checked };
      const result = verifyRows(cursor, rows);
      if (isBreak(result)) {
        const bad = rows.find((r) => r.sequence === result.sequence);
        return { ok: false, checked: checked + rows.findIndex((r) => r.sequence === result.sequence), firstBad: { ...result, ...(bad ? { entry: toEntry(bad) } : {}) } };
      }
      checked += rows.length;
      cursor = result;
    }
  }

  /** Stops the timer and writes what is queued. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
    this.#closed = true;
  }
}

function pendingOf(e: AuditEvent, now: Date): PendingEntry {
  return {
    time: (e.time ?? now).getTime(),
    kind: clipText(e.kind),
    outcome: e.outcome,
    actor: clipText(e.actor),
    subject: e.subject === undefined ? null : clipText(e.subject),
    reason: e.reason === undefined ? null : clipText(e.reason),
    details: e.details === undefined ? null : jsonSafe(e.details),
  };
}

/** Details as plain JSON, checked now: a value that cannot be hashed must not wedge the writer. */
function jsonSafe(details: NonNullable<AuditEvent['details']>): PendingEntry['details'] {
  try {
    return JSON.parse(canonicalJson(details)) as PendingEntry['details'];
  } catch (e) {
    return { unserializable: (e as Error).message };
  }
}
