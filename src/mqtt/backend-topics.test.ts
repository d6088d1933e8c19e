import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { backendEventsTopic, backendFilterProblem, backendStateTopic } from './backend-topics.js';

describe('backend topics', () => {
  test('device traffic is named under its registry', () => {
    assert.equal(backendEventsTopic('fleet', 'dev-1'), 'registries/fleet/devices/dev-1/events');
    assert.equal(backendStateTopic('fleet', 'dev-1'), 'registries/fleet/devices/dev-1/state');
  });

  test('filters over events and state, with wildcards, are accepted', () => {
    for (const filter of [
      'registries/#',
      'registries/fleet/#',
      'registries/+/devices/+/events',
      'registries/fleet/devices/dev-1/events/#',
      'registries/fleet/devices/dev-1/events/alerts/+',
      'registries/fleet/devices/+/state',
      'registries/fleet/devices/dev-1/state/#',
      'registries/+/+/+/+',
      'registries/fleet/devices/a+b/events',
    ]) {
      assert.equal(backendFilterProblem(filter), undefined, filter);
    }
  });

  test('everything else is refused', () => {
    for (const filter of [
      '#',
      '+/#',
      '$SYS/#',
      '/devices/dev-1/events',
      '/devices/#',
      'registries',
      'registries/fleet',
      'registries/fleet/devices/dev-1',
      'registries/fleet/gadgets/dev-1/events',
      'registries/fleet/devices/dev-1/config',
      'registries/fleet/devices/dev-1/commands/#',
      'registries/fleet/devices/dev-1/state/sub',
      'registries/#/devices',
      'registries/fl#eet/#',
      'registries/x/#',
      'registries/fleet/devices/dev-1/events/a+b',
      'registries/fleet/devices/dev-1/events\u0000/#',
      '',
    ]) {
      assert.ok(backendFilterProblem(filter), `${JSON.stringify(filter)} should be refused`);
    }
  });
});
