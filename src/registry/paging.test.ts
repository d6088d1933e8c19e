import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeywayError } from '../domain/errors.js';
import { decodePageToken, encodePageToken, pageSizeOf, toPage } from './paging.js';

const invalid = (field: string) => (e: unknown) => e instanceof KeywayError && e.fieldViolations[0]?.field === field;

describe('paging', () => {
  it('round-trips the last id through an opaque url-safe token', () => {
    const token = encodePageToken('dev-1.a+b~c%d');
    assert.match(token, /^[A-Za-z0-9_-]+$/);
    assert.equal(decodePageToken(token), 'dev-1.a+b~c%d');
    assert.equal(decodePageToken(undefined), undefined);
    assert.equal(decodePageToken(''), undefined);
  });

  it('refuses tokens it did not issue', () => {
    const forged = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    for (const bad of ['%%%', 'a'.repeat(2000), forged({ v: 1, after: "x' or 1=1 --" }), forged({ v: 1 }), forged([1]), forged({ v: 9, after: 'dev1' }), 'e30'])
      assert.throws(() => decodePageToken(bad), invalid('pageToken'), bad.slice(0, 40));
  });

  it('defaults and bounds the page size', () => {
    assert.equal(pageSizeOf({}), 100);
    assert.equal(pageSizeOf({ pageSize: 1 }), 1);
    assert.equal(pageSizeOf({ pageSize: 500 }), 500);
    for (const pageSize of [0, 501, -3, 2.5, Number.NaN]) assert.throws(() => pageSizeOf({ pageSize }), invalid('pageSize'));
  });

  it('offers a next token only when more items were found than fit', () => {
    const id = (s: string) => s;
    assert.deepEqual(toPage(['aaa', 'bbb'], 2, id), { items: ['aaa', 'bbb'] });
    const page = toPage(['aaa', 'bbb', 'ccc'], 2, id);
    assert.deepEqual(page.items, ['aaa', 'bbb']);
    assert.equal(decodePageToken(page.nextPageToken), 'bbb');
  });
});
