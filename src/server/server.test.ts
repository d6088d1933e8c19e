import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../config/config.js';
import { startServer } from './server.js';
import { openListenerWarning, welcome } from './serve.js';

const quiet = pino({ level: 'silent' });
const configFor = (dataDir: string) =>
  loadConfig({ env: {}, overrides: { dataDir, mqtt: { host: '127.0.0.1', port: 0 }, http: { host: '127.0.0.1', port: 0 }, api: { host: '127.0.0.1', port: 0 } } });

test('first start bootstraps the data directory; later starts reuse it', async () => {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'keyway-server-')), 'keyway-data');
  try {
    const first = await startServer(configFor(dataDir), quiet);
    await first.close();
    assert.equal(first.adminTokenCreatedAt, join(dataDir, 'admin-token'));
    assert.equal(statSync(dataDir).mode & 0o777, 0o700);
    for (const secret of ['admin-token', 'pki/ca.key', 'pki/server.key']) {
      assert.equal(statSync(join(dataDir, secret)).mode & 0o777, 0o600, secret);
    }
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const ca = readFileSync(join(dataDir, 'pki', 'ca.crt'), 'utf8');
    // The server keeps only the token's hash.
    assert.ok(!readFileSync(join(dataDir, 'keyway.db')).includes(token));

    const second = await startServer(configFor(dataDir), quiet);
    await second.close();
    assert.equal(second.adminTokenCreatedAt, undefined);
    assert.equal(readFileSync(join(dataDir, 'admin-token'), 'utf8').trim(), token);
    assert.equal(readFileSync(join(dataDir, 'pki', 'ca.crt'), 'utf8'), ca);

    // The token file is written once: losing it does not mint a new one behind the operator's back.
    unlinkSync(join(dataDir, 'admin-token'));
    const third = await startServer(configFor(dataDir), quiet);
    await third.close();
    assert.throws(() => statSync(join(dataDir, 'admin-token')));
  } finally {
    rmSync(join(dataDir, '..'), { recursive: true, force: true });
  }
});

test('the welcome text tells how to connect a first device', async () => {
  const text = welcome({
    mqttPort: 8883,
    httpPort: 8443,
    apiPort: 19443,
    apiUrl: 'https://localhost:19443',
    dataDir: join(process.cwd(), 'keyway-data'),
    caCertPath: join(process.cwd(), 'keyway-data', 'pki', 'ca.crt'),
    adminTokenCreatedAt: join(process.cwd(), 'keyway-data', 'admin-token'),
    reloadTls: async () => true,
    close: async () => undefined,
  });
  assert.match(text, /mqtts:\/\/localhost:8883/);
  assert.match(text, /https:\/\/localhost:8443\/v1\//);
  assert.match(text, /curl --cacert keyway-data\/pki\/ca\.crt .*devices\/dev1:publishEvent/s);
  assert.match(text, /export KEYWAY_API_URL=https:\/\/localhost:19443/);
  assert.match(text, /--cafile keyway-data\/pki\/ca\.crt/);
  assert.match(text, /keys jwt --private-key/);
});

test('the development open listener starts only when configured, and says loudly what it is', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'keyway-server-'));
  try {
    const closed = await startServer(configFor(dataDir), quiet);
    await closed.close();
    assert.equal(closed.openMqttPort, undefined);

    const config = loadConfig({
      env: {},
      overrides: { ...configFor(dataDir), devOpenListener: { host: '127.0.0.1', port: 0 } },
    });
    const open = await startServer(config, quiet);
    await open.close();
    assert.equal(typeof open.openMqttPort, 'number');
    assert.notEqual(open.openMqttPort, 0);
    assert.notEqual(open.openMqttPort, open.mqttPort);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
  assert.match(openListenerWarning('127.0.0.1', 1884), /^WARNING: .*mqtt:\/\/127\.0\.0\.1:1884: plaintext, anonymous, any topic\..*never use it/);
  assert.match(openListenerWarning('::1', 1884), /mqtt:\/\/\[::1\]:1884/);
});
