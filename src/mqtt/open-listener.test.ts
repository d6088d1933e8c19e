import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isKeywayError } from '../domain/errors.js';
import { assertLoopback, isLoopbackHost } from './open-listener.js';

describe('open listener host', () => {
  test('loopback only: 127.0.0.0/8, ::1 and localhost', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) {
      assert.equal(isLoopbackHost(host), true, host);
    }
    for (const host of ['0.0.0.0', '::', '', '10.0.0.1', '192.168.1.10', '128.0.0.1', '::ffff:10.0.0.1', '127.0.0.1.example.com', 'localhost.example.com', 'example.com', '1.127.0.0']) {
      assert.equal(isLoopbackHost(host), false, host);
    }
  });

  test('anything else is refused with INVALID_ARGUMENT', () => {
    assert.throws(() => assertLoopback('0.0.0.0'), (e: unknown) => isKeywayError(e) && e.status === 'INVALID_ARGUMENT');
    assert.doesNotThrow(() => assertLoopback('127.0.0.1'));
  });
});
