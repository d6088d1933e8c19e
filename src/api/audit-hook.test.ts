import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recordable } from './audit-hook.js';

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
