import assert from 'node:assert/strict';
import { createHash, webcrypto } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import type { LightMyRequestResponse } from 'fastify';
import type { CertificatesRevoked } from '../bus/bus.js';
import { certificateKey, serialKey } from '../domain/certificate-keys.js';
import { RegistryRevocations } from '../registry/registry-revocations.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import { issue, makeRoot, type TestCert } from '../../test/support/test-pki.js';
import { startTestStack, TEST_ADMIN_TOKEN, type TestStack } from './test-stack.js';
import type { ApiDevice, ApiDeviceRegistry, ApiErrorEnvelope, ApiUploadCrlResponse } from './wire-types.js';

const AUTH = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
const LOC = '/v1/projects/demo/locations/europe-west1';
const DAY = 86_400_000;
const crypto = webcrypto as unknown as Crypto;

const caCredential = (c: TestCert, provisioningTemplate?: object) => ({
  publicKeyCertificate: { format: 'X509_CERTIFICATE_PEM', certificate: c.pem },
  ...(provisioningTemplate ? { provisioningTemplate } : {}),
});
const deviceCredential = (c: TestCert, format = 'ES256_X509_PEM') => ({ publicKey: { format, key: c.pem } });
const json = <T>(r: LightMyRequestResponse): T => JSON.parse(r.body) as T;
const spkiSha256 = (c: TestCert): string =>
  createHash('sha256').update(Buffer.from(c.cert.publicKey.rawData)).digest('hex');

/** A CRL signed by `ca`, with a CRL number extension when `number` is given. */
async function makeCrl(ca: TestCert, serials: readonly string[], number?: number): Promise<string> {
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer: ca.cert.subject,
      thisUpdate: new Date(Date.now() - 1000),
      nextUpdate: new Date(Date.now() + DAY),
      signingKey: ca.signingKey,
      signingAlgorithm: ca.signingKey.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : ca.signingKey.algorithm,
      entries: serials.map((serialNumber) => ({ serialNumber, revocationDate: new Date(Date.now() - 2000) })),
      ...(number !== undefined
        ? { extensions: [new x509.Extension('2.5.29.20', false, new Uint8Array([0x02, 0x01, number]))] }
        : {}),
    },
    crypto,
  );
  return crl.toString('pem');
}

describe('registry trust over the admin API', () => {
  let stack: TestStack;
  let root: TestCert;
  let other: TestCert;
  const revoked: CertificatesRevoked[] = [];
  const call = (method: string, url: string, payload?: unknown) =>
    stack.api.inject({
      method: method as 'GET',
      url,
      headers: AUTH,
      ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
    });

  function violation(r: LightMyRequestResponse, field: string, pattern: RegExp): void {
    assert.equal(r.statusCode, 400, r.body);
    const body = json<ApiErrorEnvelope>(r);
    assert.equal(body.error.status, 'INVALID_ARGUMENT', r.body);
    const v = body.error.details?.[0]?.fieldViolations?.find((f) => f.field === field);
    assert.ok(v, `expected a violation of '${field}' in ${r.body}`);
    assert.match(v.description, pattern);
  }

  before(async () => {
    stack = await startTestStack();
    stack.bus.onCertificatesRevoked((e) => revoked.push(e));
    root = await makeRoot({ subject: 'C=FR, O=Acme, CN=Acme Devices CA' });
    other = await makeRoot({ subject: 'CN=Other CA', key: 'rsa2048' });
  });
  after(() => stack.close());

  it('creates a registry with CA credentials and reports their details', async () => {
    const r = await call('POST', `${LOC}/registries`, {
      id: 'trusting',
      credentials: [caCredential(root, { deviceId: 'sensor-${SerialNumber}', metadata: { org: '${Organization}' }, configData: 'e30=' })],
      deviceAuthMethod: 'CERTIFICATE_ONLY',
    });
    assert.equal(r.statusCode, 200, r.body);
    const reg = json<ApiDeviceRegistry>(r);
    assert.equal(reg.deviceAuthMethod, 'CERTIFICATE_ONLY');
    const got = json<ApiDeviceRegistry>(await call('GET', `${LOC}/registries/trusting`));
    const d = got.credentials?.[0]?.publicKeyCertificate.x509Details;
    assert.equal(d?.subject, 'CN=Acme Devices CA,O=Acme,C=FR');
    assert.equal(d?.issuer, 'CN=Acme Devices CA,O=Acme,C=FR');
    assert.equal(d?.publicKeyType, 'EC P-256');
    assert.equal(d?.signatureAlgorithm, 'SHA256withECDSA');
    assert.match(d?.expiryTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(got.credentials?.[0]?.provisioningTemplate, {
      deviceId: 'sensor-${SerialNumber}',
      metadata: { org: '${Organization}' },
      configData: 'e30=',
    });
    // A registry without the field defaults to JWT_OR_CERTIFICATE.
    const plain = json<ApiDeviceRegistry>(await call('POST', `${LOC}/registries`, { id: 'plain' }));
    assert.equal(plain.deviceAuthMethod, 'JWT_OR_CERTIFICATE');
    assert.equal(plain.credentials, undefined);
  });

  describe('refuses registry CA credentials that cannot be trusted', () => {
    const F = 'deviceRegistry.credentials[0].publicKeyCertificate.certificate';
    it('not a CA', async () => {
      const leaf = await issue(root, { subject: 'CN=leaf' });
      violation(await call('POST', `${LOC}/registries`, { id: 'r-leaf', credentials: [caCredential(leaf)] }), F, /not a CA certificate/);
      const noBc = await makeRoot({ noBasicConstraints: true });
      violation(await call('POST', `${LOC}/registries`, { id: 'r-nobc', credentials: [caCredential(noBc)] }), F, /not a CA/);
    });
    it('a weak or unsupported key', async () => {
      const weak = await makeRoot({ key: 'rsa1024' });
      violation(await call('POST', `${LOC}/registries`, { id: 'r-weak', credentials: [caCredential(weak)] }), F, /1024 bits/);
      const p384 = await makeRoot({ key: 'p384' });
      violation(await call('POST', `${LOC}/registries`, { id: 'r-p384', credentials: [caCredential(p384)] }), F, /P-384/);
    });
    it('expired', async () => {
      const old = await makeRoot({ notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
      violation(await call('POST', `${LOC}/registries`, { id: 'r-old', credentials: [caCredential(old)] }), F, /expired at/);
    });
    it('more than 10', async () => {
      const many = await Promise.all(Array.from({ length: 11 }, () => makeRoot()));
      const r = await call('POST', `${LOC}/registries`, { id: 'r-many', credentials: many.map((c) => caCredential(c)) });
      assert.equal(r.statusCode, 400, r.body);
      assert.match(r.body, /credentials/);
    });
    it('a provisioning template naming an unknown field', async () => {
      violation(
        await call('POST', `${LOC}/registries`, { id: 'r-tpl', credentials: [caCredential(root, { deviceId: '${CommonNmae}' })] }),
        'deviceRegistry.credentials[0].provisioningTemplate.deviceId',
        /unknown certificate field 'CommonNmae'; allowed: CommonName/,
      );
      violation(
        await call('POST', `${LOC}/registries`, { id: 'r-tpl', credentials: [caCredential(root, { deviceId: 'fixed-id' })] }),
        'deviceRegistry.credentials[0].provisioningTemplate.deviceId',
        /same for every device/,
      );
    });
    it('the same CA twice, or a private key', async () => {
      violation(
        await call('POST', `${LOC}/registries`, { id: 'r-dup', credentials: [caCredential(root), caCredential(root)] }),
        'deviceRegistry.credentials[1].publicKeyCertificate.certificate',
        /same certificate/,
      );
      const r = await call('POST', `${LOC}/registries`, {
        id: 'r-key',
        credentials: [{ publicKeyCertificate: { format: 'X509_CERTIFICATE_PEM', certificate: root.keyPem } }],
      });
      violation(r, F, /private key/);
      assert.doesNotMatch(r.body, /BEGIN PRIVATE KEY|MII/);
    });
  });

  describe('device credentials in a registry with CAs', () => {
    const DEV = `${LOC}/registries/trusting/devices`;
    const F = 'device.credentials[0].publicKey.key';

    it('accepts a certificate the registry CA signed', async () => {
      const cert = await issue(root, { subject: 'CN=dev-ok' });
      const r = await call('POST', DEV, { id: 'dev-ok', credentials: [deviceCredential(cert)] });
      assert.equal(r.statusCode, 200, r.body);
    });

    it('refuses a bare public key', async () => {
      const cert = await issue(root, { subject: 'CN=dev' });
      const pub = cert.cert.publicKey.toString('pem');
      violation(
        await call('POST', DEV, { id: 'dev-bare', credentials: [{ publicKey: { format: 'ES256_PEM', key: pub } }] }),
        'device.credentials[0].publicKey.format',
        /RSA_X509_PEM or ES256_X509_PEM/,
      );
    });

    it('refuses a certificate another CA signed', async () => {
      const cert = await issue(other, { subject: 'CN=dev' });
      violation(await call('POST', DEV, { id: 'dev-other', credentials: [deviceCredential(cert)] }), F, /not signed directly/);
    });

    it('refuses a certificate signed by an intermediate only', async () => {
      const mid = await issue(root, { subject: 'CN=Batch CA', ca: true });
      const cert = await issue(mid, { subject: 'CN=dev' });
      violation(await call('POST', DEV, { id: 'dev-mid', credentials: [deviceCredential(cert)] }), F, /not signed directly/);
    });

    it('refuses the registry CA itself, and an expired certificate', async () => {
      violation(await call('POST', DEV, { id: 'dev-ca', credentials: [deviceCredential(root)] }), F, /is one of the registry CA/);
      const old = await issue(root, { subject: 'CN=dev', notBefore: new Date(Date.now() - 5 * DAY), notAfter: new Date(Date.now() - DAY) });
      violation(await call('POST', DEV, { id: 'dev-old', credentials: [deviceCredential(old)] }), F, /expired at/);
    });

    it('judges only credentials a patch adds', async () => {
      const ok = await issue(root, { subject: 'CN=dev-ok' });
      const foreign = await issue(other, { subject: 'CN=x' });
      const existing = json<ApiDevice>(await call('GET', `${DEV}/dev-ok`)).credentials ?? [];
      const added = await call('PATCH', `${DEV}/dev-ok?updateMask=credentials`, {
        credentials: [...existing, deviceCredential(ok)],
      });
      assert.equal(added.statusCode, 200, added.body);
      violation(
        await call('PATCH', `${DEV}/dev-ok?updateMask=credentials`, { credentials: [...existing, deviceCredential(foreign)] }),
        'device.credentials[1].publicKey.key',
        /not signed directly/,
      );
    });

    it('keeps the usual rules in a registry without CAs', async () => {
      const cert = await issue(other, { subject: 'CN=x' });
      const r = await call('POST', `${LOC}/registries/plain/devices`, { id: 'dev-any', credentials: [deviceCredential(cert)] });
      assert.equal(r.statusCode, 200, r.body);
    });
  });

  it('cuts off connections through a CA removed from the registry', async () => {
    revoked.length = 0;
    const r = await call('POST', `${LOC}/registries`, { id: 'two-cas', credentials: [caCredential(root), caCredential(other)] });
    assert.equal(r.statusCode, 200, r.body);
    const patched = await call('PATCH', `${LOC}/registries/two-cas?updateMask=credentials`, { credentials: [caCredential(root)] });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.deepEqual(revoked.map((e) => e.keys), [[certificateKey(createHash('sha256').update(other.der).digest('hex'))]]);
    const mask = await call('PATCH', `${LOC}/registries/two-cas?updateMask=deviceAuthMethod`, { deviceAuthMethod: 'JWT_ONLY' });
    assert.equal(json<ApiDeviceRegistry>(mask).deviceAuthMethod, 'JWT_ONLY');
    assert.equal(json<ApiDeviceRegistry>(mask).credentials?.length, 1);
  });

  describe('CRL upload', () => {
    const URL = `${LOC}/registries/trusting:uploadCrl`;

    it('stores a CRL signed by a registry CA and announces its serials', async () => {
      revoked.length = 0;
      const r = await call('POST', URL, { crl: await makeCrl(root, ['0a0b', '7e01'], 5) });
      assert.equal(r.statusCode, 200, r.body);
      const body = json<ApiUploadCrlResponse>(r);
      assert.equal(body.issuer, 'CN=Acme Devices CA,O=Acme,C=FR');
      assert.equal(body.crlNumber, '5');
      assert.equal(body.revokedCount, 2);
      assert.ok(body.nextUpdate);
      const keys = [serialKey(spkiSha256(root), 'a0b'), serialKey(spkiSha256(root), '7e01')];
      assert.deepEqual(revoked, [{ keys, reason: 'CRL uploaded' }]);
      // The RevocationSource the certificate authenticator asks, over a second handle on the same database.
      const store = await openSqliteStore(join(stack.dir, 'keyway.db'));
      try {
        const source = new RegistryRevocations(store, { project: 'demo', location: 'europe-west1', registry: 'trusting' });
        assert.deepEqual([...(await source.revokedAmong([...keys, serialKey(spkiSha256(root), 'ff')]))].sort(), [...keys].sort());
      } finally {
        await store.close();
      }
    });

    it('accepts base64 DER, refuses an older CRL number', async () => {
      const pem = await makeCrl(root, ['0a0b'], 6);
      const der = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
      assert.equal((await call('POST', URL, { crl: der })).statusCode, 200);
      const stale = await call('POST', URL, { crl: await makeCrl(root, [], 4) });
      assert.equal(stale.statusCode, 400, stale.body);
      assert.equal(json<ApiErrorEnvelope>(stale).error.status, 'FAILED_PRECONDITION');
      assert.match(stale.body, /older than the CRL number 6/);
    });

    it('refuses a CRL no registry CA signed, garbage, and a registry without CAs', async () => {
      violation(await call('POST', URL, { crl: await makeCrl(other, ['01'], 1) }), 'crl', /not signed by any of the registry/);
      // Same issuer name, different key: a forgery.
      const impostor = await makeRoot({ subject: 'C=FR, O=Acme, CN=Acme Devices CA' });
      violation(await call('POST', URL, { crl: await makeCrl(impostor, ['01'], 9) }), 'crl', /not signed by any/);
      violation(await call('POST', URL, { crl: 'not a crl!' }), 'crl', /neither PEM nor base64/);
      violation(await call('POST', URL, { crl: root.pem }), 'crl', /X509 CRL/);
      const none = await call('POST', `${LOC}/registries/plain:uploadCrl`, { crl: await makeCrl(root, [], 1) });
      assert.equal(json<ApiErrorEnvelope>(none).error.status, 'FAILED_PRECONDITION', none.body);
      const missing = await call('POST', `${LOC}/registries/nope:uploadCrl`, { crl: await makeCrl(root, [], 1) });
      assert.equal(missing.statusCode, 404, missing.body);
    });
  });
});

