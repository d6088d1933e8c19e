/** A live connection ends when its token expires (plus the 10 minute skew). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { closed, connectClient, deviceKeys, devicePath, nowSeconds, signJwt } from './support/devices.js';
import { PROJECT, REGION, createDevice, createRegistry, devicePathUrl, eventually } from './support/fixtures.js';

let ts: TestServer;
before(async () => {
  ts = await startTestServer();
  await createRegistry(ts, 'expiry');
});
after(() => ts.close());

test('token expiry closes a live connection and records UNAUTHENTICATED', async () => {
  const keys = deviceKeys('es256');
  await createDevice(ts, 'expiry', 'short-lived', keys);
  const now = nowSeconds();
  // exp is 597 s in the past: within the 600 s skew, so accepted, with 3 s to live.
  const token = signJwt(keys, { iat: now - 1200, exp: now - 597, aud: PROJECT });
  const client = await connectClient(ts.mqttPort, ts.ca, {
    clientId: devicePath(PROJECT, REGION, 'expiry', 'short-lived'),
    username: 'unused',
    password: token,
    keepalive: 60,
  });
  const started = Date.now();
  await closed(client);
  const lived = Date.now() - started;
  assert.ok(lived >= 1500 && lived < 8000, `closed after ${lived} ms`);
  const device = await eventually(async () => {
    const r = await ts.api('GET', devicePathUrl('expiry', 'short-lived'));
    assert.ok(r.body.lastErrorStatus, 'lastErrorStatus recorded');
    return r.body;
  });
  assert.equal(device.lastErrorStatus.code, 16);
  assert.match(device.lastErrorStatus.message, /token expired/);
  client.end(true);
});
