import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLoopbackListener, isLoopbackHost, parseListenAddress } from './listen-address.js';

test('HOST:PORT with IPv6 in brackets', () => {
  assert.deepEqual(parseListenAddress('x', '127.0.0.1:1884'), { host: '127.0.0.1', port: 1884 });
  assert.deepEqual(parseListenAddress('x', '[::1]:1884'), { host: '::1', port: 1884 });
  assert.deepEqual(parseListenAddress('x', 'localhost:0'), { host: 'localhost', port: 0 });
  for (const bad of ['', '1884', '::1:1884', '[127.0.0.1]:1884', '127.0.0.1:', '127.0.0.1:port', '127.0.0.1:99999']) {
    assert.throws(() => parseListenAddress('--flag', bad), /^ListenAddressError: --flag: /, bad);
  }
});

test('loopback is 127.0.0.0/8, ::1 and localhost only', () => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) {
    assert.equal(isLoopbackHost(host), true, host);
  }
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.20', '128.0.0.1', '::2', '::ffff:10.0.0.1', 'fe80::1', 'example.com', 'localhost.example', 'myhost']) {
    assert.equal(isLoopbackHost(host), false, host);
  }
  assert.throws(() => checkLoopbackListener('devOpenListener', { host: '0.0.0.0', port: 1884 }), /'0\.0\.0\.0' is not a loopback address/);
});
