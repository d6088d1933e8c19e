import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Message } from './message.js';
import { RetainedStore } from './retained-store.js';

const retained = (topic: string, payload: string, expiresAt = Infinity): Message =>
  new Message(topic, Buffer.from(payload), 1, true, expiresAt, undefined);

const matching = (store: RetainedStore, filter: string, now = 0): string[] => {
  const out: string[] = [];
  store.forEachMatching(filter, now, (m) => out.push(`${m.topic}=${m.payload.toString()}`));
  return out.sort();
};

describe('RetainedStore', () => {
  test('one message per topic, replaced by the next, deleted by an empty payload', () => {
    const store = new RetainedStore(10, 1000);
    store.retain(retained('a/b', '1'));
    store.retain(retained('a/c', '2'));
    store.retain(retained('a/b', '3'));
    assert.deepEqual(matching(store, 'a/+'), ['a/b=3', 'a/c=2']);
    assert.equal(store.retain(retained('a/b', '')), false);
    assert.deepEqual(matching(store, '#'), ['a/c=2']);
    assert.equal(store.size, 1);
    assert.equal(store.bytes, 4);
  });

  test('$ topics are not matched by leading wildcards', () => {
    const store = new RetainedStore(10, 1000);
    store.retain(retained('$SYS/x', '1'));
    assert.deepEqual(matching(store, '#'), []);
    assert.deepEqual(matching(store, '$SYS/#'), ['$SYS/x=1']);
  });

  test('bounded in count and bytes: a new topic over a bound is refused and counted, a replacement fits', () => {
    const store = new RetainedStore(2, 100);
    assert.equal(store.retain(retained('a', '1')), true);
    assert.equal(store.retain(retained('b', '1')), true);
    assert.equal(store.retain(retained('c', '1')), false);
    assert.equal(store.retain(retained('a', '2')), true, 'replacing keeps the count');
    assert.equal(store.retain(retained('b', 'x'.repeat(200))), false);
    assert.equal(store.refused, 2);
    assert.deepEqual(matching(store, '+'), ['a=2', 'b=1']);
  });

  test('expired retained messages are not sent and are deleted', () => {
    const store = new RetainedStore(10, 1000);
    store.retain(retained('a', '1', 5_000));
    assert.deepEqual(matching(store, 'a', 4_999), ['a=1']);
    assert.deepEqual(matching(store, 'a', 5_000), []);
    assert.equal(store.size, 0);
  });
});
