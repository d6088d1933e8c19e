import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { chainEntries, entryHash, isBreak, verifyRows, CHAIN_START, type PendingEntry } from './audit-chain.js';
import { canonicalJson } from './canonical-json.js';

/** The chain's definition, written the slow way: SHA-256 of the canonical JSON of the row without its hash. */
const reference = (row: { sequence: number; time: number; kind: string; outcome: string; actor: string; subject: string | null; reason: string | null; details: unknown; prevHash: string }): string =>
  createHash('sha256').update(canonicalJson({ ...row })).digest('hex');

const ENTRIES: PendingEntry[] = [
  { time: 1, kind: 'device.authenticate', outcome: 'allowed', actor: 'projects/p/devices/d', subject: 'projects/p/devices/d', reason: null, details: { source: '127.0.0.1', protocol: 'mqtt5', method: 'jwt' } },
  { time: 2, kind: 'device.authenticate', outcome: 'denied', actor: '"quoted" \\ \u2028 \ud800 é', subject: null, reason: 'bad token\n', details: null },
  { time: 3, kind: 'admin.update', outcome: 'ok', actor: 'a', subject: 's', reason: 'r', details: { z: [1, -0, 1e21, 0.1, null, { b: 'x', a: true }], a: { '': '', __proto__x: 1 }, m: -12.5 } },
];

describe('the audit hash chain', () => {
  it('hashes each entry as the canonical JSON of the row, details as stored', () => {
    const rows = chainEntries({ sequence: 41, hash: 'f'.repeat(64) }, ENTRIES);
    assert.equal(rows.length, 3);
    for (const row of rows) {
      const details = row.details === null ? null : (JSON.parse(row.details) as unknown);
      assert.equal(row.details, row.details === null ? null : canonicalJson(details), 'details are stored canonical');
      const { hash, ...body } = row;
      assert.equal(hash, reference({ ...body, details }), `entry ${row.sequence}`);
      assert.equal(entryHash({ ...body, details }), hash);
    }
    assert.equal(rows[0]?.prevHash, 'f'.repeat(64));
    assert.equal(rows[1]?.prevHash, rows[0]?.hash);
    const verified = verifyRows({ sequence: 41, hash: 'f'.repeat(64) }, rows);
    assert.ok(!isBreak(verified), 'the chain verifies');
    assert.deepEqual(verified, { sequence: 44, hash: rows[2]?.hash });
  });

  it('still finds an entry changed after it was written', () => {
    const rows = chainEntries(undefined, ENTRIES);
    const tampered = rows.map((r, i) => (i === 1 ? { ...r, reason: 'other' } : r));
    const result = verifyRows(CHAIN_START, tampered);
    assert.ok(isBreak(result) && result.problem === 'hash' && result.sequence === 2, 'the changed entry is named');
  });
});
