import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeywayError } from '../domain/errors.js';
import { CLOUD_IOT_CORE_POLICY, CLOUD_IOT_CORE_POLICY_NAME } from './builtin.js';
import { parsePolicyDocument, type PolicyEffect, type PolicyAction } from './document.js';
import { compilePolicies, type NamedPolicyDocument } from './evaluate.js';
import type { PolicyContext } from './variables.js';

const CTX: PolicyContext = {
  registryId: 'reg-1',
  deviceId: 'dev-1',
  deviceNumId: '4242',
  metadata: { building: 'hq', floor: '3' },
};

type St = [PolicyEffect, PolicyAction[], string[], string?];
function policy(name: string, statements: St[], version = 1): NamedPolicyDocument {
  return {
    name,
    version,
    document: parsePolicyDocument({
      version: '2026-01-01',
      statements: statements.map(([effect, actions, resources, sid]) => ({ effect, actions, resources, ...(sid ? { sid } : {}) })),
    }),
  };
}

describe('policy evaluation', () => {
  it('denies everything when no statement matches (implicit deny)', () => {
    const empty = compilePolicies([], CTX);
    for (const a of ['connect', 'publish', 'receive', 'retain'] as const) assert.equal(empty.can(a, 'x'), false, a);
    assert.equal(empty.canSubscribe('x'), false);
    assert.deepEqual(empty.decide('publish', 'x'), { allowed: false, reason: 'IMPLICIT_DENY' });
    const p = compilePolicies([policy('p', [['Allow', ['publish'], ['a/b']]])], CTX);
    assert.equal(p.can('publish', 'a/b'), true);
    assert.equal(p.can('publish', 'a/c'), false);
    assert.equal(p.can('receive', 'a/b'), false, 'an action is granted only where it is listed');
    assert.equal(p.can('retain', 'a/b'), false, 'retain is its own action');
  });

  it('lets an explicit Deny win over any Allow, in the same or another document, and names the statement', () => {
    const docs = [
      policy('registry-policy', [['Allow', ['publish', 'receive'], ['a/#'], 'broad']], 3),
      policy('device-policy', [
        ['Allow', ['publish'], ['a/b']],
        ['Deny', ['publish'], ['a/+/secret', 'a/b'], 'no-secrets'],
      ], 7),
    ];
    const p = compilePolicies(docs, CTX);
    assert.equal(p.can('publish', 'a/c'), true);
    assert.equal(p.can('publish', 'a/b'), false);
    assert.equal(p.can('publish', 'a/x/secret'), false);
    assert.equal(p.can('receive', 'a/b'), true, 'the deny names publish only');
    assert.deepEqual(p.decide('publish', 'a/x/secret'), {
      allowed: false,
      reason: 'EXPLICIT_DENY',
      statement: { policy: 'device-policy', version: 7, statement: 1, sid: 'no-secrets', effect: 'Deny', resource: 'a/+/secret', resolved: 'a/+/secret' },
    });
    assert.deepEqual(p.decide('publish', 'a/c'), {
      allowed: true,
      reason: 'ALLOW',
      statement: { policy: 'registry-policy', version: 3, statement: 0, sid: 'broad', effect: 'Allow', resource: 'a/#', resolved: 'a/#' },
    });
  });

  it('refuses a subscription that could deliver a denied topic (the AWS a/# bypass)', () => {
    const p = compilePolicies([
      policy('p', [
        ['Allow', ['subscribe', 'receive'], ['a/#']],
        ['Deny', ['subscribe', 'receive'], ['a/b']],
      ]),
    ], CTX);
    assert.equal(p.canSubscribe('a/c'), true);
    assert.equal(p.canSubscribe('a/c/#'), true);
    assert.equal(p.canSubscribe('a/b'), false);
    assert.equal(p.canSubscribe('a/#'), false, 'a/# would deliver a/b');
    assert.equal(p.canSubscribe('a/+'), false, 'a/+ would deliver a/b');
    assert.equal(p.canSubscribe('+/b'), false);
    assert.equal(p.canSubscribe('#'), false);
    assert.equal(p.canSubscribe('$share/group/a/#'), false, 'a shared subscription is judged by its filter');
    assert.equal(p.canSubscribe('$share/group/a/c'), true);
    assert.equal(p.canSubscribe('a/b/c'), true, 'a/b/c does not include a/b');
    assert.equal(p.can('receive', 'a/b'), false);
    const d = p.decide('subscribe', 'a/+');
    assert.equal(d.reason, 'EXPLICIT_DENY');
    assert.equal(d.allowed === false && d.reason === 'EXPLICIT_DENY' && d.statement.resource, 'a/b');
  });

  it('grants a subscription only when one Allow covers every topic of the filter', () => {
    const p = compilePolicies([policy('p', [['Allow', ['subscribe'], ['a/+/c', 'x/y', 'x/z']]])], CTX);
    assert.equal(p.canSubscribe('a/q/c'), true);
    assert.equal(p.canSubscribe('a/+/c'), true);
    assert.equal(p.canSubscribe('a/#'), false);
    assert.equal(p.canSubscribe('+/q/c'), false);
    assert.equal(p.canSubscribe('a/+/+'), false);
    assert.equal(p.canSubscribe('x/+'), false, 'two literal grants do not cover a wildcard');
  });

  it('refuses invalid names and filters: false from the fast checks, a field error from decide', () => {
    const p = compilePolicies([policy('p', [['Allow', ['publish', 'subscribe', 'receive'], ['a/+', 'a/#']]])], CTX);
    for (const bad of ['a/+', 'a/#', 'a/\u0000', '']) assert.equal(p.can('publish', bad), false, JSON.stringify(bad));
    for (const bad of ['a/#/b', 'a/b+', '', '$share//a/b', '$share/g', '$share/g+/a']) assert.equal(p.canSubscribe(bad), false, bad);
    assert.throws(() => p.decide('publish', 'a/+', 'topic'), (e: unknown) => e instanceof KeywayError && e.fieldViolations[0]?.field === 'topic');
    assert.throws(() => p.decide('subscribe', 'a/#/b'), KeywayError);
    assert.throws(() => p.decide('connect', 'a/b'), KeywayError);
  });

  it('includes the Cloud IoT Core grants as a document that explicit Denies can take away', () => {
    const builtin = compilePolicies([CLOUD_IOT_CORE_POLICY], CTX);
    assert.equal(builtin.can('connect', 'dev-1'), true);
    assert.equal(builtin.can('connect', 'dev-2'), false);
    for (const t of ['/devices/dev-1/events', '/devices/dev-1/events/a/b', '/devices/dev-1/state'])
      assert.equal(builtin.can('publish', t), true, t);
    for (const t of ['/devices/dev-2/events', '/devices/dev-1/config', '/devices/dev-1', '/devices/dev-10/events'])
      assert.equal(builtin.can('publish', t), false, t);
    for (const f of ['/devices/dev-1/config', '/devices/dev-1/commands/#', '/devices/dev-1/commands/reboot', '/devices/dev-1/errors'])
      assert.equal(builtin.canSubscribe(f), true, f);
    for (const f of ['/devices/+/commands/#', '/devices/dev-1/#', '/devices/dev-2/config', '#'])
      assert.equal(builtin.canSubscribe(f), false, f);
    assert.equal(builtin.can('receive', '/devices/dev-1/commands'), true);
    assert.equal(builtin.can('receive', '/devices/dev-2/commands'), false);
    assert.equal(builtin.can('retain', '/devices/dev-1/state'), false, 'no retained publishes by default');
    const d = builtin.decide('publish', '/devices/dev-1/state');
    assert.ok(d.allowed && d.statement.policy === CLOUD_IOT_CORE_POLICY_NAME && d.statement.sid === 'telemetry');

    const tightened = compilePolicies([
      CLOUD_IOT_CORE_POLICY,
      policy('no-state', [
        ['Deny', ['publish'], ['/devices/${device.id}/state']],
        ['Deny', ['subscribe', 'receive'], ['/devices/${device.id}/commands/unlock']],
      ]),
    ], CTX);
    assert.equal(tightened.can('publish', '/devices/dev-1/state'), false);
    assert.equal(tightened.can('publish', '/devices/dev-1/events'), true);
    assert.equal(tightened.canSubscribe('/devices/dev-1/commands/#'), false, 'the commands/# filter would deliver unlock');
    assert.equal(tightened.canSubscribe('/devices/dev-1/commands/reboot'), true);
    assert.equal(tightened.can('receive', '/devices/dev-1/commands/unlock'), false);

    const quarantined = compilePolicies([CLOUD_IOT_CORE_POLICY, policy('q', [['Deny', ['connect'], ['#']]])], CTX);
    assert.equal(quarantined.can('connect', 'dev-1'), false);
  });

  it('resolves variables per connection', () => {
    const docs = [
      policy('p', [
        ['Allow', ['publish'], ['b/${device.metadata.building}/f/${device.metadata.floor}/t/${device.id}', 'n/${device.numId}', 'r/${registry.id}']],
        ['Allow', ['publish'], ['cn/${cert.subject.CN}/${cert.subject.OU}']],
      ]),
    ];
    const p = compilePolicies(docs, { ...CTX, certSubject: { CN: 'sensor.example', OU: 'floor3' } });
    assert.equal(p.can('publish', 'b/hq/f/3/t/dev-1'), true);
    assert.equal(p.can('publish', 'b/hq/f/4/t/dev-1'), false);
    assert.equal(p.can('publish', 'n/4242'), true);
    assert.equal(p.can('publish', 'r/reg-1'), true);
    assert.equal(p.can('publish', 'cn/sensor.example/floor3'), true);
    assert.equal(p.unresolved.length, 0);
    const jwtDevice = compilePolicies(docs, CTX);
    assert.equal(jwtDevice.can('publish', 'cn/sensor.example/floor3'), false, 'no certificate: cert variables match nothing');
    assert.deepEqual(
      jwtDevice.unresolved.map((u) => [u.statement, u.variable, u.problem]),
      [[1, 'cert.subject.CN', 'has no value']],
    );
  });
});

describe('variable injection cannot widen a grant', () => {
  const docs = [
    policy('p', [
      ['Allow', ['publish', 'subscribe', 'receive'], ['building/${device.metadata.building}/floor/${device.metadata.floor}/temp/${device.id}']],
      ['Allow', ['subscribe', 'receive'], ['${device.metadata.root}/broadcast']],
      ['Allow', ['publish'], ['certs/${cert.subject.CN}']],
    ]),
  ];
  const probeTopics = [
    'building/hq/floor/3/temp/dev-1',
    'building/other/floor/3/temp/dev-1',
    'building/hq/floor/4/temp/dev-1',
    'building/x/y/floor/3/temp/dev-1',
    'building/floor/3/temp/dev-1',
    '$SYS/broadcast',
    'certs/x',
    'certs/a/b',
  ];
  const probeFilters = ['building/#', 'building/+/floor/3/temp/dev-1', '#', '+/broadcast', '$SYS/broadcast', 'certs/#', 'certs/+'];

  /** Runs the probes for a context and returns everything that was granted. */
  function granted(ctx: PolicyContext): string[] {
    const p = compilePolicies(docs, ctx);
    return [
      ...probeTopics.filter((t) => p.can('publish', t)).map((t) => `publish ${t}`),
      ...probeTopics.filter((t) => p.can('receive', t)).map((t) => `receive ${t}`),
      ...probeFilters.filter((f) => p.canSubscribe(f)).map((f) => `subscribe ${f}`),
    ];
  }

  const hostile = ['#', '+', 'x/y', '', 'a\u0000b', 'hq/#', '+/+', 'é'.repeat(600)];

  it('a metadata value holding a wildcard, a slash, NUL, nothing or too much grants nothing', () => {
    for (const building of hostile) {
      const ctx = { ...CTX, metadata: { building, floor: '3' } };
      assert.deepEqual(granted(ctx), [], `building=${JSON.stringify(building.slice(0, 10))}`);
      const p = compilePolicies(docs, ctx);
      assert.ok(p.unresolved.some((u) => u.variable === 'device.metadata.building'), 'the refusal is reported');
    }
    for (const floor of hostile) assert.deepEqual(granted({ ...CTX, metadata: { building: 'hq', floor } }), [], `floor=${floor}`);
  });

  it('a missing metadata key, or a key named like an Object.prototype member, grants nothing', () => {
    assert.deepEqual(granted({ ...CTX, metadata: { floor: '3' } }), []);
    const proto = compilePolicies([policy('p', [['Allow', ['publish'], ['t/${device.metadata.constructor}', 't/${device.metadata.toString}']]])], CTX);
    assert.equal(proto.can('publish', 't/function Object() { [native code] }'), false);
    assert.equal(proto.unresolved.length, 2);
  });

  it('a value may not start a topic with $ (system topics)', () => {
    assert.deepEqual(granted({ ...CTX, metadata: { building: 'hq', floor: '3', root: '$SYS' } }), [
      'publish building/hq/floor/3/temp/dev-1',
      'receive building/hq/floor/3/temp/dev-1',
    ]);
    const ok = compilePolicies(docs, { ...CTX, metadata: { root: 'news' } });
    assert.equal(ok.canSubscribe('news/broadcast'), true);
  });

  it('a certificate CN or device id holding wildcards grants nothing', () => {
    const own = ['publish building/hq/floor/3/temp/dev-1', 'receive building/hq/floor/3/temp/dev-1'];
    for (const CN of ['#', '+', 'a/b', '$x'])
      assert.deepEqual(granted({ ...CTX, certSubject: { CN } }), own, `CN=${CN} adds nothing to the device's own topics`);
    const weirdId = compilePolicies([CLOUD_IOT_CORE_POLICY], { ...CTX, deviceId: 'dev+1' });
    assert.equal(weirdId.canSubscribe('/devices/+/commands/#'), false);
    assert.equal(weirdId.can('connect', 'dev+1'), false);
  });

  it('the baseline context grants exactly its own topics', () => {
    assert.deepEqual(granted({ ...CTX, certSubject: { CN: 'x' } }), [
      'publish building/hq/floor/3/temp/dev-1',
      'publish certs/x',
      'receive building/hq/floor/3/temp/dev-1',
    ]);
  });
});
