import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { pino } from 'pino';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';
import { GENESIS_PREV_HASH } from './audit-chain.js';
import { AuditLog } from './audit-log.js';
import { canonicalJson } from './canonical-json.js';

const logger = pino({ level: 'silent' });
const DEVICE = 'projects/p/locations/l/registries/r/devices/d1';

describe('canonicalJson', () => {
  it('sorts keys at every depth and leaves undefined members out', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, 'x'], c: null, e: undefined } }), '{"a":{"c":null,"d":[1,"x"]},"b":1}');
    assert.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
    assert.throws(() => canonicalJson({ a: NaN }), /NaN/);
  });
});

describe('AuditLog', () => {
  let dir: string;
  let path: string;
  let store: Store;
  let log: AuditLog;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyway-audit-'));
    path = join(dir, 'keyway.db');
    store = await openSqliteStore(path);
    log = new AuditLog({ store: store.audit, logger });
    await log.start({ version: 'test' });
  });
  afterEach(async () => {
    await log.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Five entries after genesis, written in two batches. */
  async function fill(): Promise<void> {
    log.record({ kind: 'device.authenticate', outcome: 'denied', actor: DEVICE, subject: DEVICE, reason: 'bad token', details: { source: '10.0.0.1' } });
    log.record({ kind: 'device.authenticate', outcome: 'allowed', actor: DEVICE, subject: DEVICE });
    await log.flush();
    log.record({ kind: 'device.authorize', outcome: 'denied', actor: DEVICE, subject: '/devices/d2/config', reason: 'not its topic' });
    log.record({ kind: 'admin.request', outcome: 'ok', actor: 'admin', subject: 'DELETE /v1/x', details: { status: 200, request: { b: 1, a: [2] } } });
    log.record({ kind: 'revocation', outcome: 'ok', actor: 'keyway', subject: DEVICE, reason: 'blocked' });
    await log.flush();
  }

  /** Opens the database file behind the store's back, as someone with access to the disk would. */
  function byHand<T>(change: (db: BetterSqlite3.Database) => T): T {
    const db = new BetterSqlite3(path);
    try {
      return change(db);
    } finally {
      db.close();
    }
  }

  it('starts with a genesis entry and chains every entry on the previous one', async () => {
    await fill();
    const all = await log.query({ limit: 100 });
    assert.deepEqual(all.map((e) => e.sequence), [1, 2, 3, 4, 5, 6]);
    assert.equal(all[0]?.kind, 'audit.genesis');
    assert.equal(all[0]?.prevHash, GENESIS_PREV_HASH);
    for (let i = 1; i < all.length; i++) assert.equal(all[i]?.prevHash, all[i - 1]?.hash);
    assert.deepEqual(all[4]?.details, { status: 200, request: { a: [2], b: 1 } });
    assert.deepEqual(await log.verify(), { ok: true, checked: 6 });
  });

  it('continues the chain of an existing log after a restart, with a start entry', async () => {
    await fill();
    await log.close();
    log = new AuditLog({ store: store.audit, logger });
    await log.start();
    const last = await log.query({ afterSequence: 6, limit: 10 });
    assert.deepEqual(last.map((e) => e.kind), ['audit.start']);
    assert.deepEqual(await log.verify(), { ok: true, checked: 7 });
  });

  it('queries by time, device, actor, outcome and kind', async () => {
    await fill();
    const q = (query: Parameters<AuditLog['query']>[0]) => log.query(query).then((r) => r.map((e) => e.sequence));
    assert.deepEqual(await q({ party: DEVICE, limit: 100 }), [2, 3, 4, 6]);
    assert.deepEqual(await q({ actor: 'admin', limit: 100 }), [5]);
    assert.deepEqual(await q({ outcome: 'denied', limit: 100 }), [2, 4]);
    assert.deepEqual(await q({ kind: 'device.authenticate', outcome: 'allowed', limit: 100 }), [3]);
    assert.deepEqual(await q({ start: Date.now() + 60_000, limit: 100 }), []);
    assert.deepEqual(await q({ end: 0, limit: 100 }), []);
    assert.deepEqual(await q({ afterSequence: 2, limit: 2 }), [3, 4]);
  });

  it('detects an entry edited by hand in the database, and names it', async () => {
    await fill();
    byHand((db) => db.prepare("update audit_entries set reason = 'nothing to see' where sequence = 4").run());
    const result = await log.verify();
    assert.equal(result.ok, false);
    assert.equal(result.checked, 3);
    assert.equal(result.firstBad?.sequence, 4);
    assert.equal(result.firstBad?.problem, 'hash');
    assert.equal(result.firstBad?.entry?.reason, 'nothing to see');
  });

  it('detects edited details, even re-hashed ones: the next entry no longer chains', async () => {
    await fill();
    // Rewriting the hash of the edited entry moves the break to the next link.
    const { entryHash } = await import('./audit-chain.js');
    byHand((db) => {
      const row = db.prepare('select * from audit_entries where sequence = 5').get() as Record<string, string | number>;
      const details = JSON.stringify({ status: 200, request: { b: 2 } });
      const hash = entryHash({
        sequence: 5,
        time: Number(row.time),
        kind: String(row.kind),
        outcome: String(row.outcome),
        actor: String(row.actor),
        subject: String(row.subject),
        reason: null,
        details: JSON.parse(details),
        prevHash: String(row.prev_hash),
      });
      db.prepare('update audit_entries set details = ?, hash = ? where sequence = 5').run(details, hash);
    });
    const result = await log.verify();
    assert.equal(result.ok, false);
    assert.equal(result.firstBad?.sequence, 6);
    assert.equal(result.firstBad?.problem, 'prev-hash');
  });

  it('detects a removed entry as a gap', async () => {
    await fill();
    byHand((db) => db.prepare('delete from audit_entries where sequence = 3').run());
    const result = await log.verify();
    assert.equal(result.ok, false);
    assert.equal(result.firstBad?.problem, 'gap');
    assert.equal(result.firstBad?.sequence, 4);
    assert.match(result.firstBad?.message ?? '', /entries 3…3 are missing/);
  });

  it('detects a removed genesis entry', async () => {
    await fill();
    byHand((db) => db.prepare('delete from audit_entries where sequence = 1').run());
    const result = await log.verify();
    assert.equal(result.firstBad?.problem, 'gap');
    assert.equal(result.firstBad?.sequence, 2);
  });

  it('detects two entries swapped', async () => {
    await fill();
    byHand((db) => {
      // Swap everything but the sequence numbers, i.e. reorder the entries.
      db.exec('update audit_entries set sequence = -3 where sequence = 3');
      db.exec('update audit_entries set sequence = 3 where sequence = 4');
      db.exec('update audit_entries set sequence = 4 where sequence = -3');
    });
    const result = await log.verify();
    assert.equal(result.ok, false);
    assert.equal(result.firstBad?.sequence, 3);
  });

  it('keeps appending after a hand-made change, and verify still reports the first break', async () => {
    await fill();
    byHand((db) => db.prepare("update audit_entries set outcome = 'allowed' where sequence = 2").run());
    log.record({ kind: 'admin.request', outcome: 'ok', actor: 'admin', subject: 'POST /v1/y' });
    await log.flush();
    const result = await log.verify();
    assert.equal(result.firstBad?.sequence, 2);
  });
});
