import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig } from './config.js';

test('defaults serve on the Keyway ports with ./keyway-data', () => {
  const c = loadConfig({ env: {} });
  assert.equal(c.mqtt.port, 8883);
  assert.equal(c.api.port, 9443);
  assert.equal(c.dataDir, resolve('keyway-data'));
  assert.deepEqual(c.hostnames, []);
});

test('file, then KEYWAY_* variables, then overrides', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-config-'));
  const file = join(dir, 'keyway.json');
  writeFileSync(file, JSON.stringify({ mqtt: { port: 1000, host: '127.0.0.1' }, api: { port: 2000 }, hostnames: ['a.example'] }));
  const c = loadConfig({ file, env: { KEYWAY_API_PORT: '3000', KEYWAY_HOSTNAMES: 'b.example, 10.0.0.1' }, overrides: { mqtt: { port: 0 } } });
  assert.deepEqual(c.mqtt, { host: '127.0.0.1', port: 0 });
  assert.equal(c.api.port, 3000);
  assert.deepEqual(c.hostnames, ['b.example', '10.0.0.1']);
});

test('bad values are refused with a message naming them', () => {
  assert.throws(() => loadConfig({ env: { KEYWAY_MQTT_PORT: '70000' } }), (e: unknown) => e instanceof ConfigError && /KEYWAY_MQTT_PORT/.test(e.message));
  assert.throws(() => loadConfig({ env: { KEYWAY_LOG_LEVEL: 'loud' } }), ConfigError);
  assert.throws(() => loadConfig({ env: { KEYWAY_TLS_CERT: '/x.pem' } }), /go together/);
  assert.throws(() => loadConfig({ file: '/nonexistent/keyway.json', env: {} }), /cannot read/);
  const dir = mkdtempSync(join(tmpdir(), 'keyway-config-'));
  writeFileSync(join(dir, 'bad.json'), '[1,2]');
  assert.throws(() => loadConfig({ file: join(dir, 'bad.json'), env: {} }), /not a JSON object/);
});

test('the development open listener is absent by default and set from the file, KEYWAY_DEV_OPEN_LISTENER or overrides', () => {
  assert.equal(loadConfig({ env: {} }).devOpenListener, undefined);
  const dir = mkdtempSync(join(tmpdir(), 'keyway-config-'));
  const objectFile = join(dir, 'object.json');
  writeFileSync(objectFile, JSON.stringify({ devOpenListener: { host: '127.0.0.1', port: 1884 } }));
  assert.deepEqual(loadConfig({ file: objectFile, env: {} }).devOpenListener, { host: '127.0.0.1', port: 1884 });
  const stringFile = join(dir, 'string.json');
  writeFileSync(stringFile, JSON.stringify({ devOpenListener: '[::1]:1885' }));
  assert.deepEqual(loadConfig({ file: stringFile, env: {} }).devOpenListener, { host: '::1', port: 1885 });
  assert.deepEqual(loadConfig({ env: { KEYWAY_DEV_OPEN_LISTENER: '127.0.0.1:1884' } }).devOpenListener, { host: '127.0.0.1', port: 1884 });
  assert.deepEqual(loadConfig({ env: { KEYWAY_DEV_OPEN_LISTENER: 'localhost:0' } }).devOpenListener, { host: 'localhost', port: 0 });
  assert.deepEqual(
    loadConfig({ file: objectFile, env: {}, overrides: { devOpenListener: { host: '127.0.0.2', port: 0 } } }).devOpenListener,
    { host: '127.0.0.2', port: 0 },
  );
});

test('the development open listener is refused outside loopback', () => {
  const refused = (e: unknown): boolean => e instanceof ConfigError && /not a loopback address/.test(e.message);
  for (const address of ['0.0.0.0:1884', '192.168.1.20:1884', 'broker.example.com:1884', '[::]:1884', '[fe80::1]:1884', 'localhost.example:1884']) {
    assert.throws(() => loadConfig({ env: { KEYWAY_DEV_OPEN_LISTENER: address } }), refused, address);
  }
  assert.throws(() => loadConfig({ env: {}, overrides: { devOpenListener: { host: '10.0.0.1', port: 1884 } } }), refused);
  const dir = mkdtempSync(join(tmpdir(), 'keyway-config-'));
  const file = join(dir, 'open.json');
  writeFileSync(file, JSON.stringify({ devOpenListener: { host: '0.0.0.0', port: 1884 } }));
  assert.throws(() => loadConfig({ file, env: {} }), refused);
  assert.throws(() => loadConfig({ env: { KEYWAY_DEV_OPEN_LISTENER: '127.0.0.1' } }), /not HOST:PORT/);
  assert.throws(() => loadConfig({ env: { KEYWAY_DEV_OPEN_LISTENER: '127.0.0.1:70000' } }), /not a TCP port/);
  assert.throws(() => loadConfig({ env: {}, overrides: { devOpenListener: { host: '127.0.0.1', port: -1 } } }), /not a TCP port/);
});

test('broker limits come from the file; values that are not numbers are refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-config-'));
  const file = join(dir, 'limits.json');
  writeFileSync(file, JSON.stringify({ mqttLimits: { connectsPerSecond: 200, maxConnections: 5000 } }));
  assert.deepEqual(loadConfig({ file, env: {} }).mqttLimits, { connectsPerSecond: 200, maxConnections: 5000 });
  assert.deepEqual(loadConfig({ env: {} }).mqttLimits, {});
  const bad = join(dir, 'bad-limits.json');
  writeFileSync(bad, JSON.stringify({ mqttLimits: { connectsPerSecond: '200' } }));
  assert.throws(() => loadConfig({ file: bad, env: {} }), (e: unknown) => e instanceof ConfigError && /mqttLimits\.connectsPerSecond/.test(e.message));
});

test('the device HTTPS listener asks for client certificates unless told not to, from the file, KEYWAY_HTTP_CLIENT_CERTIFICATES or overrides', () => {
  assert.deepEqual(loadConfig({ env: {} }).http, { host: '0.0.0.0', port: 8443, clientCertificates: 'request' });
  const dir = mkdtempSync(join(tmpdir(), 'keyway-config-'));
  const file = join(dir, 'http.json');
  writeFileSync(file, JSON.stringify({ http: { clientCertificates: 'off' } }));
  assert.deepEqual(loadConfig({ file, env: {} }).http, { host: '0.0.0.0', port: 8443, clientCertificates: 'off' }, 'the file sets it, the rest stays');
  assert.equal(loadConfig({ file, env: { KEYWAY_HTTP_CLIENT_CERTIFICATES: 'request' } }).http.clientCertificates, 'request', 'the variable wins over the file');
  assert.equal(loadConfig({ env: { KEYWAY_HTTP_CLIENT_CERTIFICATES: 'off' } }).http.clientCertificates, 'off');
  assert.deepEqual(
    loadConfig({ env: { KEYWAY_HTTP_CLIENT_CERTIFICATES: 'off', KEYWAY_HTTP_PORT: '8444' } }).http,
    { host: '0.0.0.0', port: 8444, clientCertificates: 'off' },
  );
  assert.equal(loadConfig({ file, env: {}, overrides: { http: { port: 0 } } }).http.clientCertificates, 'off', 'a port override keeps it');
  assert.equal(loadConfig({ env: {}, overrides: { http: { clientCertificates: 'off' } } }).http.clientCertificates, 'off');
});

test('a client certificate mode other than request or off is refused, naming the setting', () => {
  const named = (name: string) => (e: unknown): boolean =>
    e instanceof ConfigError && e.message.startsWith(`${name}: `) && /'request'/.test(e.message) && /'off'/.test(e.message);
  for (const value of ['require', 'OFF', 'true', ' off']) {
    assert.throws(() => loadConfig({ env: { KEYWAY_HTTP_CLIENT_CERTIFICATES: value } }), named('KEYWAY_HTTP_CLIENT_CERTIFICATES'), value);
  }
  const dir = mkdtempSync(join(tmpdir(), 'keyway-config-'));
  for (const value of ['required', false, null, 1, ['off']]) {
    const file = join(dir, 'bad-http.json');
    writeFileSync(file, JSON.stringify({ http: { clientCertificates: value } }));
    assert.throws(() => loadConfig({ file, env: {} }), named('http.clientCertificates'), JSON.stringify(value));
  }
  assert.throws(() => loadConfig({ env: {}, overrides: { http: { clientCertificates: 'none' as 'off' } } }), named('http.clientCertificates'));
  assert.throws(() => loadConfig({ env: { KEYWAY_HTTP_PORT: '99999' } }), /KEYWAY_HTTP_PORT/);
  assert.throws(() => loadConfig({ env: {}, overrides: { http: { host: '' } } }), /http\.host/);
});
