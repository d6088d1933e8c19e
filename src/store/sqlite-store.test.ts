import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import type { DeviceName, RegistryName } from '../domain/names.js';
import type { Registry } from '../domain/resources.js';
import { SQLITE } from './dialect.js';
import { migrations as allMigrations } from './migrations.js';
import { openSqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';
import { newDevice, newRegistry, REG, T0 } from './store-test-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'keyway-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCounter = 0;
const freshPath = (): string => join(dir, `store-${++fileCounter}`, 'keyway.db');

/** A registry with every setting away from its default, to see each one stored. */
const registry = (name: RegistryName = REG): Registry =>
  newRegistry(name, {
    eventNotificationConfigs: [{ pubsubTopicName: 'projects/proj/topics/a', subfolderMatches: 'alerts' }, { pubsubTopicName: 'projects/proj/topics/b' }],
    stateNotificationConfig: { pubsubTopicName: 'projects/proj/topics/state' },
    httpEnabledState: 'HTTP_DISABLED',
    logLevel: 'INFO',
  });

const deviceName = (id: string): DeviceName => ({ ...REG, device: id });

describe('openSqliteStore', () => {
  it('creates an owner-only file in WAL mode with foreign keys, and reopens without re-migrating', async () => {
    const path = freshPath();
    const store = await openSqliteStore(path);
    await store.putSetting('admin.tokenHash', 'h1');
    await store.close();
    assert.equal(statSync(path).mode & 0o777, 0o600);

    const raw = new BetterSqlite3(path, { readonly: true });
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    const migrations = raw.prepare('select name from kysely_migration').all() as { name: string }[];
    assert.deepEqual(migrations.map((m) => m.name), Object.keys(allMigrations(SQLITE)).sort());
    raw.close();

    const again = await openSqliteStore(path);
    assert.equal(await again.getSetting('admin.tokenHash'), 'h1');
    await again.close();
  });
});

describe('SQLite store', () => {
  let store: Store;
  before(async () => {
    store = await openSqliteStore(freshPath());
    assert.equal(await store.insertRegistry(registry(), T0), 'created');
  });
  after(() => store.close());

  it('keeps settings as a key/value table with overwrite', async () => {
    assert.equal(await store.getSetting('missing'), undefined);
    await store.putSetting('k', 'v1');
    await store.putSetting('k', 'v2');
    assert.equal(await store.getSetting('k'), 'v2');
  });

  it('round-trips a registry and refuses a second with the same name', async () => {
    assert.deepEqual(await store.getRegistry(REG), registry());
    assert.equal(await store.insertRegistry(registry(), T0), 'exists');
    const other = { ...REG, location: 'us-central1' };
    assert.equal(await store.insertRegistry(registry(other), T0), 'created', 'same id in another location is another registry');
  });

  it('patches only the registry fields given and clears the state topic with null', async () => {
    const name = { ...REG, registry: 'patchme' };
    await store.insertRegistry(registry(name), T0);
    const updated = await store.updateRegistry(name, { mqttEnabledState: 'MQTT_DISABLED', stateNotificationConfig: null });
    assert.equal(updated?.mqttEnabledState, 'MQTT_DISABLED');
    assert.equal(updated?.httpEnabledState, 'HTTP_DISABLED');
    assert.equal(updated?.stateNotificationConfig, undefined);
    assert.equal(updated?.eventNotificationConfigs.length, 2);
    assert.equal(await store.updateRegistry({ ...REG, registry: 'nothere' }, { logLevel: 'NONE' }), undefined);
  });

  it('inserts a device with credentials and config version 1 in one go, and finds it by id or numeric id', async () => {
    const result = await store.insertDevice(
      newDevice('dev-a', '1000000000000001', {
        credentials: [
          { publicKey: { format: 'ES256_PEM', key: 'PEM-A' }, fingerprint: 'fa' },
          { publicKey: { format: 'RSA_PEM', key: 'PEM-B' }, fingerprint: 'fb', expirationTime: new Date('2031-01-01T00:00:00Z') },
        ],
        metadata: { site: 'north', 'a.b+c': 'x' },
        configData: Buffer.from('hello'),
      }),
    );
    assert.equal(result, 'created');
    const byId = await store.findDevice(REG, { id: 'dev-a' });
    const byNum = await store.findDevice(REG, { numId: '1000000000000001' });
    assert.ok(byId && byNum);
    assert.deepEqual(byId, byNum);
    assert.equal(byId.device.numId, '1000000000000001');
    assert.deepEqual(byId.device.name, deviceName('dev-a'));
    assert.deepEqual(byId.credentials.map((c) => c.fingerprint), ['fa', 'fb']);
    assert.deepEqual(byId.device.credentials[1], {
      publicKey: { format: 'RSA_PEM', key: 'PEM-B' },
      expirationTime: new Date('2031-01-01T00:00:00Z'),
    });
    assert.equal('fingerprint' in (byId.device.credentials[0] ?? {}), false, 'the domain device carries no store fields');
    assert.deepEqual(byId.device.metadata, { site: 'north', 'a.b+c': 'x' });
    assert.equal(byId.device.config.version, 1);
    assert.deepEqual(byId.device.config.binaryData, Buffer.from('hello'));
    assert.equal(byId.device.state, undefined);
    assert.equal('lastHeartbeatTime' in byId.device, false, 'unset times are absent, not undefined');
    assert.equal(await store.findDevice({ ...REG, registry: 'other' }, { numId: '1000000000000001' }), undefined, 'numeric id is scoped to the registry path');
    const forAuth = await store.findDeviceCredentials(REG, { numId: '1000000000000001' });
    assert.deepEqual(forAuth, {
      name: byId.device.name,
      numId: byId.device.numId,
      blocked: false,
      credentials: byId.credentials,
      gatewayConfig: { gatewayType: 'NON_GATEWAY', gatewayAuthMethod: 'GATEWAY_AUTH_METHOD_UNSPECIFIED' },
    });
    assert.equal(await store.findDeviceCredentials(REG, { id: 'dev-none' }), undefined);
  });

  it('reports taken ids, taken numeric ids and missing registries without writing anything', async () => {
    assert.equal(await store.insertDevice(newDevice('dev-a', '1000000000000999')), 'id-taken');
    assert.equal(await store.insertDevice(newDevice('dev-other', '1000000000000001')), 'num-id-taken');
    assert.equal(await store.insertDevice({ ...newDevice('dev-x', '1000000000000998'), name: { ...REG, registry: 'ghost', device: 'dev-x' } }), 'registry-not-found');
    assert.equal(await store.findDevice(REG, { id: 'dev-other' }), undefined);
    assert.deepEqual(await store.listConfigVersions('1000000000000999'), []);
  });

  it('checks and inserts config versions atomically and keeps only the newest', async () => {
    await store.insertDevice(newDevice('dev-cfg', '1000000000000002'));
    const stale = await store.insertConfigVersion('1000000000000002', { ifCurrentVersion: 2, binaryData: Buffer.from('x'), at: T0, keep: 3 });
    assert.deepEqual(stale, { status: 'stale', currentVersion: 1 });
    // Two writers that both believe version 1 is current: exactly one wins.
    const racing = await Promise.all(
      ['a', 'b'].map((d) => store.insertConfigVersion('1000000000000002', { ifCurrentVersion: 1, binaryData: Buffer.from(d), at: T0, keep: 3 })),
    );
    assert.deepEqual(racing.map((r) => r.status).sort(), ['created', 'stale']);
    for (let i = 0; i < 5; i++)
      await store.insertConfigVersion('1000000000000002', { binaryData: Buffer.from(`v${i + 3}`), at: T0, keep: 3 });
    const versions = await store.listConfigVersions('1000000000000002');
    assert.deepEqual(versions.map((v) => v.version), [7, 6, 5]);
    assert.deepEqual((await store.listConfigVersions('1000000000000002', 2)).map((v) => v.version), [7, 6]);
    assert.equal((await store.latestConfig(deviceName('dev-cfg')))?.version, 7);
    assert.equal((await store.findDevice(REG, { id: 'dev-cfg' }))?.device.config.version, 7);
    assert.deepEqual(await store.insertConfigVersion('1999999999999999', { binaryData: Buffer.alloc(0), at: T0, keep: 3 }), { status: 'not-found' });
  });

  it('records config acks on the version and the device', async () => {
    const at = new Date('2030-01-02T00:00:00Z');
    assert.equal(await store.ackConfig(deviceName('dev-cfg'), 6, at), true);
    const [v7, v6] = await store.listConfigVersions('1000000000000002');
    assert.equal(v7?.deviceAckTime, undefined);
    assert.deepEqual(v6?.deviceAckTime, at);
    assert.deepEqual((await store.findDevice(REG, { id: 'dev-cfg' }))?.device.lastConfigAckTime, at);
    assert.equal(await store.ackConfig(deviceName('nobody'), 1, at), false);
  });

  it('keeps the newest states in report order, even with equal timestamps', async () => {
    await store.insertDevice(newDevice('dev-state', '1000000000000003'));
    for (let i = 1; i <= 4; i++) assert.equal(await store.insertState(deviceName('dev-state'), Buffer.from(`s${i}`), T0, 3), true);
    const states = await store.listStates('1000000000000003');
    assert.deepEqual(states.map((s) => s.binaryData.toString()), ['s4', 's3', 's2']);
    const rec = await store.findDevice(REG, { id: 'dev-state' });
    assert.deepEqual(rec?.device.state?.binaryData, Buffer.from('s4'));
    assert.deepEqual(rec?.device.lastStateTime, T0);
    assert.equal(await store.insertState(deviceName('nobody'), Buffer.from('x'), T0, 3), false);
  });

  it('updates devices field by field and returns both sides of the change', async () => {
    const result = await store.updateDevice('1000000000000001', {
      blocked: true,
      credentials: [{ publicKey: { format: 'ES256_PEM', key: 'PEM-C' }, fingerprint: 'fc' }],
    });
    assert.ok(result);
    assert.equal(result.before.device.blocked, false);
    assert.equal(result.after.device.blocked, true);
    assert.deepEqual(result.before.credentials.map((c) => c.fingerprint), ['fa', 'fb']);
    assert.deepEqual(result.after.credentials.map((c) => c.fingerprint), ['fc']);
    assert.deepEqual(result.after.device.metadata, { site: 'north', 'a.b+c': 'x' }, 'fields not in the patch stay');
    assert.equal(await store.updateDevice('1999999999999999', { blocked: true }), undefined);
  });

  it('writes activity batches, ignoring unknown devices', async () => {
    const at = new Date('2030-01-03T00:00:00Z');
    await store.recordActivity([
      { device: deviceName('dev-a'), lastHeartbeatTime: at, lastError: { time: at, status: { code: 16, message: 'token expired' } } },
      { device: deviceName('gone'), lastEventTime: at },
      { device: deviceName('dev-cfg'), lastEventTime: at, lastConfigSendTime: at },
    ]);
    const a = (await store.findDevice(REG, { id: 'dev-a' }))?.device;
    assert.deepEqual(a?.lastHeartbeatTime, at);
    assert.deepEqual(a?.lastErrorTime, at);
    assert.deepEqual(a?.lastErrorStatus, { code: 16, message: 'token expired' });
    assert.equal(a?.lastEventTime, undefined);
    const c = (await store.findDevice(REG, { id: 'dev-cfg' }))?.device;
    assert.deepEqual(c?.lastEventTime, at);
    assert.deepEqual(c?.lastConfigSendTime, at);
  });

  it('lists devices in id order with keyset paging and id / numeric id filters', async () => {
    const all = await store.listDevices(REG, { limit: 100 });
    assert.deepEqual(all.map((r) => r.device.name.device), ['dev-a', 'dev-cfg', 'dev-state']);
    const page2 = await store.listDevices(REG, { limit: 1, afterId: 'dev-a' });
    assert.deepEqual(page2.map((r) => r.device.name.device), ['dev-cfg']);
    const filtered = await store.listDevices(REG, { limit: 100, ids: ['dev-a', 'dev-state', 'none'], numIds: ['1000000000000003', '99999999999999999999'] });
    assert.deepEqual(filtered.map((r) => r.device.name.device), ['dev-state']);
    assert.deepEqual(await store.listDevices(REG, { limit: 100, numIds: ['99999999999999999999'] }), [], 'ids beyond 2^53 match nothing rather than a rounded neighbour');
    const withState = all.find((r) => r.device.name.device === 'dev-state');
    assert.deepEqual(withState?.device.state?.binaryData, Buffer.from('s4'), 'lists carry the latest state');
    assert.equal(all.find((r) => r.device.name.device === 'dev-cfg')?.device.config.version, 7, 'lists carry the latest config');
  });

  it('refuses to delete a registry with devices, deletes devices with everything they own', async () => {
    assert.equal(await store.deleteRegistry(REG), 'not-empty');
    assert.equal(await store.deleteRegistry({ ...REG, registry: 'ghost' }), 'not-found');
    for (const numId of ['1000000000000001', '1000000000000002', '1000000000000003']) {
      const deleted = await store.deleteDevice(numId);
      assert.equal(typeof deleted === 'object' ? deleted.device.numId : deleted, numId);
      assert.deepEqual(await store.listConfigVersions(numId), []);
      assert.deepEqual(await store.listStates(numId), []);
    }
    assert.equal(await store.deleteDevice('1000000000000001'), undefined);
    assert.equal(await store.deleteRegistry(REG), 'deleted');
    assert.equal(await store.getRegistry(REG), undefined);
  });

  it('lists registries of one location in id order, after a given id', async () => {
    const loc = { project: 'paged', location: 'asia-east1' };
    for (const id of ['r-c', 'r-a', 'r-b']) await store.insertRegistry(registry({ ...loc, registry: id }), T0);
    assert.deepEqual((await store.listRegistries(loc, { limit: 10 })).map((r) => r.name.registry), ['r-a', 'r-b', 'r-c']);
    assert.deepEqual((await store.listRegistries(loc, { limit: 1, afterId: 'r-a' })).map((r) => r.name.registry), ['r-b']);
  });
});

describe('SQLite store shared by two processes', () => {
  it('serialises conditional config updates across processes without SQLITE_BUSY', async () => {
    const path = freshPath();
    const store = await openSqliteStore(path);
    await store.insertRegistry(registry(), T0);
    await store.insertDevice(newDevice('dev-shared', '1000000000000010'));
    const rounds = 150;
    // Each writer reads the current version and asks to replace exactly it, as a careful admin client would.
    const writerSource = `
      import { openSqliteStore } from ${JSON.stringify(new URL('./sqlite-store.ts', import.meta.url).pathname)};
      const store = await openSqliteStore(process.argv[1]);
      console.log('ready');
      let created = 0;
      for (let i = 0; i < ${rounds}; i++) {
        const [latest] = await store.listConfigVersions('1000000000000010', 1);
        const r = await store.insertConfigVersion('1000000000000010', { ifCurrentVersion: latest.version, binaryData: Buffer.from('c'), at: new Date(), keep: 1000 });
        if (r.status === 'created') created++;
      }
      await store.close();
      console.log(created);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', writerSource, path], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = once(child, 'exit');
    // Start writing only once the other process is too, so the two really contend.
    while (!out.includes('ready') && child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 5));
    let createdHere = 0;
    for (let i = 0; i < rounds; i++) {
      const [latest] = await store.listConfigVersions('1000000000000010', 1);
      const r = await store.insertConfigVersion('1000000000000010', { ifCurrentVersion: latest?.version ?? 0, binaryData: Buffer.from('p'), at: T0, keep: 1000 });
      if (r.status === 'created') createdHere++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const [code] = await exited;
    assert.equal(code, 0, err);
    const createdThere = Number(out.replace('ready', '').trim());
    assert.ok(createdHere > 0 && createdThere > 0, 'both processes got versions in');
    const versions = (await store.listConfigVersions('1000000000000010')).map((v) => v.version);
    await store.close();
    assert.equal(versions.length, 1 + createdHere + createdThere, 'every success is exactly one new version');
    assert.deepEqual(versions, Array.from({ length: versions.length }, (_, i) => versions.length - i));
  });
});
