import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KeywayError } from '../domain/errors.js';
import type { Principal } from '../domain/roles.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import { ServiceAccountService } from './service-accounts.js';

const BOOT: Principal = { kind: 'bootstrap' };
const DAY = 86_400_000;

describe('service accounts', () => {
  let dir: string;
  let store: Awaited<ReturnType<typeof openSqliteStore>>;
  let clock = new Date('2030-01-01T00:00:00Z');
  let accounts: ServiceAccountService;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyway-sa-'));
    store = await openSqliteStore(join(dir, 'k.db'));
    accounts = new ServiceAccountService({ store: store.accounts, now: () => clock });
  });
  after(async () => {
    await accounts.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('authenticates a fresh key and refuses a tampered one', async () => {
    await accounts.create('p1', 'ingest', { bindings: [{ role: 'viewer', scope: { kind: 'project', project: 'p1' } }] }, BOOT);
    const { key, record } = await accounts.createKey('p1', 'ingest');
    assert.match(key, new RegExp(`^kwk_${record.keyId}_`));
    const ok = await accounts.authenticate(key);
    assert.ok(ok.ok && ok.principal.id === 'ingest' && ok.principal.keyId === record.keyId);
    const tampered = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    assert.deepEqual(await accounts.authenticate(tampered), { ok: false, reason: 'mismatch' });
    assert.deepEqual(await accounts.authenticate('kwt_not-a-key'), { ok: false, reason: 'malformed' });
    // The store holds only the hash.
    const stored = await store.accounts.findKey(record.keyId);
    assert.ok(stored && !stored.key.hash.includes(key.slice(4)));
  });

  it('refuses an expired key', async () => {
    const { key } = await accounts.createKey('p1', 'ingest', DAY);
    clock = new Date(clock.getTime() + DAY);
    assert.deepEqual(await accounts.authenticate(key), { ok: false, reason: 'expired' });
    await assert.rejects(accounts.createKey('p1', 'ingest', 400 * DAY), (e: KeywayError) => e.status === 'INVALID_ARGUMENT');
  });

  it('refuses a revoked key and every key of a disabled or deleted account', async () => {
    await accounts.create('p1', 'worker', {}, BOOT);
    const a = await accounts.createKey('p1', 'worker');
    const b = await accounts.createKey('p1', 'worker');
    await accounts.revokeKey('p1', 'worker', a.record.keyId);
    assert.deepEqual(await accounts.authenticate(a.key), { ok: false, reason: 'unknown' });
    assert.ok((await accounts.authenticate(b.key)).ok);
    await accounts.update('p1', 'worker', { disabled: true }, BOOT);
    assert.deepEqual(await accounts.authenticate(b.key), { ok: false, reason: 'disabled' });
    await accounts.update('p1', 'worker', { disabled: false }, BOOT);
    assert.ok((await accounts.authenticate(b.key)).ok);
    await accounts.delete('p1', 'worker');
    assert.deepEqual(await accounts.authenticate(b.key), { ok: false, reason: 'unknown' });
    // The same id again does not bring old keys back.
    await accounts.create('p1', 'worker', {}, BOOT);
    assert.deepEqual(await accounts.authenticate(b.key), { ok: false, reason: 'unknown' });
  });

  it('keeps bindings inside the project; only a global admin grants a global binding', async () => {
    await assert.rejects(
      accounts.create('p1', 'acct-x1', { bindings: [{ role: 'admin', scope: { kind: 'project', project: 'p2' } }] }, BOOT),
      (e: KeywayError) => e.status === 'INVALID_ARGUMENT',
    );
    const projectAdmin: Principal = {
      kind: 'serviceAccount',
      project: 'p1',
      id: 'boss',
      keyId: '0'.repeat(16),
      bindings: [{ role: 'admin', scope: { kind: 'project', project: 'p1' } }],
    };
    await assert.rejects(
      accounts.create('p1', 'acct-x2', { bindings: [{ role: 'viewer', scope: { kind: 'global' } }] }, projectAdmin),
      (e: KeywayError) => e.status === 'PERMISSION_DENIED',
    );
    await accounts.create('p1', 'acct-x3', {}, projectAdmin);
    await assert.rejects(
      accounts.update('p1', 'acct-x3', { bindings: [{ role: 'admin', scope: { kind: 'global' } }] }, projectAdmin),
      (e: KeywayError) => e.status === 'PERMISSION_DENIED',
    );
    await accounts.create('p1', 'acct-x4', { bindings: [{ role: 'securityAdmin', scope: { kind: 'global' } }] }, BOOT);
  });

  it('writes last-used times behind and shows pending ones in lists', async () => {
    await accounts.create('p1', 'poller', {}, BOOT);
    const { key, record } = await accounts.createKey('p1', 'poller');
    assert.equal((await store.accounts.findKey(record.keyId))?.key.lastUsedAt, undefined);
    await accounts.authenticate(key);
    assert.equal((await store.accounts.findKey(record.keyId))?.key.lastUsedAt, undefined, 'not written on every use');
    assert.deepEqual((await accounts.listKeys('p1', 'poller'))[0]?.lastUsedAt, clock);
    await accounts.flush();
    assert.deepEqual((await store.accounts.findKey(record.keyId))?.key.lastUsedAt, clock);
  });

  it('caps keys per account', async () => {
    await accounts.create('p1', 'many', {}, BOOT);
    for (let i = 0; i < 10; i++) await accounts.createKey('p1', 'many');
    await assert.rejects(accounts.createKey('p1', 'many'), (e: KeywayError) => e.status === 'FAILED_PRECONDITION');
  });
});
