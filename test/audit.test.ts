/**
 * The audit log end to end, through the real server and the `keyway` CLI: a refused and an
 * accepted device connection, an authorization denial and admin changes land in the log;
 * `keyway audit verify` passes, then fails once an entry is edited in the database file by hand.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import type { ApiAuditEntry } from '../src/api/audit-routes.js';
import { runCli } from '../src/cli/cli-test-kit.js';
import { closed, connectClient, deviceKeys, devicePath, rawConnect, validToken, type DeviceKeys } from './support/devices.js';
import { PROJECT, REGION, createDevice, createRegistry, devicePathUrl, eventually } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/server.js';

const REGISTRY = 'audited';

describe('audit log', () => {
  let ts: TestServer;
  let keys: DeviceKeys;
  let work: string;
  const path = (id: string): string => devicePath(PROJECT, REGION, REGISTRY, id);
  const cli = (args: readonly string[]) =>
    runCli(
      args,
      {
        KEYWAY_API_URL: ts.server.apiUrl,
        KEYWAY_CA_FILE: join(ts.dataDir, 'pki', 'ca.crt'),
        KEYWAY_ADMIN_TOKEN: ts.adminToken,
        KEYWAY_PROJECT: PROJECT,
        KEYWAY_REGION: REGION,
        KEYWAY_DATA_DIR: ts.dataDir,
      },
      work,
    );
  const listJson = async (args: readonly string[] = []): Promise<ApiAuditEntry[]> => {
    const r = await cli(['audit', 'list', '--format', 'json', ...args]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as ApiAuditEntry[];
  };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'keyway-audit-cli-'));
    ts = await startTestServer();
    keys = deviceKeys('es256');
    await createRegistry(ts, REGISTRY);
    await createDevice(ts, REGISTRY, 'dev1', keys);
    await createDevice(ts, REGISTRY, 'dev2', deviceKeys('es256'));
  });
  after(async () => {
    await ts.close();
    rmSync(work, { recursive: true, force: true });
  });

  test('records refused and accepted connections, denials and admin changes, and the chain verifies', async () => {
    // Refused: a token of another key.
    const refused = await rawConnect(ts.mqttPort, ts.ca, path('dev1'), validToken(deviceKeys('es256'), PROJECT));
    assert.equal(refused[3], 5, 'CONNACK 5');
    // Accepted, then denied: d1 subscribes to d2's config, which ends its connection.
    const device = await connectClient(ts.mqttPort, ts.ca, { clientId: path('dev1'), username: 'unused', password: validToken(keys, PROJECT) });
    const gone = closed(device);
    device.subscribe('/devices/dev2/config');
    await gone;
    device.end(true);
    // An admin change with a body and a response.
    const patched = await ts.api('PATCH', `${devicePathUrl(REGISTRY, 'dev2')}?updateMask=metadata`, { metadata: { floor: '3' } });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    // A refused admin request.
    assert.equal((await ts.api('DELETE', devicePathUrl(REGISTRY, 'dev2'), undefined, 'wrong-token')).status, 401);

    const entries = await eventually(async () => {
      const all = await listJson();
      assert.ok(all.some((e) => e.kind === 'admin.authenticate'), 'the refused admin request is written');
      return all;
    });
    assert.equal(entries[0]?.kind, 'audit.genesis');
    const refusal = entries.find((e) => e.kind === 'device.authenticate' && e.outcome === 'denied');
    assert.equal(refusal?.actor, path('dev1'));
    assert.match(refusal?.reason ?? '', /device authentication failed/);
    assert.equal((refusal?.details as { source?: string }).source, '127.0.0.1');
    const accepted = entries.find((e) => e.kind === 'device.authenticate' && e.outcome === 'allowed');
    assert.equal(accepted?.actor, path('dev1'));
    assert.equal((accepted?.details as { method?: string }).method, 'jwt');
    assert.equal((accepted?.details as { transport?: string }).transport, 'tls');
    const denial = entries.find((e) => e.kind === 'device.authorize');
    assert.equal(denial?.outcome, 'denied');
    assert.equal(denial?.subject, '/devices/dev2/config');
    const creates = entries.filter((e) => e.kind === 'admin.request' && e.subject?.startsWith('POST '));
    assert.equal(creates.length, 3, 'registry and two devices');
    const patch = entries.find((e) => e.kind === 'admin.request' && e.subject?.startsWith('PATCH '));
    const pd = patch?.details as { status: number; source: string; request: unknown; before: { metadata?: unknown }; after: { metadata: unknown } };
    assert.equal(patch?.actor, 'admin');
    assert.equal(pd.status, 200);
    assert.equal(pd.source, '127.0.0.1');
    assert.deepEqual(pd.request, { metadata: { floor: '3' } });
    assert.deepEqual(pd.after.metadata, { floor: '3' });
    assert.equal(pd.before.metadata, undefined, 'the device as it was: no metadata yet');
    assert.equal((pd.before as { id?: string }).id, 'dev2', 'the resource before the change');
    const anonymous = entries.find((e) => e.kind === 'admin.authenticate');
    assert.equal(anonymous?.outcome, 'denied');
    assert.equal(anonymous?.actor, 'anonymous');
    assert.ok(!JSON.stringify(entries).includes(ts.adminToken), 'no admin token in the log');

    // Filters.
    const denied = await listJson(['--outcome', 'denied', '--since', '1h']);
    assert.ok(denied.length >= 3 && denied.every((e) => e.outcome === 'denied'));
    const ofDevice = await listJson(['--device', 'dev1', '--registry', REGISTRY]);
    assert.deepEqual(new Set(ofDevice.map((e) => e.kind)), new Set(['device.authenticate', 'device.authorize']));
    assert.deepEqual(await listJson(['--actor', 'admin', '--kind', 'admin.request', '--until', '2000-01-01T00:00:00Z']), []);
    const table = await cli(['audit', 'list', '--outcome', 'denied']);
    assert.match(table.stdout, /^SEQ +TIME +KIND +OUTCOME +ACTOR/);
    assert.match(table.stdout, /device\.authorize +denied +projects\/demo\/.*\/devices\/dev1 +\/devices\/dev2\/config/);
    const bad = await cli(['audit', 'list', '--since', 'yesterday']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--since: 'yesterday' is neither a duration/);

    // Export as JSON lines, owner-only.
    const exported = await cli(['audit', 'export', '--out', 'audit.jsonl']);
    assert.equal(exported.code, 0, exported.stderr);
    const lines = readFileSync(join(work, 'audit.jsonl'), 'utf8').trimEnd().split('\n');
    assert.ok(lines.length >= entries.length);
    assert.deepEqual(JSON.parse(lines[0] as string), entries[0]);
    assert.equal(statSync(join(work, 'audit.jsonl')).mode & 0o777, 0o600);

    const verified = await cli(['audit', 'verify']);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stderr, /Audit log intact: \d+ entries verified/);
  });

  test('keyway audit verify fails, naming the entry, after a hand edit of the database file', async () => {
    const entries = await listJson(['--outcome', 'denied', '--kind', 'device.authenticate']);
    const target = entries[0];
    assert.ok(target);
    const db = new BetterSqlite3(join(ts.dataDir, 'keyway.db'));
    try {
      db.prepare("update audit_entries set reason = 'all fine', outcome = 'allowed' where sequence = ?").run(target.sequence);
    } finally {
      db.close();
    }
    const verified = await cli(['audit', 'verify']);
    assert.equal(verified.code, 1);
    assert.match(verified.stderr, new RegExp(`the audit log is broken at entry ${target.sequence}: entry ${target.sequence} was changed`));
    assert.match(verified.stdout, /reason: all fine/);
    const api = await ts.api('GET', '/v1/audit:verify');
    assert.equal(api.status, 200);
    assert.equal(api.body.ok, false);
    assert.equal(api.body.firstBad.sequence, target.sequence);
  });
});
