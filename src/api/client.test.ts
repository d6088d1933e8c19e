import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { ensureDevelopmentPki, type ServerTlsMaterial } from '../pki/development-ca.js';
import { AdminClient, ApiClientError, ApiConnectionError } from './client.js';
import { startTestStack, TEST_ADMIN_TOKEN, type TestStack } from './test-stack.js';

const LOCATION = { project: 'demo', location: 'europe-west1' };
const REGISTRY = { ...LOCATION, registry: 'fleet' };

async function rejects<T extends Error>(p: Promise<unknown>, type: new (...a: never[]) => T): Promise<T> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
    return e;
  }
  assert.fail(`expected ${type.name}`);
}

describe('AdminClient over HTTPS', () => {
  let dir: string;
  let pki: ServerTlsMaterial;
  let stack: TestStack;
  let baseUrl: string;
  let port: number;
  let client: AdminClient;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyway-client-'));
    pki = await ensureDevelopmentPki(dir, []);
    stack = await startTestStack({ https: { cert: pki.certPem, key: pki.keyPem } });
    await stack.api.listen({ host: '127.0.0.1', port: 0 });
    const address = stack.api.server.address();
    assert.ok(address && typeof address === 'object');
    port = address.port;
    baseUrl = `https://localhost:${port}`;
    client = new AdminClient({ baseUrl, token: TEST_ADMIN_TOKEN, ca: pki.caCertPem });
  });
  after(async () => {
    await stack.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a registry and device lifecycle', async () => {
    assert.deepEqual(await client.health(), { status: 'ok' });
    const reg = await client.createRegistry(LOCATION, { id: 'fleet', mqttConfig: { mqttEnabledState: 'MQTT_ENABLED' } });
    assert.equal(reg.name, 'projects/demo/locations/europe-west1/registries/fleet');
    assert.deepEqual((await client.listAllRegistries('projects/demo/locations/europe-west1')).map((r) => r.id), ['fleet']);

    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const dev = await client.createDevice(REGISTRY, {
      id: 'dev+1~x',
      credentials: [{ publicKey: { format: 'ES256_PEM', key } }],
      metadata: { site: 'north' },
    });
    assert.equal(dev.id, 'dev+1~x', 'ids with URL-special characters survive the path');
    const byNum = await client.getDevice({ ...REGISTRY, device: dev.numId }, ['metadata']);
    assert.deepEqual(byNum.metadata, { site: 'north' });

    const config = await client.modifyCloudToDeviceConfig({ ...REGISTRY, device: 'dev+1~x' }, Buffer.from('{"led":1}'), 1);
    assert.equal(config.version, '2');
    const versions = await client.listConfigVersions(`projects/demo/locations/europe-west1/registries/fleet/devices/${dev.numId}`);
    assert.deepEqual(versions.map((v) => v.version), ['2', '1']);
    assert.deepEqual(await client.listStates({ ...REGISTRY, device: 'dev+1~x' }), []);

    const blocked = await client.patchDevice({ ...REGISTRY, device: 'dev+1~x' }, { blocked: true }, ['blocked']);
    assert.equal(blocked.blocked, true);
    assert.deepEqual((await client.listAllDevices(REGISTRY)).map((d) => d.id), ['dev+1~x']);
    await client.deleteDevice({ ...REGISTRY, device: 'dev+1~x' });
    await client.deleteRegistry(REGISTRY);
  });

  it('throws ApiClientError with status and field violations', async () => {
    const e = await rejects(client.createRegistry(LOCATION, { id: 'x', logLevel: 'LOUD' as never }), ApiClientError);
    assert.equal(e.httpStatus, 400);
    assert.equal(e.status, 'INVALID_ARGUMENT');
    assert.equal(e.fieldViolations[0]?.field, 'logLevel');
    const missing = await rejects(client.getRegistry({ ...LOCATION, registry: 'absent' }), ApiClientError);
    assert.equal(missing.status, 'NOT_FOUND');
  });

  it('is refused with a wrong token', async () => {
    const wrong = new AdminClient({ baseUrl, token: 'not-the-token', ca: pki.caCertPem });
    const e = await rejects(wrong.listRegistries(LOCATION), ApiClientError);
    assert.equal(e.httpStatus, 401);
    assert.equal(e.status, 'UNAUTHENTICATED');
  });

  it('does not trust the server without the CA, nor under a name the certificate lacks', async () => {
    const untrusted = new AdminClient({ baseUrl, token: TEST_ADMIN_TOKEN });
    assert.equal((await rejects(untrusted.health(), ApiConnectionError)).kind, 'tls');
    const otherName = new AdminClient({ baseUrl: `https://127.0.0.2:${port}`, token: TEST_ADMIN_TOKEN, ca: pki.caCertPem });
    const e = await rejects(otherName.health(), ApiConnectionError);
    assert.ok(e.kind === 'tls' || e.kind === 'unreachable', e.message);
  });

  it('reports an unreachable API as ApiConnectionError', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const free = (server.address() as { port: number }).port;
    await new Promise<void>((r) => server.close(() => r()));
    const nobody = new AdminClient({ baseUrl: `https://localhost:${free}`, token: TEST_ADMIN_TOKEN, ca: pki.caCertPem });
    const e = await rejects(nobody.health(), ApiConnectionError);
    assert.equal(e.kind, 'unreachable');
    assert.equal(e.code, 'ECONNREFUSED');
  });

  it('refuses plain http except to loopback', () => {
    assert.throws(() => new AdminClient({ baseUrl: 'http://api.example.com', token: 't' }), /https/);
    assert.doesNotThrow(() => new AdminClient({ baseUrl: 'http://localhost:9443', token: 't' }));
  });

  it('the server refuses TLS below 1.2', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.caCertPem, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' });
      socket.on('secureConnect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.on('error', () => resolve('refused'));
    });
    assert.equal(outcome, 'refused');
  });
});
