import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openSqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';
import { newDevice, newRegistry, REG, T0 } from './store-test-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'keyway-policy-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const doc = (n: number): string => JSON.stringify({ v: n });
const opts = (setAsDefault = false) => ({ at: T0, setAsDefault, maxVersions: 5 });
const OTHER = { ...REG, registry: 'other' };

describe('policies in the store', () => {
  let store: Store;
  before(async () => {
    store = await openSqliteStore(join(dir, 'keyway.db'));
    await store.insertRegistry(newRegistry(), T0);
    await store.insertRegistry(newRegistry(OTHER), T0);
    assert.equal(await store.insertDevice(newDevice('lock-1', '201', { metadata: { type: 'lock', floor: '3' } })), 'created');
    assert.equal(await store.insertDevice(newDevice('temp-1', '202', { metadata: { type: 'temperature-sensor' } })), 'created');
    assert.equal(await store.insertDevice(newDevice('bare', '203')), 'created');
  });
  after(() => store.close());

  it('creates a policy with version 1 as its default, once', async () => {
    assert.equal(await store.policies.insertPolicy(REG, 'p1', doc(1), T0), 'created');
    assert.equal(await store.policies.insertPolicy(REG, 'p1', doc(9), T0), 'exists');
    assert.equal(await store.policies.insertPolicy({ ...REG, registry: 'nope' }, 'p1', doc(1), T0), 'registry-not-found');
    const p = await store.policies.getPolicy(REG, 'p1');
    assert.equal(p?.defaultVersion, 1);
    assert.equal(p?.defaultDocument, doc(1));
    assert.equal(await store.policies.getPolicy(OTHER, 'p1'), undefined, 'policies are per registry');
  });

  it('keeps at most 5 versions, refuses a sixth, never reuses a number, and guards the default', async () => {
    assert.equal(await store.policies.insertPolicy(REG, 'pv', doc(1), T0), 'created');
    for (let v = 2; v <= 5; v++) {
      const r = await store.policies.insertPolicyVersion(REG, 'pv', doc(v), opts());
      assert.equal(r.status === 'created' && r.version.version, v);
    }
    assert.deepEqual(await store.policies.insertPolicyVersion(REG, 'pv', doc(6), opts()), { status: 'limit', max: 5 });
    assert.equal((await store.policies.listPolicyVersions(REG, 'pv'))?.length, 5);
    assert.equal(await store.policies.deletePolicyVersion(REG, 'pv', 1), 'is-default');
    assert.equal(await store.policies.deletePolicyVersion(REG, 'pv', 5), 'deleted');
    assert.equal(await store.policies.deletePolicyVersion(REG, 'pv', 5), 'version-not-found');
    const r = await store.policies.insertPolicyVersion(REG, 'pv', doc(6), opts(true));
    assert.ok(r.status === 'created');
    assert.equal(r.version.version, 6, 'a deleted number is not reused');
    assert.equal(r.previousDefault, 1);
    assert.equal(r.policy.defaultVersion, 6);
    assert.equal(r.policy.defaultDocument, doc(6));
    const s = await store.policies.setDefaultPolicyVersion(REG, 'pv', 2, T0);
    assert.ok(s.status === 'updated' && s.previousDefault === 6 && s.policy.defaultVersion === 2);
    assert.deepEqual(await store.policies.setDefaultPolicyVersion(REG, 'pv', 5, T0), { status: 'version-not-found' });
    assert.deepEqual(await store.policies.setDefaultPolicyVersion(REG, 'none', 1, T0), { status: 'not-found' });
    assert.deepEqual(
      (await store.policies.listPolicyVersions(REG, 'pv'))?.map((v) => v.version),
      [1, 2, 3, 4, 6],
    );
    assert.equal(await store.policies.listPolicyVersions(REG, 'none'), undefined);
  });

  it('attaches to the registry, a device type and a device, in that order for the device', async () => {
    for (const id of ['reg-wide', 'locks', 'own']) assert.equal(await store.policies.insertPolicy(REG, id, doc(id.length), T0), 'created');
    assert.equal(await store.policies.attachPolicy(REG, 'own', { kind: 'device', numId: '201' }, T0), 'attached');
    assert.equal(await store.policies.attachPolicy(REG, 'locks', { kind: 'device-type', deviceType: 'lock' }, T0), 'attached');
    assert.equal(await store.policies.attachPolicy(REG, 'reg-wide', { kind: 'registry' }, T0), 'attached');
    assert.equal(await store.policies.attachPolicy(REG, 'reg-wide', { kind: 'registry' }, T0), 'exists');
    assert.equal(await store.policies.attachPolicy(REG, 'missing', { kind: 'registry' }, T0), 'not-found');
    assert.equal(await store.policies.attachPolicy(REG, 'own', { kind: 'device', numId: '999' }, T0), 'device-not-found');
    // A device of another registry cannot be a target here.
    assert.equal(await store.insertDevice({ ...newDevice('x', '301'), name: { ...OTHER, device: 'x' } }), 'created');
    assert.equal(await store.policies.attachPolicy(REG, 'own', { kind: 'device', numId: '301' }, T0), 'device-not-found');

    const lock = await store.policies.devicePolicies('201');
    assert.deepEqual(
      lock?.policies.map((p) => [p.via, p.policyId]),
      [
        ['registry', 'reg-wide'],
        ['device-type', 'locks'],
        ['device', 'own'],
      ],
    );
    assert.deepEqual(lock?.device, { ...REG, device: 'lock-1' });
    assert.equal(lock?.metadata.floor, '3');
    assert.deepEqual((await store.policies.devicePolicies('202'))?.policies.map((p) => p.policyId), ['reg-wide']);
    assert.deepEqual((await store.policies.devicePolicies('301'))?.policies, [], "another registry's attachments do not apply");
    assert.equal(await store.policies.devicePolicies('999'), undefined);

    const listed = await store.policies.listPolicyAttachments(REG, 'own');
    assert.deepEqual(listed.map((a) => [a.target, a.deviceId]), [[{ kind: 'device', numId: '201' }, 'lock-1']]);
  });

  it('follows the default version, refuses to delete an attached policy, and drops a deleted device\'s attachments', async () => {
    assert.equal(await store.policies.insertPolicyVersion(REG, 'locks', doc(42), opts(true)).then((r) => r.status), 'created');
    const lock = await store.policies.devicePolicies('201');
    assert.deepEqual(lock?.policies.find((p) => p.policyId === 'locks'), { policyId: 'locks', version: 2, document: doc(42), via: 'device-type' });

    assert.equal(await store.policies.deletePolicy(REG, 'own'), 'attached');
    assert.ok(await store.deleteDevice('201'));
    assert.deepEqual(await store.policies.listPolicyAttachments(REG, 'own'), [], 'the device attachment went with the device');
    assert.equal(await store.policies.deletePolicy(REG, 'own'), 'deleted');
    assert.equal(await store.policies.deletePolicy(REG, 'own'), 'not-found');
    assert.equal(await store.policies.listPolicyVersions(REG, 'own'), undefined, 'versions went with the policy');

    assert.equal(await store.policies.detachPolicy(REG, 'locks', { kind: 'device-type', deviceType: 'lock' }), 'detached');
    assert.equal(await store.policies.detachPolicy(REG, 'locks', { kind: 'device-type', deviceType: 'lock' }), 'not-found');
    assert.deepEqual(
      (await store.policies.listPolicies(REG, { limit: 10 })).map((p) => p.id),
      ['locks', 'p1', 'pv', 'reg-wide'],
    );
    assert.deepEqual((await store.policies.listPolicies(REG, { limit: 2, afterId: 'p1' })).map((p) => p.id), ['pv', 'reg-wide']);
  });
});
