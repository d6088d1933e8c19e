import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PoliciesChanged } from '../bus/bus.js';
import { OVER_PERMISSIVE_EXAMPLES, SMART_BUILDING_POLICIES, SMART_BUILDING_REGISTRY_GUARD } from '../policy/smart-building-policies.js';
import { startTestStack, TEST_ADMIN_TOKEN, type TestStack } from './test-stack.js';

const LOC = { project: 'demo', location: 'europe-west1' };
const REG = { ...LOC, registry: 'building-1' };
const REGISTRY_KEY = 'projects/demo/locations/europe-west1/registries/building-1';
const BASE = `/v1/${REGISTRY_KEY}`;
const devKey = (id: string): string => `${REGISTRY_KEY}/devices/${id}`;

describe('admin API: device policies', () => {
  let stack: TestStack;
  const events: PoliciesChanged[] = [];
  const call = async (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown) => {
    const res = await stack.api.inject({
      method,
      url,
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
      ...(payload !== undefined ? { payload: payload as object } : {}),
    });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests read arbitrary JSON paths
    return { status: res.statusCode, json: () => res.json() as Record<string, any> };
  };
  const drain = (): PoliciesChanged[] => events.splice(0);

  before(async () => {
    stack = await startTestStack();
    stack.bus.onPoliciesChanged((e) => events.push(e));
    await stack.manager.createRegistry(LOC, 'building-1', {});
    const devices: [string, Record<string, string>][] = [
      ['temp-3-01', { type: 'temperature-sensor', building: 'b1', floor: '3' }],
      ['temp-3-02', { type: 'temperature-sensor', building: 'b1', floor: '3' }],
      ['lock-3-01', { type: 'lock', building: 'b1', floor: '3' }],
      ['hvac-3', { type: 'hvac-controller', building: 'b1', floor: '3' }],
      ['light-3-01', { type: 'smart-light', building: 'b1', floor: '3' }],
    ];
    for (const [id, metadata] of devices) await stack.manager.createDevice(REG, id, { metadata });
  });
  after(() => stack.close());

  it('refuses an over-permissive document unless forced, and returns warnings', async () => {
    const bad = await call('POST', `${BASE}/policies`, { id: 'wide', document: OVER_PERMISSIVE_EXAMPLES.WILDCARD_PUBLISH });
    assert.equal(bad.status, 400);
    assert.equal(bad.json().error.status, 'INVALID_ARGUMENT');
    assert.match(JSON.stringify(bad.json().error.details), /WILDCARD_PUBLISH/);
    assert.equal((await call('GET', `${BASE}/policies/wide`)).status, 404, 'nothing was stored');

    const forced = await call('POST', `${BASE}/policies`, { id: 'wide', document: OVER_PERMISSIVE_EXAMPLES.WILDCARD_PUBLISH, force: true });
    assert.equal(forced.status, 200, JSON.stringify(forced.json()));
    assert.equal(forced.json().lintFindings[0].code, 'WILDCARD_PUBLISH');
    assert.equal(forced.json().name, `${REGISTRY_KEY}/policies/wide`);

    const warn = await call('POST', `${BASE}/policies`, { id: 'alarm', document: OVER_PERMISSIVE_EXAMPLES.NO_DEVICE_VARIABLE });
    assert.equal(warn.status, 200);
    assert.equal(warn.json().lintFindings[0].severity, 'warning');

    const malformed = await call('POST', `${BASE}/policies`, { id: 'broken', document: { version: '2026-01-01', Statement: [] } });
    assert.equal(malformed.status, 400);
    assert.match(malformed.json().error.message, /did you mean 'statements'/);

    const lint = await call('POST', `${BASE}/policies:lint`, { document: OVER_PERMISSIVE_EXAMPLES.ROOT_WILDCARD });
    assert.equal(lint.json().findings[0].code, 'ROOT_WILDCARD');
    assert.deepEqual((await call('POST', `${BASE}/policies:lint`, { document: SMART_BUILDING_POLICIES.lock })).json(), {});
    assert.equal((await call('DELETE', `${BASE}/policies/wide`)).status, 200);
    assert.equal((await call('DELETE', `${BASE}/policies/alarm`)).status, 200);
    assert.deepEqual(drain(), [], 'unattached policies change nothing');
  });

  it('grants each device type only what its policy says, and names the deciding statement', async () => {
    for (const [type, document] of Object.entries(SMART_BUILDING_POLICIES)) {
      assert.equal((await call('POST', `${BASE}/policies`, { id: type, document })).status, 200);
      const a = await call('POST', `${BASE}/policies/${type}:attach`, { target: { deviceType: type } });
      assert.equal(a.status, 200, JSON.stringify(a.json()));
      assert.deepEqual(a.json().target, { deviceType: type });
    }
    assert.equal((await call('POST', `${BASE}/policies`, { id: 'guard', document: SMART_BUILDING_REGISTRY_GUARD })).status, 200);
    assert.equal((await call('POST', `${BASE}/policies/guard:attach`, { target: { registry: true } })).status, 200);
    assert.equal(drain().length, 5);

    const test = async (device: string, action: string, resource: string) => {
      const r = await call('POST', `${BASE}/devices/${device}:testPolicy`, { action, resource });
      assert.equal(r.status, 200, JSON.stringify(r.json()));
      return r.json();
    };
    const ok = await test('temp-3-01', 'publish', 'building/b1/floor/3/temp/temp-3-01');
    assert.equal(ok.allowed, true);
    assert.deepEqual(ok.statement, {
      policy: 'temperature-sensor',
      version: 1,
      statement: 0,
      sid: 'reading',
      effect: 'Allow',
      resource: 'building/${device.metadata.building}/floor/${device.metadata.floor}/temp/${device.id}',
      resolved: 'building/b1/floor/3/temp/temp-3-01',
    });
    // A compromised sensor: another sensor's topic, another floor, the locks' commands.
    assert.equal((await test('temp-3-01', 'publish', 'building/b1/floor/3/temp/temp-3-02')).reason, 'IMPLICIT_DENY');
    assert.equal((await test('temp-3-01', 'publish', 'building/b1/floor/4/temp/temp-3-01')).allowed, false);
    assert.equal((await test('temp-3-01', 'subscribe', 'building/b1/floor/3/lock/+/cmd')).allowed, false);
    assert.equal((await test('temp-3-01', 'subscribe', 'building/#')).allowed, false);
    const lockCmd = await test('lock-3-01', 'publish', 'building/b1/floor/3/lock/lock-3-01/cmd');
    assert.equal(lockCmd.reason, 'EXPLICIT_DENY');
    assert.equal(lockCmd.statement.sid, 'locks-only-by-backend');
    assert.equal(lockCmd.statement.policy, 'guard');
    assert.equal((await test('lock-3-01', 'subscribe', 'building/b1/floor/3/lock/lock-3-01/cmd')).allowed, true);
    assert.equal((await test('hvac-3', 'subscribe', 'building/b1/floor/3/temp/+')).allowed, true);
    assert.equal((await test('hvac-3', 'subscribe', 'building/b1/floor/+/temp/+')).allowed, false);
    // The built-in Cloud IoT Core grants stay, for the device's own topics only.
    const events = await test('light-3-01', 'publish', '/devices/light-3-01/events/x');
    assert.equal(events.statement.policy, 'keyway:cloud-iot-core');
    assert.equal((await test('light-3-01', 'publish', '/devices/temp-3-01/events')).allowed, false);
    // A retained publish is denied by the guard.
    assert.equal((await test('light-3-01', 'retain', 'building/b1/floor/3/light/light-3-01/status')).reason, 'EXPLICIT_DENY');

    const bad = await call('POST', `${BASE}/devices/temp-3-01:testPolicy`, { action: 'publish', resource: 'a/+' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json().error.details[0].fieldViolations[0].field, 'resource');
    assert.equal((await call('POST', `${BASE}/devices/nobody:testPolicy`, { action: 'publish', resource: 'a' })).status, 404);

    const effective = await call('GET', `${BASE}/devices/lock-3-01/policies`);
    assert.deepEqual(
      effective.json().policies.map((p: { policy: string; via: string }) => [p.via, p.policy]),
      [
        ['builtin', 'keyway:cloud-iot-core'],
        ['registry', 'guard'],
        ['device-type', 'lock'],
      ],
    );
  });

  it('a label change moves a device to another type’s policy, and says so on the bus', async () => {
    await stack.manager.patchDevice({ ...REG, device: 'temp-3-02' }, { metadata: { type: 'lock', building: 'b1', floor: '3' } }, ['metadata']);
    assert.deepEqual(drain(), [{ registry: REGISTRY_KEY, devices: [devKey('temp-3-02')] }]);
    const r = await call('POST', `${BASE}/devices/temp-3-02:testPolicy`, { action: 'subscribe', resource: 'building/b1/floor/3/lock/temp-3-02/cmd' });
    assert.equal(r.json().allowed, true);
    await stack.manager.patchDevice({ ...REG, device: 'temp-3-02' }, { logLevel: 'INFO' }, ['log_level']);
    assert.deepEqual(drain(), [], 'a change that is not metadata is not announced');
  });

  it('versions: at most 5, default switch announced, default never deleted, attached policy never deleted', async () => {
    const v = (sid: string) => ({ version: '2026-01-01', statements: [{ sid, effect: 'Allow', actions: ['publish'], resources: ['x/${device.id}'] }] });
    assert.equal((await call('POST', `${BASE}/policies`, { id: 'own', document: v('v1') })).status, 200);
    assert.equal((await call('POST', `${BASE}/policies/own:attach`, { target: { deviceId: 'light-3-01' } })).status, 200);
    assert.deepEqual(drain(), [{ registry: REGISTRY_KEY, devices: [devKey('light-3-01')] }]);
    for (let i = 2; i <= 5; i++) {
      const r = await call('POST', `${BASE}/policies/own/versions`, { document: v(`v${i}`) });
      assert.equal(r.json().version, i);
      assert.equal(r.json().isDefault, false);
    }
    assert.deepEqual(drain(), [], 'a version that is not the default changes nothing');
    const sixth = await call('POST', `${BASE}/policies/own/versions`, { document: v('v6') });
    assert.equal(sixth.status, 400);
    assert.equal(sixth.json().error.status, 'FAILED_PRECONDITION');
    assert.equal((await call('DELETE', `${BASE}/policies/own/versions/1`)).json().error.status, 'FAILED_PRECONDITION');
    assert.equal((await call('DELETE', `${BASE}/policies/own/versions/2`)).status, 200);
    const six = await call('POST', `${BASE}/policies/own/versions`, { document: v('v6'), setAsDefault: true });
    assert.equal(six.json().version, 6);
    assert.deepEqual(drain(), [{ registry: REGISTRY_KEY, devices: [devKey('light-3-01')] }]);
    const decision = await call('POST', `${BASE}/devices/light-3-01:testPolicy`, { action: 'publish', resource: 'x/light-3-01' });
    assert.equal(decision.json().statement.sid, 'v6');
    assert.equal(decision.json().statement.version, 6);

    const set = await call('POST', `${BASE}/policies/own:setDefaultVersion`, { version: 3 });
    assert.equal(set.json().defaultVersion, 3);
    assert.equal(drain().length, 1);
    assert.equal((await call('POST', `${BASE}/policies/own:setDefaultVersion`, { version: 2 })).status, 404);
    assert.deepEqual(
      (await call('GET', `${BASE}/policies/own/versions`)).json().versions.map((x: { version: number; isDefault: boolean }) => [x.version, x.isDefault]),
      [
        [1, false],
        [3, true],
        [4, false],
        [5, false],
        [6, false],
      ],
    );

    const del = await call('DELETE', `${BASE}/policies/own`);
    assert.equal(del.json().error.status, 'FAILED_PRECONDITION');
    assert.deepEqual((await call('GET', `${BASE}/policies/own/attachments`)).json().attachments.map((a: { target: unknown }) => a.target), [
      { deviceId: 'light-3-01', deviceNumId: (await stack.manager.getDevice({ ...REG, device: 'light-3-01' })).numId },
    ]);
    assert.equal((await call('POST', `${BASE}/policies/own:detach`, { target: { deviceId: 'light-3-01' } })).status, 200);
    assert.deepEqual(drain(), [{ registry: REGISTRY_KEY, devices: [devKey('light-3-01')] }]);
    assert.equal((await call('POST', `${BASE}/policies/own:detach`, { target: { deviceId: 'light-3-01' } })).status, 404);
    assert.equal((await call('DELETE', `${BASE}/policies/own`)).status, 200);

    // Detaching a type-wide policy reaches every device of the registry.
    assert.equal((await call('POST', `${BASE}/policies/lock:detach`, { target: { deviceType: 'lock' } })).status, 200);
    assert.deepEqual(drain(), [{ registry: REGISTRY_KEY }]);
  });

  it('refuses bad targets and bad ids clearly', async () => {
    const two = await call('POST', `${BASE}/policies/guard:attach`, { target: { registry: true, deviceType: 'lock' } });
    assert.equal(two.status, 400);
    assert.equal((await call('POST', `${BASE}/policies/guard:attach`, { target: { deviceId: 'ghost' } })).status, 404);
    assert.equal((await call('POST', `${BASE}/policies/guard:attach`, { target: { registry: true } })).json().error.status, 'ALREADY_EXISTS');
    assert.equal((await call('POST', `${BASE}/policies`, { id: '1bad', document: SMART_BUILDING_POLICIES.lock })).status, 400);
    assert.equal((await call('GET', `/v1/projects/demo/locations/europe-west1/registries/nope/policies`)).status, 404);
    assert.deepEqual(
      (await call('GET', `${BASE}/policies`)).json().policies.map((p: { id: string }) => p.id),
      ['guard', 'hvac-controller', 'lock', 'smart-light', 'temperature-sensor'],
    );
  });
});
