import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { AuditLog } from '../audit/audit-log.js';
import { LocalBus } from '../bus/local-bus.js';
import { DeviceManagerService } from '../registry/device-manager-service.js';
import { ServiceAccountService } from '../registry/service-accounts.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import { createAdminApi } from './admin-api.js';
import type { ApiServiceAccount, ApiServiceAccountKey } from './service-account-routes.js';
import { startTestStack, TEST_ADMIN_TOKEN, verifyTestToken, type TestStack } from './test-stack.js';

const ADMIN = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
const LOC = '/v1/projects/demo/locations/europe-west1';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('service accounts over the admin API', () => {
  let stack: TestStack;
  const call = (method: string, url: string, headers: Record<string, string>, payload?: unknown) =>
    stack.api.inject({ method: method as 'GET', url, headers, ...(payload !== undefined ? { payload: payload as object } : {}) });

  /** A service account with these bindings, and a fresh key. */
  async function account(id: string, bindings: Array<{ role: string; scope: string }>): Promise<string> {
    const created = await call('POST', '/v1/projects/demo/serviceAccounts', ADMIN, { id, bindings });
    assert.equal(created.statusCode, 200, created.body);
    const key = await call('POST', `/v1/projects/demo/serviceAccounts/${id}/keys`, ADMIN, { validFor: '3600s' });
    assert.equal(key.statusCode, 200, key.body);
    return (JSON.parse(key.body) as ApiServiceAccountKey).apiKey as string;
  }

  before(async () => {
    stack = await startTestStack();
    for (const r of ['fleet', 'other']) assert.equal((await call('POST', `${LOC}/registries`, ADMIN, { id: r })).statusCode, 200);
    assert.equal((await call('POST', `${LOC}/registries/fleet/devices`, ADMIN, { id: 'dev1' })).statusCode, 200);
    assert.equal((await call('POST', `${LOC}/registries/other/devices`, ADMIN, { id: 'dev1' })).statusCode, 200);
  });
  after(async () => {
    await stack.close();
  });

  it('shows a key once: the create answer has it, lists and gets never do', async () => {
    const key = await account('once', []);
    assert.match(key, /^kwk_[0-9a-f]{16}_/);
    const list = await call('GET', '/v1/projects/demo/serviceAccounts/once/keys', ADMIN);
    assert.equal(list.statusCode, 200);
    assert.ok(!list.body.includes(key.slice(22)), 'the secret is not listed');
    const keys = (JSON.parse(list.body) as { keys: ApiServiceAccountKey[] }).keys;
    assert.equal(keys.length, 1);
    assert.equal(keys[0]?.apiKey, undefined);
    assert.ok(keys[0]?.expireTime && key.includes(keys[0].keyId));
  });

  it('a viewer reads but cannot write', async () => {
    const key = await account('reader', [{ role: 'viewer', scope: 'projects/demo' }]);
    assert.equal((await call('GET', `${LOC}/registries/fleet/devices/dev1`, bearer(key))).statusCode, 200);
    const write = await call('PATCH', `${LOC}/registries/fleet/devices/dev1?updateMask=metadata`, bearer(key), { metadata: { a: 'b' } });
    assert.equal(write.statusCode, 403, write.body);
    assert.equal((JSON.parse(write.body) as { error: { status: string } }).error.status, 'PERMISSION_DENIED');
    assert.equal((await call('POST', `${LOC}/registries/fleet/devices`, bearer(key), { id: 'dev9' })).statusCode, 403);
    assert.equal((await call('POST', '/v1/projects/demo/serviceAccounts', bearer(key), { id: 'sneaky' })).statusCode, 403);
    assert.equal((await call('GET', '/v1/audit/entries', bearer(key))).statusCode, 403);
  });

  it('a registry-scoped role reaches its registry only', async () => {
    const key = await account('fleet-editor', [{ role: 'editor', scope: 'projects/demo/locations/europe-west1/registries/fleet' }]);
    const mine = await call('PATCH', `${LOC}/registries/fleet/devices/dev1?updateMask=metadata`, bearer(key), { metadata: { a: 'b' } });
    assert.equal(mine.statusCode, 200, mine.body);
    assert.equal((await call('GET', `${LOC}/registries/other/devices/dev1`, bearer(key))).statusCode, 403);
    assert.equal((await call('DELETE', `${LOC}/registries/other/devices/dev1`, bearer(key))).statusCode, 403);
    assert.equal((await call('GET', `${LOC}/registries`, bearer(key))).statusCode, 403, 'listing registries needs the project');
    assert.equal((await call('GET', '/v1/projects/demo/locations/us-central1/registries/fleet', bearer(key))).statusCode, 403);
  });

  it('a device controller may patch blocked, and nothing else', async () => {
    const key = await account('ops', [{ role: 'deviceController', scope: 'projects/demo' }]);
    const url = `${LOC}/registries/fleet/devices/dev1`;
    assert.equal((await call('PATCH', `${url}?updateMask=blocked`, bearer(key), { blocked: true })).statusCode, 200);
    assert.equal((await call('PATCH', `${url}?updateMask=blocked,metadata`, bearer(key), { blocked: false, metadata: {} })).statusCode, 403);
    assert.equal((await call('PATCH', `${url}?updateMask=credentials`, bearer(key), { credentials: [] })).statusCode, 403);
    assert.equal((await call('PATCH', `${url}?updateMask=blocked`, ADMIN, { blocked: false })).statusCode, 200);
  });

  it('revoked, expired-by-deletion and disabled-account keys are refused with 401', async () => {
    const key = await account('shortlived', [{ role: 'viewer', scope: 'projects/demo' }]);
    const get = () => call('GET', `${LOC}/registries/fleet`, bearer(key));
    assert.equal((await get()).statusCode, 200);
    const disable = await call('PATCH', '/v1/projects/demo/serviceAccounts/shortlived?updateMask=disabled', ADMIN, { disabled: true });
    assert.equal(disable.statusCode, 200, disable.body);
    assert.equal((await get()).statusCode, 401);
    await call('PATCH', '/v1/projects/demo/serviceAccounts/shortlived?updateMask=disabled', ADMIN, { disabled: false });
    assert.equal((await get()).statusCode, 200);
    const keyId = key.slice(4, 20);
    assert.equal((await call('DELETE', `/v1/projects/demo/serviceAccounts/shortlived/keys/${keyId}`, ADMIN)).statusCode, 200);
    assert.equal((await get()).statusCode, 401);
  });

  it('refuses bindings outside the project and a global binding from a project admin', async () => {
    const bad = await call('POST', '/v1/projects/demo/serviceAccounts', ADMIN, { id: 'tenant-hop', bindings: [{ role: 'admin', scope: 'projects/victim' }] });
    assert.equal(bad.statusCode, 400, bad.body);
    const unknownRole = await call('POST', '/v1/projects/demo/serviceAccounts', ADMIN, { id: 'odd', bindings: [{ role: 'owner', scope: 'projects/demo' }] });
    assert.equal(unknownRole.statusCode, 400);
    const boss = await account('boss', [{ role: 'admin', scope: 'projects/demo' }]);
    const global = await call('POST', '/v1/projects/demo/serviceAccounts', bearer(boss), { id: 'overlord', bindings: [{ role: 'viewer', scope: '*' }] });
    assert.equal(global.statusCode, 403, global.body);
    const fine = await call('POST', '/v1/projects/demo/serviceAccounts', bearer(boss), { id: 'helper', bindings: [{ role: 'viewer', scope: 'projects/demo' }] });
    assert.equal(fine.statusCode, 200, fine.body);
    assert.deepEqual((JSON.parse(fine.body) as ApiServiceAccount).bindings, [{ role: 'viewer', scope: 'projects/demo' }]);
    assert.equal((await call('GET', '/v1/projects/other/serviceAccounts', bearer(boss))).statusCode, 403);
  });
});

describe('audit actor', () => {
  let dir: string;
  let api: FastifyInstance;
  let audit: AuditLog;
  let close: () => Promise<void>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyway-actor-'));
    const store = await openSqliteStore(join(dir, 'k.db'));
    const bus = new LocalBus();
    const logger = pino({ level: 'silent' });
    const manager = new DeviceManagerService({ store, bus, logger });
    const accounts = new ServiceAccountService({ store: store.accounts });
    audit = new AuditLog({ store: store.audit, logger });
    await audit.start();
    api = await createAdminApi({ manager, accounts, audit, verifyAdminToken: verifyTestToken, logger });
    close = async () => {
      await api.close();
      await accounts.close();
      await audit.close();
      await manager.close();
      await bus.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    };
  });
  after(async () => close());

  it('names the service account and its key, and records denials', async () => {
    const inject = (method: string, url: string, headers: Record<string, string>, payload?: object) =>
      api.inject({ method: method as 'GET', url, headers, ...(payload ? { payload } : {}) });
    await inject('POST', '/v1/projects/demo/serviceAccounts', ADMIN, { id: 'robot', bindings: [{ role: 'editor', scope: 'projects/demo' }] });
    const created = await inject('POST', '/v1/projects/demo/serviceAccounts/robot/keys', ADMIN, {});
    const { apiKey, keyId } = JSON.parse(created.body) as ApiServiceAccountKey;
    assert.equal((await inject('POST', `${LOC}/registries`, bearer(apiKey as string), { id: 'fleet' })).statusCode, 200);
    assert.equal((await inject('POST', '/v1/projects/demo/serviceAccounts', bearer(apiKey as string), { id: 'x-robot' })).statusCode, 403);
    await audit.flush();
    const entries = await audit.query({ limit: 100 });
    const keyEntry = entries.find((e) => e.subject?.endsWith('/robot/keys'));
    assert.equal(keyEntry?.actor, 'admin');
    assert.ok(!JSON.stringify(keyEntry).includes((apiKey as string).slice(22)), 'the key is not in the audit log');
    const create = entries.find((e) => e.subject === `POST ${LOC}/registries`);
    assert.equal(create?.actor, 'serviceAccounts/robot@demo');
    assert.equal((create?.details as { keyId?: string }).keyId, keyId);
    const denied = entries.find((e) => e.outcome === 'denied' && e.actor === 'serviceAccounts/robot@demo');
    assert.equal(denied?.reason, 'permission denied');
  });
});
