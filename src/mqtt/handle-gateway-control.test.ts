import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_ATTACH_PAYLOAD_BYTES, parseAttachPayload } from './handle-gateway-control.js';

describe('attach payloads', () => {
  test("what Google's samples send means no token: empty, {}, an empty authorization", () => {
    for (const payload of ['', '{}', '{"authorization" : ""}', '{"authorization": null}', ' { } ']) {
      assert.deepEqual(parseAttachPayload(Buffer.from(payload)), { ok: true, token: undefined }, payload);
    }
  });

  test('a device JWT in authorization; other fields are ignored', () => {
    assert.deepEqual(parseAttachPayload(Buffer.from('{"authorization": "a.b.c", "other": 1}')), { ok: true, token: 'a.b.c' });
  });

  test('anything else is refused', () => {
    for (const payload of ['not json', '[]', '"a.b.c"', 'null', '{"authorization": 5}', '{"authorization": ["a"]}', "{ 'authorization' : 'a.b.c' }"]) {
      assert.equal(parseAttachPayload(Buffer.from(payload)).ok, false, payload);
    }
    const huge = Buffer.from(JSON.stringify({ authorization: 'x'.repeat(MAX_ATTACH_PAYLOAD_BYTES) }));
    assert.equal(parseAttachPayload(huge).ok, false);
  });
});
