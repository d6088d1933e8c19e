/**
 * The bounded queue between producers and the log's single writer. Control-plane entries (admin
 * actions, revocations) are kept one by one and never dropped: they are few. Device-plane entries
 * (authentications, authorization denials) come from untrusted traffic, so their cost is bounded:
 * past `capacity` individual entries, further ones are folded into aggregates keyed by kind,
 * outcome, actor and reason (one entry with a count); past `maxAggregates` keys, into one
 * aggregate per kind and outcome. Memory stays bounded whatever the flood; the count survives.
 */
import { isAggregatable } from '../domain/audit-events.js';
import type { PendingEntry } from './audit-chain.js';

export interface AuditQueueLimits {
  /** Individual device-plane entries held before aggregation starts. */
  readonly capacity: number;
  /** Distinct kind/outcome/actor/reason aggregates held; beyond, one per kind and outcome. */
  readonly maxAggregates: number;
}

export const DEFAULT_QUEUE_LIMITS: AuditQueueLimits = { capacity: 2000, maxAggregates: 1000 };

/** The actor of an aggregate that spans actors (the per-key table was full). */
export const MANY_ACTORS = '*';

interface Aggregate {
  readonly kind: string;
  readonly outcome: string;
  readonly actor: string;
  readonly reason: string | null;
  readonly subject: string | null;
  /** The first event's details (its source address, say): a sample of the flood. */
  readonly sample: PendingEntry['details'];
  readonly firstTime: number;
  /** Arrival number of the first event. */
  readonly order: number;
  lastTime: number;
  count: number;
}

/** How many events an entry stands for: 1, or an aggregate's count. */
export function eventCount(entry: PendingEntry): number {
  const count = entry.details?.count;
  return entry.details?.aggregated === true && typeof count === 'number' ? count : 1;
}

interface Queued {
  readonly entry: PendingEntry;
  readonly order: number;
}

export class AuditQueue {
  readonly #limits: AuditQueueLimits;
  #control: Queued[] = [];
  #device: Queued[] = [];
  #arrivals = 0;
  #aggregates = new Map<string, Aggregate>();
  #overflow = new Map<string, Aggregate>();

  constructor(limits: Partial<AuditQueueLimits> = {}) {
    this.#limits = { ...DEFAULT_QUEUE_LIMITS, ...limits };
  }

  /** Entries waiting to be written (an aggregate counts once). */
  get size(): number {
    return this.#control.length + this.#device.length + this.#aggregates.size + this.#overflow.size;
  }

  push(entry: PendingEntry): void {
    const order = this.#arrivals++;
    if (!isAggregatable(entry.kind)) {
      this.#control.push({ entry, order });
      return;
    }
    if (this.#device.length < this.#limits.capacity && eventCount(entry) === 1) {
      this.#device.push({ entry, order });
      return;
    }
    this.#fold(entry, order);
  }

  /** Everything queued, oldest first; the queue is empty afterwards. */
  drain(): PendingEntry[] {
    const aggregates = [...this.#aggregates.values(), ...this.#overflow.values()].map((a) => ({ entry: toEntry(a), order: a.order }));
    const all = [...this.#control, ...this.#device, ...aggregates];
    this.#control = [];
    this.#device = [];
    this.#aggregates = new Map();
    this.#overflow = new Map();
    // Entries of the same millisecond keep their arrival order.
    return all.sort((a, b) => a.entry.time - b.entry.time || a.order - b.order).map((q) => q.entry);
  }

  /** Puts back what a failed write took; device-plane entries fold if the queue filled meanwhile. */
  requeue(entries: readonly PendingEntry[]): void {
    const control = entries.filter((e) => !isAggregatable(e.kind)).map((entry, i) => ({ entry, order: i - entries.length }));
    this.#control = [...control, ...this.#control];
    for (const e of entries) if (isAggregatable(e.kind)) this.push(e);
  }

  #fold(entry: PendingEntry, order: number): void {
    const count = eventCount(entry);
    const key = JSON.stringify([entry.kind, entry.outcome, entry.actor, entry.reason]);
    let target = this.#aggregates.get(key);
    if (target === undefined && this.#aggregates.size < this.#limits.maxAggregates) {
      target = newAggregate(entry, order, entry.actor, entry.reason);
      this.#aggregates.set(key, target);
    }
    if (target === undefined) {
      const wide = JSON.stringify([entry.kind, entry.outcome]);
      target = this.#overflow.get(wide);
      if (target === undefined) {
        target = newAggregate(entry, order, MANY_ACTORS, null);
        this.#overflow.set(wide, target);
      }
    }
    target.count += count;
    target.lastTime = Math.max(target.lastTime, entry.time);
  }
}

function newAggregate(first: PendingEntry, order: number, actor: string, reason: string | null): Aggregate {
  const sample = first.details?.aggregated === true ? ((first.details.sample as PendingEntry['details']) ?? null) : first.details;
  return {
    kind: first.kind,
    outcome: first.outcome,
    actor,
    reason,
    subject: actor === MANY_ACTORS ? null : first.subject,
    sample,
    firstTime: first.time,
    order,
    lastTime: first.time,
    count: 0,
  };
}

function toEntry(a: Aggregate): PendingEntry {
  return {
    time: a.firstTime,
    kind: a.kind,
    outcome: a.outcome,
    actor: a.actor,
    subject: a.subject,
    reason: a.reason,
    details: {
      aggregated: true,
      count: a.count,
      firstTime: new Date(a.firstTime).toISOString(),
      lastTime: new Date(a.lastTime).toISOString(),
      ...(a.sample !== null ? { sample: a.sample } : {}),
    },
  };
}
