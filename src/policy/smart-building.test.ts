/**
 * Acceptance scenario of issue 5 at the engine level (seed 003): each device reaches only what its
 * type's policy grants; a compromised temperature sensor cannot subscribe to lock commands,
 * publish on another sensor's topic, or reach another floor.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CLOUD_IOT_CORE_POLICY } from './builtin.js';
import { compilePolicies, type CompiledPolicy } from './evaluate.js';
import { lintPolicyDocument } from './lint.js';
import {
  OVER_PERMISSIVE_EXAMPLES, SMART_BUILDING_POLICIES, SMART_BUILDING_REGISTRY_GUARD, type SmartBuildingDeviceType,
} from './smart-building-policies.js';

function connect(deviceId: string, type: SmartBuildingDeviceType, floor: string, metadata: Record<string, string> = {}): CompiledPolicy {
  return compilePolicies(
    [
      CLOUD_IOT_CORE_POLICY,
      { name: 'registries/tower-a/policies/guard', version: 1, document: SMART_BUILDING_REGISTRY_GUARD },
      { name: `registries/tower-a/policies/${type}`, version: 2, document: SMART_BUILDING_POLICIES[type] },
    ],
    { registryId: 'tower-a', deviceId, deviceNumId: '1001', metadata: { building: 'hq', floor, type, ...metadata } },
  );
}

const F3 = 'building/hq/floor/3';
const F4 = 'building/hq/floor/4';

describe('smart building (seed 003)', () => {
  const sensor = connect('temp-3-01', 'temperature-sensor', '3');

  it('a temperature sensor publishes its own reading and its Cloud IoT Core topics', () => {
    assert.equal(sensor.can('connect', 'temp-3-01'), true);
    assert.equal(sensor.can('publish', `${F3}/temp/temp-3-01`), true);
    assert.equal(sensor.can('publish', '/devices/temp-3-01/events'), true);
    assert.equal(sensor.canSubscribe('/devices/temp-3-01/config'), true);
    assert.equal(sensor.can('retain', `${F3}/temp/temp-3-01`), false, 'the registry guard forbids retained messages');
  });

  it('a compromised temperature sensor cannot subscribe to lock commands', () => {
    for (const f of [`${F3}/lock/lock-3-01/cmd`, `${F3}/lock/+/cmd`, `${F3}/lock/#`, `${F3}/#`, 'building/#', '#', '+/+/+/+/lock/+/cmd', '$share/x/building/#'])
      assert.equal(sensor.canSubscribe(f), false, f);
    assert.equal(sensor.can('receive', `${F3}/lock/lock-3-01/cmd`), false);
    assert.equal(sensor.can('publish', `${F3}/lock/lock-3-01/cmd`), false, 'nor command a lock');
    assert.equal(sensor.canSubscribe('/devices/lock-3-01/commands/#'), false);
  });

  it("a compromised temperature sensor cannot publish on another sensor's topic", () => {
    for (const t of [`${F3}/temp/temp-3-02`, `${F3}/temp/temp-3-01/x`, `${F3}/temp`, '/devices/temp-3-02/events', '/devices/temp-3-02/state'])
      assert.equal(sensor.can('publish', t), false, t);
    const d = sensor.decide('publish', `${F3}/temp/temp-3-02`);
    assert.equal(d.reason, 'IMPLICIT_DENY');
  });

  it('a compromised temperature sensor cannot reach another floor or building', () => {
    for (const t of [`${F4}/temp/temp-3-01`, 'building/annex/floor/3/temp/temp-3-01'])
      assert.equal(sensor.can('publish', t), false, t);
    for (const f of [`${F4}/#`, `${F4}/temp/+`, 'building/+/floor/3/temp/temp-3-01']) assert.equal(sensor.canSubscribe(f), false, f);
  });

  it('a sensor whose metadata was tampered with to hold wildcards gets nothing more', () => {
    for (const [building, floor] of [['#', '3'], ['hq', '+'], ['hq', '3/temp/+'], ['+', '+']]) {
      const s = connect('temp-3-01', 'temperature-sensor', floor as string, { building: building as string });
      for (const t of [`${F3}/temp/temp-3-01`, `${F3}/temp/temp-3-02`, `${F4}/temp/temp-3-01`])
        assert.equal(s.can('publish', t), false, `${building}/${floor}: ${t}`);
      assert.equal(s.can('publish', '/devices/temp-3-01/events'), true, 'its Cloud IoT Core topics remain');
    }
  });

  it('a lock takes its own commands and publishes its audit trail, nothing of other locks', () => {
    const lock = connect('lock-3-01', 'lock', '3');
    assert.equal(lock.canSubscribe(`${F3}/lock/lock-3-01/cmd`), true);
    assert.equal(lock.can('receive', `${F3}/lock/lock-3-01/cmd`), true);
    assert.equal(lock.can('publish', `${F3}/lock/lock-3-01/audit`), true);
    assert.equal(lock.canSubscribe(`${F3}/lock/lock-3-02/cmd`), false);
    assert.equal(lock.canSubscribe(`${F3}/lock/+/cmd`), false);
    assert.equal(lock.can('publish', `${F3}/lock/lock-3-01/cmd`), false, 'the guard: a lock cannot command itself either');
    const d = lock.decide('publish', `${F3}/lock/lock-3-01/cmd`);
    assert.ok(!d.allowed && d.reason === 'EXPLICIT_DENY' && d.statement.sid === 'locks-only-by-backend');
  });

  it('an HVAC controller reads the temperatures of its floor only', () => {
    const hvac = connect('hvac-3-01', 'hvac-controller', '3');
    assert.equal(hvac.canSubscribe(`${F3}/temp/+`), true);
    assert.equal(hvac.canSubscribe(`${F3}/temp/temp-3-07`), true);
    assert.equal(hvac.can('receive', `${F3}/temp/temp-3-07`), true);
    assert.equal(hvac.canSubscribe(`${F4}/temp/+`), false);
    assert.equal(hvac.canSubscribe(`${F3}/#`), false);
    assert.equal(hvac.can('publish', `${F3}/temp/temp-3-07`), false, 'it reads readings, it does not forge them');
    assert.equal(hvac.can('publish', `${F3}/hvac/hvac-3-01/status`), true);
  });

  it('a smart light takes its own commands only', () => {
    const light = connect('light-3-01', 'smart-light', '3');
    assert.equal(light.canSubscribe(`${F3}/light/light-3-01/cmd`), true);
    assert.equal(light.canSubscribe(`${F3}/light/light-3-02/cmd`), false);
    assert.equal(light.canSubscribe(`${F3}/lock/lock-3-01/cmd`), false);
    assert.equal(light.can('publish', `${F3}/light/light-3-01/status`), true);
  });

  it('lint passes the least-privilege policies and flags every over-permissive example', () => {
    for (const [type, document] of Object.entries(SMART_BUILDING_POLICIES))
      assert.deepEqual(lintPolicyDocument(document), [], `${type} is least-privilege`);
    assert.deepEqual(lintPolicyDocument(SMART_BUILDING_REGISTRY_GUARD), []);
    assert.deepEqual(lintPolicyDocument(CLOUD_IOT_CORE_POLICY.document), [], 'the built-in grants are least-privilege');
    for (const [code, document] of Object.entries(OVER_PERMISSIVE_EXAMPLES)) {
      const codes = lintPolicyDocument(document).map((f) => f.code);
      assert.ok(codes.includes(code as never), `${code} example raised ${codes.join(', ') || 'nothing'}`);
    }
  });
});
