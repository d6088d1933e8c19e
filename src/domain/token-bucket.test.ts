import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', () => {
  test('allows a burst of its capacity, then refills at its rate', () => {
    const bucket = new TokenBucket(3, 2, 0);
    assert.deepEqual([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)], [true, true, true, false]);
    assert.equal(bucket.take(400), false, '0.8 tokens after 400 ms at 2/s');
    assert.equal(bucket.take(500), true, 'one token after 500 ms');
    assert.equal(bucket.take(500), false);
  });

  test('never holds more than its capacity, and a clock going back changes nothing', () => {
    const bucket = new TokenBucket(2, 1, 0);
    assert.equal(bucket.isFull(60_000), true);
    assert.deepEqual([bucket.take(60_000), bucket.take(60_000), bucket.take(60_000)], [true, true, false]);
    assert.equal(bucket.take(59_000), false);
  });

  test('takes amounts, and an amount above the capacity only from a full bucket, leaving a debt', () => {
    const bucket = new TokenBucket(1000, 1000, 0);
    assert.equal(bucket.takeAmount(600, 0), true);
    assert.equal(bucket.takeAmount(600, 0), false, '400 left');
    assert.equal(bucket.secondsUntil(600, 0), 0.2);
    assert.equal(bucket.takeAmount(600, 200), true);
    assert.equal(bucket.takeAmount(5000, 1000), false, 'not full yet');
    assert.equal(bucket.takeAmount(5000, 1200), true, 'full: the oversize amount passes');
    assert.equal(bucket.secondsUntil(1, 1200), 4.001, 'and the debt of 4000 is paid back first');
  });

  test('retuning keeps what was used and caps what is held', () => {
    const bucket = new TokenBucket(10, 10, 0);
    for (let i = 0; i < 8; i++) bucket.take(0);
    bucket.retune(5, 1, 0);
    assert.equal(bucket.take(0), true);
    assert.equal(bucket.take(0), true);
    assert.equal(bucket.take(0), false, 'two were left, and the new capacity did not refill them');
    assert.equal(bucket.isFull(5_000), true, 'full after 5 s at 1/s');
  });
});
