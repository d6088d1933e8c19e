/**
 * The audit log's table (migration 0005_audit), typed as in schema.ts: times are epoch
 * milliseconds in bigint columns, hashes lowercase hex text, details canonical JSON text.
 */
import type { Int64 } from './schema.js';

export interface AuditEntriesTable {
  /** 1, 2, 3…: a gap means an entry was removed. */
  sequence: Int64;
  time: Int64;
  kind: string;
  outcome: string;
  actor: string;
  subject: string | null;
  reason: string | null;
  /** JSON text, or null. */
  details: string | null;
  /** The previous entry's hash; 64 zeros for the first. */
  prev_hash: string;
  /** SHA-256 (hex) of the entry's canonical JSON, prev_hash and sequence included. */
  hash: string;
}
