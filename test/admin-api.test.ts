/** The admin API over its real TLS listener: authentication, error envelopes, proto3 JSON. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { startTestServer, type TestServer } from './support/server.js';
import { deviceKeys } from './support/devices.js';
import { createRegistry, devicePathUrl, locationPath, registryPath } from './support/fixtures.js';

describe('admin API', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer();
    await createRegistry(ts, 'api');
  });
  after(() => ts.close());

  const routes: Array<[string, string, unknown?]> = [
    ['GET', `${locationPath}/registries`],
    ['POST', `${locationPath}/registries`, { id: 'x-reg' }],
    ['GET', registryPath('api')],
    ['PATCH', `${registryPath('api')}?updateMask=mqtt_config`, { mqttConfig: { mqttEnabledState: 'MQTT_ENABLED' } }],
    ['DELETE', registryPath('api')],
    ['GET', `${registryPath('api')}/devices`],
    ['POST', `${registryPath('api')}/devices`, { id: 'x-dev' }],
    ['GET', devicePathUrl('api', 'd1')],
    ['PATCH', `${devicePathUrl('api', 'd1')}?updateMask=blocked`, { blocked: true }],
    ['DELETE', devicePathUrl('api', 'd1')],
    ['POST', `${devicePathUrl('api', 'd1')}:modifyCloudToDeviceConfig`, { binaryData: '' }],
    ['POST', `${devicePathUrl('api', 'd1')}:sendCommandToDevice`, { binaryData: '' }],
    ['GET', `${devicePathUrl('api', 'd1')}/configVersions`],
    ['GET', `${devicePathUrl('api', 'd1')}/states`],
  ];
  for (const [method, path, body] of routes) {
    test(`${method} ${path.replace(locationPath, '…')} refuses a missing or wrong token with 401`, async () => {
      for (const token of [null, 'wrong', `${ts.adminToken}x`, '']) {
        const res = await ts.api(method, path, body, token);
        assert.equal(res.status, 401);
        assert.equal(res.body.error.status, 'UNAUTHENTICATED');
        assert.equal(res.body.error.code, 401);
      }
    });
  }

  test('health check needs no token', async () => {
    const res = await ts.api('GET', '/healthz', undefined, null);
    assert.equal(res.status, 200);
  });

  test('validation errors are 400 INVALID_ARGUMENT with a field violation', async () => {
    for (const [path, body, field] of [
      [`${locationPath}/registries`, { id: 'no' }, /id/],
      [`${locationPath}/registries`, { id: 'goog-registry' }, /id/],
      [`${registryPath('api')}/devices`, { id: 'dev', credentials: [{ publicKey: { format: 'ES256_PEM', key: 'not a key' } }] }, /credentials/],
      [`${registryPath('api')}/devices`, { id: 'dev', unknownField: 1 }, /unknownField/],
      [`${registryPath('api')}/devices`, { id: 'dev', metadata: { 'bad key!': 'v' } }, /metadata/],
    ] as const) {
      const res = await ts.api('POST', path, body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.status, 'INVALID_ARGUMENT');
      const violations = res.body.error.details?.[0]?.fieldViolations as Array<{ field: string }> | undefined;
      assert.ok(violations?.length, JSON.stringify(res.body));
      assert.match(violations.map((v) => v.field).join(' '), field);
    }
  });

  test('proto3 JSON: numId and versions as strings, bytes in base64, RFC 3339 times, name ends in numId', async () => {
    const keys = deviceKeys('es256');
    const created = await ts.api('POST', `${registryPath('api')}/devices`, {
      id: 'json-dev',
      credentials: [keys.credential],
      metadata: { site: 'north' },
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const d = created.body;
    assert.equal(d.id, 'json-dev');
    assert.match(d.numId, /^[1-9][0-9]+$/);
    assert.ok(d.name.endsWith(`/devices/${d.numId}`));
    assert.equal(d.config.version, '1');
    assert.ok(!Number.isNaN(Date.parse(d.config.cloudUpdateTime)));
    assert.deepEqual(d.metadata, { site: 'north' });
    const update = await ts.api('POST', `${devicePathUrl('api', d.numId)}:modifyCloudToDeviceConfig`, { binaryData: Buffer.from([1, 2, 3]).toString('base64') });
    assert.equal(update.status, 200);
    assert.equal(update.body.version, '2');
    assert.equal(update.body.binaryData, 'AQID');
    const stale = await ts.api('POST', `${devicePathUrl('api', 'json-dev')}:modifyCloudToDeviceConfig`, { versionToUpdate: '1', binaryData: '' });
    assert.equal(stale.status, 400);
    assert.equal(stale.body.error.status, 'FAILED_PRECONDITION');
    const missing = await ts.api('GET', devicePathUrl('api', 'nobody'));
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.status, 'NOT_FOUND');
    const nonEmpty = await ts.api('DELETE', registryPath('api'));
    assert.equal(nonEmpty.status, 400);
    assert.equal(nonEmpty.body.error.status, 'FAILED_PRECONDITION');
  });

  test('configuration updates faster than the registry allows get 429 RESOURCE_EXHAUSTED, and nothing is stored', async () => {
    const created = await ts.api('POST', `${registryPath('api')}/devices`, { id: 'config-rate-dev' });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    // A burst of 3 at 1 per second: within twenty quick updates, some are refused.
    const statuses: number[] = [];
    let refused: { status: number; body: { error: { status: string; message: string } } } | undefined;
    for (let i = 0; i < 20; i++) {
      const res = await ts.api('POST', `${devicePathUrl('api', 'config-rate-dev')}:modifyCloudToDeviceConfig`, { binaryData: Buffer.from(`v${i}`).toString('base64') });
      statuses.push(res.status);
      if (res.status !== 200) refused ??= res;
    }
    assert.ok(refused, `some updates refused: ${statuses.join(',')}`);
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.status, 'RESOURCE_EXHAUSTED');
    assert.match(refused.body.error.message, /more often than its limit of 1 per second/);
    const versions = await ts.api('GET', `${devicePathUrl('api', 'config-rate-dev')}/configVersions`);
    const accepted = statuses.filter((s) => s === 200).length;
    assert.equal(versions.body.deviceConfigs[0].version, String(1 + accepted), 'only the accepted updates made versions');
  });

  test('the admin listener refuses TLS below 1.2', async () => {
    await new Promise<void>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: ts.server.apiPort, ca: [ts.ca], servername: 'localhost', maxVersion: 'TLSv1.1', minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' });
      s.on('secureConnect', () => reject(new Error('TLS 1.1 accepted')));
      s.on('error', () => resolve());
    });
  });
});
