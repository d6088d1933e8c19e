import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fifo } from './fifo.js';

test('Fifo keeps order across compactions', () => {
  const q = new Fifo<number>();
  let next = 0;
  let expected = 0;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 100; i++) q.push(next++);
    for (let i = 0; i < 90; i++) {
      assert.equal(q.peek(), expected);
      assert.equal(q.shift(), expected++);
    }
  }
  assert.equal(q.length, next - expected);
  while (q.length > 0) assert.equal(q.shift(), expected++);
  assert.equal(q.shift(), undefined);
  assert.equal(q.peek(), undefined);
  q.push(1);
  q.clear();
  assert.equal(q.length, 0);
});
