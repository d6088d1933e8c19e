/**
 * The audit log's storage: rows appended in sequence, read back by query or in order for
 * verification. The store knows nothing of hashing; the audit module builds the rows from the
 * head it is handed inside the appending transaction.
 */

/** An entry as stored. `details` is JSON text. */
export interface AuditRow {
  readonly sequence: number;
  /** Epoch milliseconds. */
  readonly time: number;
  readonly kind: string;
  readonly outcome: string;
  readonly actor: string;
  readonly subject: string | null;
  readonly reason: string | null;
  readonly details: string | null;
  readonly prevHash: string;
  readonly hash: string;
}

/** The last entry: where the next one chains on. */
export interface AuditHead {
  readonly sequence: number;
  readonly hash: string;
}

/** Filters are ANDed; results in sequence order, after `afterSequence`, at most `limit`. */
export interface AuditQuery {
  /** Epoch ms, inclusive. */
  readonly start?: number;
  /** Epoch ms, exclusive. */
  readonly end?: number;
  /** Entries whose actor or subject is this (a device's path). */
  readonly party?: string;
  readonly actor?: string;
  readonly outcome?: string;
  readonly kind?: string;
  readonly afterSequence?: number;
  readonly limit: number;
}

export interface AuditStore {
  /**
   * Appends what `build` returns for the current head, in one transaction that holds the write
   * lock from the head's read on, so that the chain never forks. Returns the rows written.
   */
  append(build: (head: AuditHead | undefined) => readonly AuditRow[]): Promise<readonly AuditRow[]>;
  head(): Promise<AuditHead | undefined>;
  query(query: AuditQuery): Promise<AuditRow[]>;
  /** Every row in sequence order from `afterSequence` (exclusive), at most `limit`: for verification. */
  scan(afterSequence: number, limit: number): Promise<AuditRow[]>;
}
