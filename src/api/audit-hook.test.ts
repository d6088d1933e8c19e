import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changedResource, recordable } from './audit-hook.js';

describe('recordable', () => {
  it('replaces secret-looking fields at any depth and keeps the rest', () => {
    assert.deepEqual(recordable({ id: 'sa1', apiKey: 'k', nested: { privateKey: 'p', password: 'x', token: 't', pageToken: 'n' }, keys: [{ secret: 's' }] }), {
      id: 'sa1',
      apiKey: '[redacted]',
      nested: { privateKey: '[redacted]', password: '[redacted]', token: '[redacted]', pageToken: 'n' },
      keys: [{ secret: '[redacted]' }],
    });
  });

  it('summarizes large bodies by size and leaves absent ones out', () => {
    assert.deepEqual(recordable({ binaryData: 'A'.repeat(20_000) }), { truncated: true, bytes: 20_017 });
    assert.equal(recordable(undefined), undefined);
  });
});

describe('changedResource', () => {
  it('names the one resource a change acts on, never a collection', () => {
    const device = '/v1/projects/p/locations/l/registries/r/devices/d';
    assert.equal(changedResource('PATCH', device), device);
    assert.equal(changedResource('DELETE', device), device);
    assert.equal(changedResource('POST', `${device}:modifyCloudToDeviceConfig`), device);
    assert.equal(changedResource('POST', '/v1/projects/p/locations/l/authorities/int-1:revoke'), '/v1/projects/p/locations/l/authorities/int-1');
    assert.equal(changedResource('POST', '/v1/projects/p/locations/l/registries/r/devices'), undefined, 'a create: nothing before');
    assert.equal(changedResource('POST', '/v1/projects/p/locations/l/registries/r/policies:lint'), undefined, 'a verb on a collection');
    assert.equal(changedResource('POST', '/v1/audit:verify'), undefined);
    assert.equal(changedResource('GET', device), undefined);
  });
});
