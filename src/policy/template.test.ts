import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CLOUD_IOT_CORE_POLICY } from './builtin.js';
import { parsePolicyDocument, type PolicyAction, type PolicyEffect } from './document.js';
import { compilePolicies, type NamedPolicyDocument } from './evaluate.js';
import { compilePolicyTemplate } from './template.js';
import type { PolicyContext } from './variables.js';

type St = [PolicyEffect, PolicyAction[], string[]];
function policy(name: string, statements: St[]): NamedPolicyDocument {
  return {
    name,
    version: 1,
    document: parsePolicyDocument({ version: '2026-01-01', statements: statements.map(([effect, actions, resources]) => ({ effect, actions, resources })) }),
  };
}

const DOCS: NamedPolicyDocument[] = [
  CLOUD_IOT_CORE_POLICY,
  policy('building', [
    ['Allow', ['publish', 'receive', 'subscribe'], ['buildings/${device.metadata.building}/+/temp', 'site/${registry.id}/#', 'fixed/topic', 'fixed/+/x']],
    ['Allow', ['publish', 'retain'], ['${device.metadata.prefix}/${device.id}', 'x${device.metadata.floor}y/z']],
    ['Allow', ['subscribe', 'receive'], ['certs/${cert.subject.CN}/#', '+/broadcast']],
    ['Deny', ['publish', 'subscribe', 'receive'], ['site/${registry.id}/secret/#', '/devices/${device.id}/events/private', 'fixed/deny']],
    ['Deny', ['receive'], ['${device.metadata.blocked}/#']],
  ]),
];

const CONTEXTS: PolicyContext[] = [
  { registryId: 'reg-1', deviceId: 'dev-1', deviceNumId: '42', metadata: {} },
  { registryId: 'reg-1', deviceId: 'dev-2', deviceNumId: '43', metadata: { building: 'hq', floor: '3', prefix: 'p', blocked: 'buildings' }, certSubject: { CN: 'dev-2' } },
  // Hostile values: wildcards, separators, '$' at the start of a topic, empty, too long.
  { registryId: 'reg-1', deviceId: 'dev-3', deviceNumId: '44', metadata: { building: '+', floor: 'a/b', prefix: '$SYS', blocked: '' }, certSubject: { CN: '#' } },
  { registryId: 'r', deviceId: 'd', deviceNumId: '1', metadata: { building: 'x'.repeat(2000), floor: '', prefix: 'ok$' }, certSubject: {} },
];

const NAMES = [
  'dev-1', 'dev-2', 'dev-3', 'd', 'dev', '', 'a/b', '+', '#',
  '/devices/dev-1/events', '/devices/dev-1/events/a/b', '/devices/dev-2/events', '/devices/dev-1/events/private', '/devices/dev-1/state',
  '/devices/dev-1/config', '/devices/dev-1/commands', '/devices/dev-1/commands/x', '/devices/dev-1/errors', '/devices/d/config',
  'buildings/hq/1/temp', 'buildings/hq/temp', 'buildings/+/1/temp', 'site/reg-1', 'site/reg-1/a', 'site/reg-1/secret', 'site/reg-1/secret/x',
  'site/r/x', 'fixed/topic', 'fixed/a/x', 'fixed/deny', 'p/dev-2', '$SYS/dev-3', 'ok$/d', 'x3y/z', 'xy/z', 'certs/dev-2', 'certs/dev-2/a',
  'certs/#/a', 'a/broadcast', '$a/broadcast', 'buildings/x', `buildings/${'x'.repeat(2000)}/1/temp`, '/devices/dev-1/events\u0000',
];
const FILTERS = [
  ...NAMES, '/devices/dev-1/commands/#', '/devices/dev-2/commands/+', 'site/reg-1/#', 'site/+/a', 'site/reg-1/+', '#', '+/#', '+/broadcast',
  'certs/dev-2/#', 'buildings/hq/+/temp', '$share/g/site/reg-1/x', '$share//x', '$share/g', 'a/#/b', 'a+/b',
];

describe('policy templates', () => {
  it('answer every check exactly as compiling each connection in full', () => {
    let allowed = 0;
    for (const docs of [[CLOUD_IOT_CORE_POLICY], DOCS, [], DOCS.slice(1)]) {
      const template = compilePolicyTemplate(docs);
      for (const ctx of CONTEXTS) {
        const full = compilePolicies(docs, ctx);
        const bound = template.bind(ctx);
        for (const action of ['connect', 'publish', 'receive', 'retain'] as const)
          for (const name of NAMES) {
            assert.equal(bound.can(action, name), full.can(action, name), `${action} ${name} for ${ctx.deviceId}`);
            if (full.can(action, name)) allowed++;
          }
        for (const filter of FILTERS) {
          assert.equal(bound.canSubscribe(filter), full.canSubscribe(filter), `subscribe ${filter} for ${ctx.deviceId}`);
          if (full.canSubscribe(filter)) allowed++;
        }
        assert.deepEqual(bound.unresolved, full.unresolved);
        assert.deepEqual(bound.decide('publish', 'site/reg-1/a'), full.decide('publish', 'site/reg-1/a'));
        assert.throws(() => bound.decide('publish', 'a/+'), /topic name/);
      }
    }
    assert.ok(allowed > 50, `the cases grant something (${allowed})`);
  });

  it('a value that is unsafe only where it starts the topic is refused there alone', () => {
    const docs = [policy('p', [['Allow', ['publish'], ['${device.metadata.a}/x', 'y/${device.metadata.a}']]])];
    const bound = compilePolicyTemplate(docs).bind({ registryId: 'r', deviceId: 'd', deviceNumId: '1', metadata: { a: '$SYS' } });
    assert.equal(bound.can('publish', '$SYS/x'), false, "a variable may not start a topic with '$'");
    assert.equal(bound.can('publish', 'y/$SYS'), true);
  });

  it('says whether a certificate subject is needed', () => {
    assert.equal(compilePolicyTemplate([CLOUD_IOT_CORE_POLICY]).usesCertSubject, false);
    assert.equal(compilePolicyTemplate(DOCS).usesCertSubject, true);
  });
});
