import assert from 'node:assert/strict';
import { it } from 'node:test';
import { NUM_ID_LIMIT, NUM_ID_MIN, randomNumId } from './num-id.js';

it('draws 16-digit numeric ids below 2^53 that do not repeat', () => {
  const ids = Array.from({ length: 5000 }, randomNumId);
  for (const id of ids) {
    assert.match(id, /^[1-9][0-9]{15}$/);
    const n = Number(id);
    assert.ok(Number.isSafeInteger(n) && n >= NUM_ID_MIN && n < NUM_ID_LIMIT, id);
  }
  assert.equal(new Set(ids).size, ids.length);
  // Spread over the whole range, not clustered: both halves are hit.
  const mid = (NUM_ID_MIN + NUM_ID_LIMIT) / 2;
  assert.ok(ids.some((id) => Number(id) < mid) && ids.some((id) => Number(id) > mid));
});
