import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { AuditEvent } from '../domain/audit-events.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { PendingEntry } from './audit-chain.js';
import { AuditLog } from './audit-log.js';
import { AuditQueue, eventCount, MANY_ACTORS } from './audit-queue.js';

const refusal = (i: number, actor = `projects/p/locations/l/registries/r/devices/d${i}`): PendingEntry => ({
  time: 1_000 + i,
  kind: 'device.authenticate',
  outcome: 'denied',
  actor,
  subject: actor,
  reason: 'bad token',
  details: { source: `10.0.${i % 256}.1` },
});

const total = (entries: readonly PendingEntry[]): number => entries.reduce((n, e) => n + eventCount(e), 0);

describe('AuditQueue', () => {
  it('keeps device-plane entries one by one up to its capacity, then aggregates by kind, outcome, actor and reason', () => {
    const q = new AuditQueue({ capacity: 3, maxAggregates: 10 });
    for (let i = 0; i < 3; i++) q.push(refusal(i, 'dev-a'));
    for (let i = 3; i < 10; i++) q.push(refusal(i, 'dev-a'));
    for (let i = 10; i < 15; i++) q.push(refusal(i, 'dev-b'));
    assert.equal(q.size, 5);
    const out = q.drain();
    assert.equal(q.size, 0);
    assert.equal(total(out), 15);
    const a = out.find((e) => e.details?.aggregated === true && e.actor === 'dev-a');
    assert.equal(a?.details?.count, 7);
    assert.deepEqual(a?.details?.sample, { source: '10.0.3.1' });
    assert.equal(a?.details?.lastTime, new Date(1_009).toISOString());
  });

  it('folds distinct actors into one aggregate per kind and outcome once the aggregate table is full', () => {
    const q = new AuditQueue({ capacity: 2, maxAggregates: 4 });
    for (let i = 0; i < 1000; i++) q.push(refusal(i));
    assert.equal(q.size, 2 + 4 + 1);
    const out = q.drain();
    assert.equal(total(out), 1000);
    assert.equal(out.find((e) => e.actor === MANY_ACTORS)?.details?.count, 1000 - 2 - 4);
  });

  it('never aggregates or drops control-plane entries', () => {
    const q = new AuditQueue({ capacity: 1, maxAggregates: 1 });
    for (let i = 0; i < 50; i++) q.push({ ...refusal(i), kind: 'admin.request', outcome: 'ok', actor: 'admin' });
    const out = q.drain();
    assert.equal(out.length, 50);
    assert.ok(out.every((e) => e.details?.aggregated === undefined));
  });

  it('keeps the counts of aggregates a failed write puts back', () => {
    const q = new AuditQueue({ capacity: 1, maxAggregates: 10 });
    for (let i = 0; i < 20; i++) q.push(refusal(i, 'dev-a'));
    q.push({ ...refusal(0), kind: 'revocation', outcome: 'ok' });
    const first = q.drain();
    q.requeue(first);
    q.push(refusal(99, 'dev-a'));
    const again = q.drain();
    assert.equal(total(again.filter((e) => e.kind === 'device.authenticate')), 21);
    assert.equal(again.filter((e) => e.kind === 'revocation').length, 1);
  });
});

describe('AuditLog under a flood of refused connections', () => {
  it('records 100k refusals without blocking, holds a bounded queue, and the count survives', async () => {
    const store = await openSqliteStore(':memory:');
    const log = new AuditLog({ store: store.audit, logger: pino({ level: 'silent' }), queue: { capacity: 1000, maxAggregates: 100 } });
    try {
      await log.start();
      const started = performance.now();
      let maxPending = 0;
      for (let i = 0; i < 100_000; i++) {
        // Distinct client ids (the worst case for aggregation), a handful of reasons.
        const event: AuditEvent = {
          kind: 'device.authenticate',
          outcome: 'denied',
          actor: `projects/p/locations/l/registries/r/devices/flood-${i}`,
          reason: `bad token ${i % 3}`,
          details: { source: '192.0.2.1' },
        };
        log.record(event);
        maxPending = Math.max(maxPending, log.pending);
      }
      const elapsed = performance.now() - started;
      // The caller (the broker) never waited for the database.
      assert.ok(elapsed < 3000, `recording took ${elapsed} ms`);
      assert.ok(maxPending <= 1000 + 100 + 1, `the queue held ${maxPending} entries`);
      // An admin action in the middle of the flood is written as itself.
      log.record({ kind: 'admin.request', outcome: 'ok', actor: 'admin', subject: 'DELETE /v1/projects/p/locations/l/registries/r' });
      await log.flush();
      await log.flush();
      const rows = await store.audit.scan(0, 1_000_000);
      const refused = rows.filter((r) => r.kind === 'device.authenticate');
      const count = refused.reduce((n, r) => {
        const d = r.details === null ? {} : (JSON.parse(r.details) as { aggregated?: boolean; count?: number });
        return n + (d.aggregated === true ? (d.count ?? 0) : 1);
      }, 0);
      assert.equal(count, 100_000);
      assert.ok(rows.length < 20_000, `${rows.length} entries for the flood`);
      assert.equal(rows.filter((r) => r.kind === 'admin.request').length, 1);
      assert.deepEqual(await log.verify(), { ok: true, checked: rows.length });
    } finally {
      await log.close();
      await store.close();
    }
  });
});
