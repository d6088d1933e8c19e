import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ApiClientError, type AdminClient } from '../api/client.js';
import { TEST_ADMIN_TOKEN } from '../api/test-stack.js';
import type { CertificatesRevoked } from '../bus/bus.js';
import { deviceChain, issue, type TestCert } from '../../test/support/test-pki.js';
import { cliTestKit } from './cli-test-kit.js';

const PROJECT = 'demo';
const REGION = 'europe-west1';
const reg = `projects/${PROJECT}/locations/${REGION}/registries/fleet`;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('device certificates over the admin API and the CLI', () => {
  const kit = cliTestKit({ prefix: 'keyway-devcerts-cli-', env: { KEYWAY_PROJECT: PROJECT, KEYWAY_REGION: REGION } });
  const { cli, ok } = kit;
  let client: AdminClient;
  let root: TestCert;
  let batch: TestCert;
  let leaf: TestCert;
  const revoked: CertificatesRevoked[] = [];

  before(async () => {
    client = kit.client();
    ({ root, intermediate: batch, leaf } = await deviceChain('dev1'));
    await client.createRegistry(`projects/${PROJECT}/locations/${REGION}`, {
      id: 'fleet',
      credentials: [{ publicKeyCertificate: { format: 'X509_CERTIFICATE_PEM', certificate: root.pem } }],
    });
    await client.createDevice(reg, { id: 'dev1' });
    await client.createDevice(reg, { id: 'dev2' });
    await writeFile(join(kit.work, 'dev1.crt'), leaf.pem + batch.pem);
    kit.stack.bus.onCertificatesRevoked((e) => revoked.push(e));
  });

  it('registers, lists, describes, updates and deletes through the CLI', async () => {
    const fp = sha(leaf.der);
    const registered = await ok('devices certificates register --device dev1 --registry fleet --certificate-file dev1.crt --inactive');
    assert.match(registered.stderr, new RegExp(`Registered certificate \\[${fp}\\] to device \\[dev1\\] \\(INACTIVE\\)`));

    const listed = await ok('devices certificates list --device dev1 --registry fleet');
    assert.match(listed.stdout, /FINGERPRINT\s+STATE\s+SUBJECT/);
    assert.match(listed.stdout, new RegExp(`${fp}\\s+INACTIVE\\s+CN=dev1`));

    const described = await ok(`devices certificates describe ${fp} --device dev1 --registry fleet --format json`);
    const json = JSON.parse(described.stdout) as Record<string, string>;
    assert.equal(json.name, `${reg}/devices/dev1/certificates/${fp}`);
    assert.equal(json.state, 'INACTIVE');
    assert.match(json.certificatePem ?? '', /^-----BEGIN CERTIFICATE-----/);
    assert.match(json.expiryTime ?? '', /^\d{4}-\d{2}-\d{2}T/);

    await ok(`devices certificates update ${fp} --device dev1 --registry fleet --state active`);
    revoked.length = 0;
    const revokedOut = await ok(`devices certificates update ${fp} --device dev1 --registry fleet --state REVOKED`);
    assert.match(revokedOut.stderr, /is now REVOKED/);
    assert.deepEqual(revoked, [{ keys: [`cert:${fp}`], reason: 'certificate revoked' }]);

    const back = await cli(`devices certificates update ${fp} --device dev1 --registry fleet --state ACTIVE`);
    assert.notEqual(back.code, 0);
    assert.match(back.stderr, /permanent/);
    const pending = await cli(`devices certificates update ${fp} --device dev1 --registry fleet --state PENDING_ACTIVATION`);
    assert.notEqual(pending.code, 0);

    await ok(`devices certificates delete ${fp} --device dev1 --registry fleet`);
    const empty = await ok('devices certificates list --device dev1 --registry fleet');
    assert.doesNotMatch(empty.stdout, new RegExp(fp));
  });

  it('returns google.rpc errors over HTTP for refused registrations and unknown certificates', async () => {
    const ca = await client.registerDeviceCertificate(`${reg}/devices/dev2`, batch.pem).catch((e: unknown) => e);
    assert.ok(ca instanceof ApiClientError);
    assert.equal(ca.status, 'INVALID_ARGUMENT');
    assert.match(ca.message, /leaf is a CA certificate/);

    const c = await issue(batch, { subject: 'CN=dev2' });
    const created = await client.registerDeviceCertificate(`${reg}/devices/dev2`, c.pem + batch.pem);
    assert.equal(created.state, 'ACTIVE');
    const dup = await client.registerDeviceCertificate(`${reg}/devices/dev1`, c.pem + batch.pem).catch((e: unknown) => e);
    assert.ok(dup instanceof ApiClientError && dup.status === 'ALREADY_EXISTS');

    const other = await client.getDeviceCertificate(`${reg}/devices/dev1`, created.fingerprint).catch((e: unknown) => e);
    assert.ok(other instanceof ApiClientError && other.status === 'NOT_FOUND');
    const malformed = await client.getDeviceCertificate(`${reg}/devices/dev2`, 'xyz').catch((e: unknown) => e);
    assert.ok(malformed instanceof ApiClientError && malformed.status === 'INVALID_ARGUMENT');

    const res = await kit.stack.api.inject({
      method: 'PATCH',
      url: `/v1/${reg}/devices/dev2/certificates/${created.fingerprint}`,
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
      payload: { state: 'INACTIVE' },
    });
    assert.equal(res.statusCode, 400, 'updateMask is required');
    const unauth = await kit.stack.api.inject({ method: 'GET', url: `/v1/${reg}/devices/dev2/certificates` });
    assert.equal(unauth.statusCode, 401);

    const listed = await client.listDeviceCertificates(`${reg}/devices/dev2`);
    assert.deepEqual(listed.map((x) => x.fingerprint), [created.fingerprint]);
  });
});
