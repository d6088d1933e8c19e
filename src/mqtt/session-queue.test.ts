import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Message } from './message.js';
import { SessionQueue, type Queued } from './session-queue.js';
import type { QoS } from './topic-trie.js';

const entry = (payload: string, qos: QoS): Queued => ({
  message: new Message('t', Buffer.from(payload), qos, false, Infinity, undefined),
  qos,
  retain: false,
  subscriptionIds: undefined,
});

const drain = (q: SessionQueue): string[] => {
  const out: string[] = [];
  for (let e = q.shift(); e; e = q.shift()) out.push(e.message.payload.toString());
  return out;
};

describe('SessionQueue', () => {
  test('keeps order within its message bound; when full, the oldest QoS 0 makes room first', () => {
    const q = new SessionQueue(3, 1_000_000);
    assert.equal(q.push(entry('a0', 0)), true);
    assert.equal(q.push(entry('b1', 1)), true);
    assert.equal(q.push(entry('c0', 0)), true);
    assert.equal(q.push(entry('d2', 2)), true, 'a0 is dropped for it');
    assert.equal(q.push(entry('e1', 1)), true, 'c0 is dropped for it');
    assert.equal(q.length, 3);
    assert.equal(q.dropped, 2);
    assert.deepEqual(drain(q), ['b1', 'd2', 'e1']);
  });

  test('full of QoS 1 and 2: new messages are dropped and counted, never queued', () => {
    const q = new SessionQueue(2, 1_000_000);
    q.push(entry('a', 1));
    q.push(entry('b', 2));
    for (let i = 0; i < 1000; i++) assert.equal(q.push(entry(`x${i}`, 1)), false);
    assert.equal(q.length, 2);
    assert.equal(q.dropped, 1000);
    assert.deepEqual(drain(q), ['a', 'b']);
  });

  test('the byte bound holds too; a message larger than the whole bound is dropped', () => {
    const q = new SessionQueue(100, 10);
    assert.equal(q.push(entry('1234', 1)), true, '4 bytes + a 1-byte topic');
    assert.equal(q.push(entry('5678', 1)), true);
    assert.equal(q.push(entry('9', 1)), false, 'would make 12 bytes');
    assert.equal(q.push(entry('x'.repeat(20), 0)), false);
    assert.equal(q.bytes, 10);
    q.shift();
    assert.equal(q.bytes, 5);
    assert.equal(q.push(entry('9', 0)), true);
  });

  test('holes left by dropped QoS 0 messages are skipped and accounted', () => {
    const q = new SessionQueue(2, 1_000_000);
    q.push(entry('a', 1));
    q.push(entry('b', 0));
    q.push(entry('c', 1));
    assert.equal(q.length, 2);
    assert.deepEqual(drain(q), ['a', 'c']);
    assert.equal(q.length, 0);
    assert.equal(q.bytes, 0);
    assert.equal(q.shift(), undefined);
  });
});
