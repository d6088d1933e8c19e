/**
 * PolicyService.compileForDevice against a real SQLite store: a registry without attachments is
 * answered without reading the store, and that shortcut never outlives a change.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalBus } from '../bus/local-bus.js';
import type { DeviceName } from '../domain/names.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';
import { DeviceManagerService } from './device-manager-service.js';
import { PolicyService } from './policy-service.js';

const REG = { project: 'proj', location: 'europe-west1', registry: 'fleet' };
const DENY_CONNECT = { version: '2026-01-01', statements: [{ effect: 'Deny', actions: ['connect'], resources: ['${device.id}'] }] };

describe('PolicyService.compileForDevice', () => {
  let dir: string;
  let store: Store;
  let bus: LocalBus;
  let manager: DeviceManagerService;
  let policies: PolicyService;
  let name: DeviceName;
  let numId: string;
  let attachmentReads = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyway-policy-service-'));
    store = await openSqliteStore(join(dir, 'keyway.db'));
    const read = store.policies.hasPolicyAttachments.bind(store.policies);
    store.policies.hasPolicyAttachments = (r) => {
      attachmentReads++;
      return read(r);
    };
    bus = new LocalBus();
    manager = new DeviceManagerService({ store, bus, flushIntervalMs: 60_000 });
    await manager.createRegistry({ project: REG.project, location: REG.location }, REG.registry, {});
    const device = await manager.createDevice(REG, 'dev-1', {});
    name = device.name;
    numId = device.numId;
    policies = new PolicyService({ store, bus });
  });

  after(async () => {
    await manager.close();
    await bus.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const mayConnect = async (): Promise<boolean> => {
    const p = await policies.compileForDevice(numId, undefined, name);
    assert.ok(p, 'the device exists');
    return p.compiled.can('connect', 'dev-1');
  };

  it('reads whether a registry has attachments once, and sees every attachment and detachment at once', async () => {
    const reads = attachmentReads;
    assert.equal(await mayConnect(), true, 'the built-in grants');
    assert.equal(await mayConnect(), true);
    assert.equal(attachmentReads, reads + 1, 'the second connection asks nothing of the store');
    const p = await policies.compileForDevice(numId, undefined, name);
    assert.ok(p?.compiled.can('publish', '/devices/dev-1/events'), 'the built-in grants are those of the device');
    assert.equal(p?.compiled.can('publish', '/devices/dev-2/events'), false, 'and of no other device');

    await policies.createPolicy(REG, 'no-connect', DENY_CONNECT);
    await policies.attachPolicy(REG, 'no-connect', { deviceId: 'dev-1' });
    assert.equal(await mayConnect(), false, 'a reconnect right after the attachment sees it');
    await policies.detachPolicy(REG, 'no-connect', { deviceId: 'dev-1' });
    assert.equal(await mayConnect(), true, 'and its detachment');
    await policies.attachPolicy(REG, 'no-connect', { registry: true });
    assert.equal(await mayConnect(), false, 'a registry-wide attachment too');
    await policies.detachPolicy(REG, 'no-connect', { registry: true });
    assert.equal(await mayConnect(), true);
  });

  it('does not keep an answer read while a change was announced', async () => {
    bus.publishPoliciesChanged({ registry: 'projects/proj/locations/europe-west1/registries/fleet' });
    const read = store.policies.hasPolicyAttachments;
    store.policies.hasPolicyAttachments = async (r) => {
      const answer = await read(r);
      // Another writer announces a change while this answer is on its way.
      bus.publishPoliciesChanged({ registry: 'projects/proj/locations/europe-west1/registries/fleet' });
      return answer;
    };
    const reads = attachmentReads;
    try {
      await mayConnect();
      await mayConnect();
    } finally {
      store.policies.hasPolicyAttachments = read;
    }
    assert.equal(attachmentReads, reads + 2, 'each connection read the store again');
  });

  it('still refuses a device that no longer exists when the registry has attachments', async () => {
    await policies.attachPolicy(REG, 'no-connect', { deviceType: 'locked' });
    assert.equal(await policies.compileForDevice('999999', undefined, { ...REG, device: 'gone' }), undefined);
    await policies.detachPolicy(REG, 'no-connect', { deviceType: 'locked' });
  });
});
