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
