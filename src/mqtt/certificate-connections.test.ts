import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CertificateConnections } from './certificate-connections.js';

describe('CertificateConnections', () => {
  it('finds every connection holding any of the keys, each once', () => {
    const index = new CertificateConnections<string>();
    index.add('a', ['cert:1', 'serial:ca/1', 'cert:root']);
    index.add('b', ['cert:2', 'serial:ca/2', 'cert:root']);
    index.add('c', ['cert:3']);
    assert.deepEqual([...index.holding(['cert:1'])], ['a']);
    assert.deepEqual(new Set(index.holding(['cert:root'])), new Set(['a', 'b']));
    assert.deepEqual(new Set(index.holding(['cert:root', 'cert:1', 'cert:3'])), new Set(['a', 'b', 'c']));
    assert.equal(index.holding(['cert:unknown']).size, 0);
    assert.equal(index.holding([]).size, 0);
  });

  it('forgets a removed connection and the keys nobody holds any more', () => {
    const index = new CertificateConnections<string>();
    index.add('a', ['cert:1', 'cert:root']);
    index.add('b', ['cert:2', 'cert:root']);
    index.remove('a');
    assert.equal(index.size, 1);
    assert.equal(index.keyCount, 2);
    assert.deepEqual([...index.holding(['cert:root', 'cert:1'])], ['b']);
    index.remove('b');
    index.remove('b');
    index.remove('never-added');
    assert.equal(index.size, 0);
    assert.equal(index.keyCount, 0);
  });

  it('replaces the keys of a connection added again, and tolerates duplicate keys', () => {
    const index = new CertificateConnections<string>();
    index.add('a', ['cert:1', 'cert:1']);
    index.add('a', ['cert:2']);
    assert.equal(index.holding(['cert:1']).size, 0);
    assert.deepEqual([...index.holding(['cert:2'])], ['a']);
    index.remove('a');
    assert.equal(index.keyCount, 0);
  });
});
