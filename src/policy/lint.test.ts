import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePolicyDocument, type PolicyAction, type PolicyEffect } from './document.js';
import { hasLintErrors, lintPolicyDocument } from './lint.js';

const lint = (effect: PolicyEffect, actions: PolicyAction[], resources: string[]): string[] =>
  lintPolicyDocument(parsePolicyDocument({ version: '2026-01-01', statements: [{ effect, actions, resources }] })).map(
    (f) => `${f.severity} ${f.code} ${f.resource}`,
  );

describe('policy lint', () => {
  it('flags wildcards at the root', () => {
    assert.deepEqual(lint('Allow', ['publish', 'subscribe', 'receive'], ['#']), ['error ALLOW_ALL_ACTIONS_ON_ALL_TOPICS #']);
    assert.deepEqual(lint('Allow', ['subscribe'], ['#', '+/#', '/#', '+/+/#']), [
      'error ROOT_WILDCARD #',
      'error ROOT_WILDCARD +/#',
      'error ROOT_WILDCARD /#',
      'error ROOT_WILDCARD +/+/#',
    ]);
  });

  it("flags publish on other devices' Cloud IoT Core topics", () => {
    assert.deepEqual(lint('Allow', ['publish'], ['/devices/+/events', '/devices/#', '+/devices/+/state', '/devices/d2/events']), [
      'error PUBLISH_OTHER_DEVICE /devices/+/events',
      'error PUBLISH_OTHER_DEVICE /devices/#',
      'error PUBLISH_OTHER_DEVICE +/devices/+/state',
      'error PUBLISH_OTHER_DEVICE /devices/d2/events',
    ]);
    assert.deepEqual(lint('Allow', ['retain'], ['/+/+/state']), ['error PUBLISH_OTHER_DEVICE /+/+/state']);
    assert.deepEqual(lint('Allow', ['publish'], ['/devices/${device.metadata.peer}/commands']), [
      'error PUBLISH_OTHER_DEVICE /devices/${device.metadata.peer}/commands',
    ]);
  });

  it('flags wildcards that span devices when reading', () => {
    assert.deepEqual(lint('Allow', ['subscribe', 'receive'], ['/devices/+/commands/#', 'devices/+/telemetry', 'fleet/things/#']), [
      'error SPANS_DEVICES /devices/+/commands/#',
      'error SPANS_DEVICES devices/+/telemetry',
      'error SPANS_DEVICES fleet/things/#',
    ]);
    assert.deepEqual(lint('Allow', ['receive'], ['/devices/d2/config']), ['warning OTHER_DEVICE_TOPICS /devices/d2/config']);
  });

  it('flags publish without a per-device variable', () => {
    assert.deepEqual(lint('Allow', ['publish'], ['building/+/temp/+', 'site/${device.metadata.site}/#']), [
      'error WILDCARD_PUBLISH building/+/temp/+',
      'error WILDCARD_PUBLISH site/${device.metadata.site}/#',
    ]);
    assert.deepEqual(lint('Allow', ['publish'], ['alarms/${registry.id}']), ['warning NO_DEVICE_VARIABLE alarms/${registry.id}']);
    assert.deepEqual(lint('Allow', ['subscribe'], ['news/+']), ['warning NO_DEVICE_VARIABLE news/+']);
  });

  it('accepts per-device resources, scoped reads and any Deny', () => {
    assert.deepEqual(lint('Allow', ['publish'], ['t/${device.id}/#', 'n/${device.numId}', 'c/${cert.subject.CN}/+', '/devices/${device.id}/events/#']), []);
    assert.deepEqual(lint('Allow', ['subscribe', 'receive'], ['b/${device.metadata.building}/+', 'news']), []);
    assert.deepEqual(lint('Deny', ['publish', 'subscribe', 'receive', 'retain'], ['#', '/devices/+/#']), []);
    assert.deepEqual(lint('Allow', ['connect'], ['+']), [], 'connect is bound to the authenticated device anyway');
  });

  it('reports statement index, sid and severity', () => {
    const findings = lintPolicyDocument(
      parsePolicyDocument({
        version: '2026-01-01',
        statements: [
          { effect: 'Allow', actions: ['publish'], resources: ['t/${device.id}'] },
          { sid: 'oops', effect: 'Allow', actions: ['subscribe'], resources: ['#'] },
        ],
      }),
    );
    assert.equal(findings.length, 1);
    assert.equal(findings[0]?.statement, 1);
    assert.equal(findings[0]?.sid, 'oops');
    assert.match(findings[0]?.message ?? '', /every topic/);
    assert.equal(hasLintErrors(findings), true);
    assert.equal(hasLintErrors([]), false);
  });
});
