import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { filterMatches, isValidFilter, isValidTopicName, TopicTrie, type QoS } from './topic-trie.js';

/** Each subscriber once, at the highest QoS among its matching filters. */
function collect<S>(trie: TopicTrie<S>, topic: string, into: Map<S, QoS>): void {
  trie.match(topic, (s, qos) => {
    const seen = into.get(s);
    if (seen === undefined || qos > seen) into.set(s, qos);
  });
}

function matches(trie: TopicTrie<string>, topic: string): Record<string, QoS> {
  const into = new Map<string, QoS>();
  collect(trie, topic, into);
  return Object.fromEntries([...into].sort());
}

describe('TopicTrie', () => {
  test('exact, + and # filters match as MQTT 3.1.1 §4.7 says', () => {
    const trie = new TopicTrie<string>();
    trie.add('a/b/c', 'exact', 0);
    trie.add('a/+/c', 'plus', 0);
    trie.add('a/#', 'hash', 0);
    trie.add('#', 'all', 0);
    trie.add('+/+', 'two', 0);
    assert.deepEqual(matches(trie, 'a/b/c'), { all: 0, exact: 0, hash: 0, plus: 0 });
    assert.deepEqual(matches(trie, 'a'), { all: 0, hash: 0 }, '# also matches the parent level');
    assert.deepEqual(matches(trie, 'a/b'), { all: 0, hash: 0, two: 0 });
    assert.deepEqual(matches(trie, 'a//c'), { all: 0, hash: 0, plus: 0 }, '+ matches an empty level');
    assert.deepEqual(matches(trie, 'b/b/c'), { all: 0 });
    assert.deepEqual(matches(trie, 'a/b/c/d'), { all: 0, hash: 0 });
  });

  test('$ topics are not matched by a leading wildcard', () => {
    const trie = new TopicTrie<string>();
    trie.add('#', 'all', 0);
    trie.add('+/x', 'plus', 0);
    trie.add('$SYS/#', 'sys', 0);
    assert.deepEqual(matches(trie, '$SYS/x'), { sys: 0 });
  });

  test('overlapping filters give one match per subscriber at the highest QoS', () => {
    const trie = new TopicTrie<string>();
    trie.add('r/#', 'backend', 0);
    trie.add('r/+/x', 'backend', 1);
    trie.add('r/a/x', 'backend', 0);
    assert.deepEqual(matches(trie, 'r/a/x'), { backend: 1 });
    assert.deepEqual(matches(trie, 'r/b'), { backend: 0 });
  });

  test('re-adding replaces the QoS; removing prunes and leaves others intact', () => {
    const trie = new TopicTrie<string>();
    trie.add('a/+', 's1', 0);
    trie.add('a/+', 's1', 1);
    trie.add('a/+', 's2', 0);
    assert.deepEqual(matches(trie, 'a/b'), { s1: 1, s2: 0 });
    assert.equal(trie.remove('a/+', 's1'), true);
    assert.equal(trie.remove('a/+', 's1'), false);
    assert.equal(trie.remove('a/#', 's2'), false);
    assert.deepEqual(matches(trie, 'a/b'), { s2: 0 });
    assert.equal(trie.remove('a/+', 's2'), true);
    assert.deepEqual(matches(trie, 'a/b'), {});
  });

  test('a delivery visits only the branches of its topic', () => {
    const trie = new TopicTrie<number>();
    for (let i = 0; i < 100_000; i++) trie.add(`registries/r${i}/devices/+/events`, i, 0);
    const into = new Map<number, QoS>();
    const started = process.hrtime.bigint();
    for (let n = 0; n < 10_000; n++) {
      into.clear();
      collect(trie, `registries/r${n}/devices/d/events`, into);
    }
    const perDeliveryNs = Number(process.hrtime.bigint() - started) / 10_000;
    assert.deepEqual([...into], [[9_999, 0]]);
    // A scan of 100 000 subscribers would take milliseconds; a walk takes about a microsecond.
    assert.ok(perDeliveryNs < 50_000, `${perDeliveryNs} ns per delivery`);
  });

  test('filterMatches agrees with the trie, $ topics included', () => {
    const filters = ['a/b/c', 'a/+/c', 'a/#', '#', '+/+', '$SYS/#', '+/x', 'a/b', 'a/+'];
    const topics = ['a/b/c', 'a', 'a/b', 'a//c', 'b/b/c', 'a/b/c/d', '$SYS/x', 'q/x'];
    for (const topic of topics) {
      const trie = new TopicTrie<string>();
      for (const f of filters) trie.add(f, f, 0);
      const viaTrie = Object.keys(matches(trie, topic)).sort();
      const direct = filters.filter((f) => filterMatches(f, topic)).sort();
      assert.deepEqual(direct, viaTrie, topic);
    }
  });

  test('topic name validity', () => {
    for (const t of ['a', '/', 'a/b', '$SYS/x']) assert.equal(isValidTopicName(t), true, t);
    for (const t of ['', 'a/+', 'a/#', 'a\u0000']) assert.equal(isValidTopicName(t), false, t);
  });

  test('filter validity', () => {
    for (const f of ['a', 'a/b', '+', '#', 'a/#', '+/+/#', '/', 'a//b']) assert.equal(isValidFilter(f), true, f);
    for (const f of ['', 'a/#/b', 'a#', '#/a', 'a/b#', 'a\u0000']) assert.equal(isValidFilter(f), false, f);
  });
});
