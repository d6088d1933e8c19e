import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDevice, isResourceId, parseDevice, parseLocation, parseRegistry } from './names.js';
import { KeywayError } from './errors.js';

test('resource ids follow the Cloud IoT Core rule', () => {
  for (const ok of ['dev1', 'a-b.c_d+e~f%g', 'x'.repeat(255), 'Abc']) assert.ok(isResourceId(ok), ok);
  for (const bad of ['', 'ab', '1abc', 'goog-dev', 'GOOGle', 'a b c', 'abc/def', 'x'.repeat(256), 'ab#c'])
    assert.ok(!isResourceId(bad), bad);
});

test('device names round-trip and accept numeric ids', () => {
  const n = parseDevice('projects/demo/locations/europe-west1/registries/fleet/devices/dev1');
  assert.deepEqual(n, { project: 'demo', location: 'europe-west1', registry: 'fleet', device: 'dev1' });
  assert.equal(formatDevice(n), 'projects/demo/locations/europe-west1/registries/fleet/devices/dev1');
  assert.equal(parseDevice('projects/demo/locations/europe-west1/registries/fleet/devices/2820826361193805').device, '2820826361193805');
});

test('malformed names are INVALID_ARGUMENT with a field violation', () => {
  for (const bad of [
    'projects/demo/locations/europe-west1/registries/fleet',
    'projects/demo/locations/europe-west1/registries/fleet/devices/',
    'projects//locations/x/registries/fleet/devices/dev1',
    'projects/demo/locations/europe-west1/registries/goog1/devices/dev1',
    'projects/demo/locations/Europe/registries/fleet/devices/dev1',
  ]) {
    assert.throws(
      () => parseDevice(bad),
      (e: unknown) => e instanceof KeywayError && e.status === 'INVALID_ARGUMENT' && e.fieldViolations[0]?.field === 'name',
      bad,
    );
  }
  assert.throws(() => parseLocation('projects/demo'), KeywayError);
  assert.throws(() => parseRegistry('projects/demo/locations/eu/registries/ab'), KeywayError);
});
