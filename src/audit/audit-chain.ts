/**
 * The hash chain: each entry's hash is SHA-256 over the canonical JSON of the entry without its
 * hash, which includes its sequence and the previous entry's hash. Changing an entry changes its
 * hash; removing or reordering entries breaks the sequence or the prevHash links.
 */
import { createHash } from 'node:crypto';
import type { AuditJson } from '../domain/audit-events.js';
import type { AuditHead, AuditRow } from '../store/audit-store.js';
import { canonicalJson } from './canonical-json.js';

/** The prevHash of the first entry. */
export const GENESIS_PREV_HASH = '0'.repeat(64);

/** An entry before it is chained: what the log decided to write. */
export interface PendingEntry {
  readonly time: number;
  readonly kind: string;
  readonly outcome: string;
  readonly actor: string;
  readonly subject: string | null;
  readonly reason: string | null;
  readonly details: { readonly [key: string]: AuditJson | undefined } | null;
}

/** What is hashed: everything but the hash, details as parsed JSON. */
export function entryHash(e: Omit<AuditRow, 'hash' | 'details'> & { readonly details: unknown }): string {
  return hashOf(e, e.details === undefined ? undefined : canonicalJson(e.details));
}

/**
 * SHA-256 over canonicalJson({sequence, time, kind, outcome, actor, subject, reason, details,
 * prevHash}), written out directly: the members in canonical (sorted) order, the details as their
 * canonical text, which chaining has at hand already (so it is neither parsed nor walked again).
 */
function hashOf(e: Omit<AuditRow, 'hash' | 'details'>, detailsText: string | undefined): string {
  if (!Number.isFinite(e.sequence) || !Number.isFinite(e.time)) throw new TypeError('canonical JSON has no NaN or Infinity');
  // canonicalJson leaves undefined members out; the types allow none but a row read back may.
  const m = (key: string, json: string | undefined): string => (json === undefined ? '' : `,"${key}":${json}`);
  const text = `{${(
    m('actor', JSON.stringify(e.actor)) +
    m('details', detailsText) +
    m('kind', JSON.stringify(e.kind)) +
    m('outcome', JSON.stringify(e.outcome)) +
    m('prevHash', JSON.stringify(e.prevHash)) +
    m('reason', JSON.stringify(e.reason)) +
    m('sequence', JSON.stringify(e.sequence)) +
    m('subject', JSON.stringify(e.subject)) +
    m('time', JSON.stringify(e.time))
  ).slice(1)}}`;
  return createHash('sha256').update(text).digest('hex');
}

/** Chains `entries` onto `head`. Details are stored as the canonical JSON that was hashed. */
export function chainEntries(head: AuditHead | undefined, entries: readonly PendingEntry[]): AuditRow[] {
  let sequence = head?.sequence ?? 0;
  let prevHash = head?.hash ?? GENESIS_PREV_HASH;
  return entries.map((e) => {
    sequence += 1;
    // The canonical text is what is stored and hashed: a reader parsing the column and
    // canonicalizing it again gets the same text (keys sorted, numbers and strings as JSON writes them).
    const detailsText = e.details === null ? null : canonicalJson(e.details);
    const hash = hashOf({ ...e, sequence, prevHash }, detailsText ?? 'null');
    const row: AuditRow = { ...e, sequence, prevHash, hash, details: detailsText };
    prevHash = hash;
    return row;
  });
}

export type ChainBreak =
  | { readonly problem: 'hash'; readonly sequence: number; readonly message: string }
  | { readonly problem: 'prev-hash'; readonly sequence: number; readonly message: string }
  | { readonly problem: 'gap'; readonly sequence: number; readonly message: string }
  | { readonly problem: 'unreadable'; readonly sequence: number; readonly message: string };

/** Where a verification walk stands between batches. */
export interface ChainCursor {
  readonly sequence: number;
  readonly hash: string;
}

export const CHAIN_START: ChainCursor = { sequence: 0, hash: GENESIS_PREV_HASH };

/** Checks `rows` (in sequence order) following `cursor`; the first break, or the new cursor. */
export function verifyRows(cursor: ChainCursor, rows: readonly AuditRow[]): ChainBreak | ChainCursor {
  let at = cursor;
  for (const row of rows) {
    if (row.sequence !== at.sequence + 1) {
      return {
        problem: 'gap',
        sequence: row.sequence,
        message: `entry ${row.sequence} follows entry ${at.sequence}: entries ${at.sequence + 1}…${row.sequence - 1} are missing`,
      };
    }
    if (row.prevHash !== at.hash) {
      return { problem: 'prev-hash', sequence: row.sequence, message: `entry ${row.sequence} does not chain on entry ${at.sequence} (prevHash differs)` };
    }
    let details: unknown;
    try {
      details = row.details === null ? null : JSON.parse(row.details);
    } catch {
      return { problem: 'unreadable', sequence: row.sequence, message: `entry ${row.sequence} has details that are not JSON` };
    }
    if (entryHash({ ...row, details }) !== row.hash) {
      return { problem: 'hash', sequence: row.sequence, message: `entry ${row.sequence} was changed after it was written (hash differs)` };
    }
    at = { sequence: row.sequence, hash: row.hash };
  }
  return at;
}

export const isBreak = (r: ChainBreak | ChainCursor): r is ChainBreak => 'problem' in r;
