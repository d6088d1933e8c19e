import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import type { CertificatesRevoked } from '../bus/bus.js';
import { deviceKeyAndCsr } from '../pki/device-csr.js';
import { startTestStack, TEST_ADMIN_TOKEN, type TestStack } from './test-stack.js';

const BASE = '/v1/projects/demo/locations/europe-west1/authorities';

describe('admin API: certificate authorities', () => {
  let stack: TestStack;
  const events: CertificatesRevoked[] = [];
  const call = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const res = await stack.api.inject({
      method,
      url,
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
      ...(payload !== undefined ? { payload: payload as object } : {}),
    });
    return { status: res.statusCode, type: res.headers['content-type'], raw: res.rawPayload, json: () => res.json() as Record<string, unknown> };
  };

  before(async () => {
    stack = await startTestStack();
    stack.bus.onCertificatesRevoked((e) => events.push(e));
  });
  after(() => stack.close());

  it('creates, lists and describes a root and an intermediate', async () => {
    const root = await call('POST', BASE, { id: 'root', type: 'ROOT' });
    assert.equal(root.status, 200, JSON.stringify(root.json()));
    assert.equal(root.json().keyAlgorithm, 'ECDSA_P256');
    assert.equal(root.json().keyCustody, 'ENCRYPTED');
    const int = await call('POST', BASE, { id: 'int-b1', type: 'INTERMEDIATE', parent: 'root', batch: 'B1', key_algorithm: 'rsa-2048' });
    assert.equal(int.status, 200, JSON.stringify(int.json()));
    assert.equal(int.json().parent, `${BASE.slice(4)}/root`);
    assert.equal(int.json().keyAlgorithm, 'RSA_2048');
    const list = await call('GET', BASE);
    assert.deepEqual((list.json().authorities as Array<{ id: string }>).map((a) => a.id), ['int-b1', 'root']);
    const got = await call('GET', `${BASE}/int-b1`);
    assert.equal(got.json().batch, 'B1');
    assert.equal(got.json().state, 'ACTIVE');
  });

  it('refuses bad requests with google.rpc errors', async () => {
    const missing = await call('POST', BASE, { id: 'int-2', type: 'INTERMEDIATE', parent: 'root' });
    assert.equal(missing.status, 400);
    assert.equal((missing.json().error as { status: string }).status, 'INVALID_ARGUMENT');
    const unknown = await call('POST', BASE, { id: 'x-1', type: 'ROOT', color: 'red' });
    assert.equal(unknown.status, 400);
    const dup = await call('POST', BASE, { id: 'root', type: 'ROOT' });
    assert.equal(dup.status, 409);
    assert.equal((await call('GET', `${BASE}/nope`)).status, 404);
    const badAlg = await call('POST', BASE, { id: 'r2', type: 'ROOT', keyAlgorithm: 'dsa' });
    assert.equal(badAlg.status, 400);
  });

  it('issues from a CSR, revokes, serves the CRL as PEM and DER, and publishes revocations', async () => {
    const { csrPem } = await deviceKeyAndCsr('dev1');
    const issued = await call('POST', `${BASE}/int-b1:issueCertificate`, { csr: csrPem, deviceId: 'dev1' });
    assert.equal(issued.status, 200, JSON.stringify(issued.json()));
    const body = issued.json() as { certificate: string; serialNumber: string; fingerprint: string; chain: string[] };
    assert.equal(body.chain.length, 2);
    assert.equal(new x509.X509Certificate(body.certificate).subject, 'CN=dev1');
    assert.match(body.fingerprint, /^[0-9a-f]{64}$/);

    const fromRoot = await call('POST', `${BASE}/root:issueCertificate`, { csr: csrPem, deviceId: 'dev1' });
    assert.equal(fromRoot.status, 400);
    assert.equal((fromRoot.json().error as { status: string }).status, 'FAILED_PRECONDITION');

    const revoked = await call('POST', `${BASE}/int-b1:revokeCertificate`, { serialNumber: body.serialNumber, reason: 'KEY_COMPROMISE' });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.json()));
    assert.equal(revoked.json().revokeReason, 'KEY_COMPROMISE');
    assert.ok(events.at(-1)?.keys.includes(`cert:${body.fingerprint}`));

    const pem = await call('GET', `${BASE}/int-b1/crl`);
    assert.equal(pem.status, 200);
    assert.match(String(pem.type), /application\/x-pem-file/);
    assert.match(pem.raw.toString('utf8'), /^-----BEGIN X509 CRL-----/);
    const der = await call('GET', `${BASE}/int-b1/crl?format=der`);
    assert.equal(der.status, 200);
    assert.match(String(der.type), /application\/pkix-crl/);
    const crl = new x509.X509Crl(new Uint8Array(der.raw));
    assert.deepEqual(crl.entries.map((e) => e.serialNumber.replace(/^0+/, '')), [body.serialNumber]);

    const ca = await call('POST', `${BASE}/int-b1:revoke`, { reason: 'CA_COMPROMISE' });
    assert.equal(ca.json().state, 'REVOKED');
    assert.match(events.at(-1)?.reason ?? '', /int-b1 revoked/);
    const after = await call('POST', `${BASE}/int-b1:issueCertificate`, { csr: csrPem, deviceId: 'dev1' });
    assert.equal(after.status, 400);
    assert.match((after.json().error as { message: string }).message, /revoked/);
  });

  it('needs the admin token', async () => {
    const res = await stack.api.inject({ method: 'GET', url: BASE });
    assert.equal(res.statusCode, 401);
  });
});
