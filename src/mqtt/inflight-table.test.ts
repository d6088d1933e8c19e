import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InflightTable } from './inflight-table.js';

const entry = (seq: number) => ({ seq });

describe('InflightTable', () => {
  test('sets, gets, deletes and counts by packet id across the whole id space', () => {
    const table = new InflightTable<{ seq: number }>();
    for (const id of [1, 1023, 1024, 1025, 65535]) table.set(id, entry(id));
    assert.equal(table.size, 5);
    assert.equal(table.get(1024)?.seq, 1024);
    assert.equal(table.has(2), false);
    table.set(1024, entry(7));
    assert.equal(table.size, 5, 'replacing an entry does not count twice');
    assert.equal(table.delete(1024), true);
    assert.equal(table.delete(1024), false);
    assert.equal(table.get(1024), undefined);
    assert.equal(table.size, 4);
    table.clear();
    assert.equal(table.size, 0);
    assert.equal(table.get(65535), undefined);
  });

  test('lists entries in the order they were sent, across the wrap of packet ids', () => {
    const table = new InflightTable<{ seq: number }>();
    table.set(65534, entry(1));
    table.set(65535, entry(2));
    table.set(1, entry(3));
    table.set(2, entry(4));
    table.delete(65535);
    table.set(65535, entry(5));
    assert.deepEqual(
      table.inOrder().map(([id]) => id),
      [65534, 1, 2, 65535],
    );
  });
});

test('InflightTable keeps the page ids are taken from and drops pages left behind once empty', () => {
  const table = new InflightTable<{ seq: number }>();
  table.set(5, entry(1));
  table.delete(5);
  table.set(6, entry(2));
  table.delete(6);
  assert.equal(table.size, 0);
  table.set(1030, entry(3));
  table.delete(1030);
  assert.equal(table.get(5), undefined);
  assert.deepEqual(table.inOrder(), []);
});

test('InflightTable holds at most the pages in use plus the current one', () => {
  const table = new InflightTable<{ seq: number }>();
  let seq = 0;
  // A trickle: every message acknowledged before the next, over the whole id space twice.
  for (let round = 0; round < 2; round++) {
    for (let id = 1; id <= 0xffff; id++) {
      table.set(id, entry(++seq));
      table.delete(id);
    }
  }
  assert.equal(table.pagesAllocated, 1);
});
