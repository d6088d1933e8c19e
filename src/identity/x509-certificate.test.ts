import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { isKeywayError } from '../domain/errors.js';
import { issue, makeRoot, type TestCert } from '../../test/support/test-pki.js';
import {
  certificateDetails,
  certificateFields,
  issuedBy,
  keyStrengthProblem,
  parseCertificateDer,
  parseCertificatePem,
} from './x509-certificate.js';

const refused = (fn: () => unknown, pattern: RegExp): void =>
  assert.throws(fn, (e: unknown) => isKeywayError(e) && e.status === 'INVALID_ARGUMENT' && pattern.test(e.message));

describe('x509-certificate', () => {
  let root: TestCert;
  let leaf: TestCert;
  before(async () => {
    root = await makeRoot({ subject: 'C=FR, O=Acme, CN=Acme Root' });
    leaf = await issue(root, {
      subject: 'C=FR, ST=Rhone, L=Lyon, O=Acme, OU=Batch 7, CN=sensor-1, 2.5.4.5=SN-42, 2.5.4.46=q1',
      serialNumber: '00a1b2',
    });
  });

  it('parses one PEM certificate with its digests, serial and CA flag', () => {
    const c = parseCertificatePem(root.pem, 'f');
    assert.equal(c.sha256, createHash('sha256').update(root.der).digest('hex'));
    const spki = createPublicKey(root.keyPem).export({ type: 'spki', format: 'der' });
    assert.equal(c.spkiSha256, createHash('sha256').update(spki).digest('hex'));
    assert.equal(c.isCa, true);
    const l = parseCertificateDer(leaf.der);
    assert.equal(l.serial, 'a1b2');
    assert.equal(l.isCa, false);
  });

  it('reports details as Cloud IoT Core did, names in RFC 4514 order', () => {
    const d = certificateDetails(parseCertificatePem(leaf.pem, 'f'));
    assert.equal(d.subject, '2.5.4.46=q1,2.5.4.5=SN-42,CN=sensor-1,OU=Batch 7,O=Acme,L=Lyon,ST=Rhone,C=FR');
    assert.equal(d.issuer, 'CN=Acme Root,O=Acme,C=FR');
    assert.equal(d.signatureAlgorithm, 'SHA256withECDSA');
    assert.equal(d.publicKeyType, 'EC P-256');
    assert.ok(d.expiryTime > d.startTime);
  });

  it('escapes RFC 4514 special characters', async () => {
    const odd = await makeRoot({ subject: 'CN=a\\,b\\+c' });
    assert.equal(certificateDetails(parseCertificatePem(odd.pem, 'f')).subject, 'CN=a\\,b\\+c');
  });

  it('reads template fields from the subject, and the certificate serial', () => {
    assert.deepEqual(certificateFields(parseCertificatePem(leaf.pem, 'f')), {
      SerialNumber: 'a1b2',
      CommonName: 'sensor-1',
      Organization: 'Acme',
      OrganizationalUnit: 'Batch 7',
      Country: 'FR',
      StateName: 'Rhone',
      Locality: 'Lyon',
      DistinguishedNameQualifier: 'q1',
      SubjectSerialNumber: 'SN-42',
    });
    const bare = certificateFields(parseCertificatePem(root.pem, 'f'));
    assert.equal(bare.OrganizationalUnit, undefined);
    assert.equal(bare.CommonName, 'Acme Root');
  });

  it('refuses anything but exactly one certificate', () => {
    refused(() => parseCertificatePem('', 'f'), /PEM certificate/);
    refused(() => parseCertificatePem(42, 'f'), /PEM certificate/);
    refused(() => parseCertificatePem(root.pem + leaf.pem, 'f'), /2 PEM blocks/);
    refused(() => parseCertificatePem(root.keyPem, 'f'), /private key/);
    refused(() => parseCertificatePem('x'.repeat(40_000), 'f'), /longer than/);
    refused(() => parseCertificatePem('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'f'), /parseable/);
    const pub = createPublicKey(root.keyPem).export({ type: 'spki', format: 'pem' }).toString();
    refused(() => parseCertificatePem(pub, 'f'), /single "BEGIN CERTIFICATE"/);
    assert.doesNotThrow(() => parseCertificatePem(`\n  ${root.pem}\n`, 'f'));
  });

  it('refuses an X.509 v1 certificate', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kw-x509-'));
    try {
      const key = join(dir, 'k.pem');
      const crt = join(dir, 'c.pem');
      execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
      // `openssl x509 -req` without extensions makes a version 1 certificate.
      const csr = execFileSync('openssl', ['req', '-new', '-key', key, '-subj', '/CN=v1']);
      execFileSync('openssl', ['x509', '-req', '-signkey', key, '-days', '2', '-out', crt], { input: csr });
      refused(() => parseCertificatePem(readFileSync(crt, 'utf8'), 'f'), /version 3/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('judges key strength: RSA ≥ 2048 or P-256 only', async () => {
    assert.equal(keyStrengthProblem(parseCertificatePem(root.pem, 'f')), undefined);
    const rsa = await makeRoot({ key: 'rsa2048' });
    assert.equal(keyStrengthProblem(parseCertificatePem(rsa.pem, 'f')), undefined);
    assert.equal(certificateDetails(parseCertificatePem(rsa.pem, 'f')).publicKeyType, 'RSA 2048');
    assert.equal(certificateDetails(parseCertificatePem(rsa.pem, 'f')).signatureAlgorithm, 'SHA256withRSA');
    const weak = await makeRoot({ key: 'rsa1024' });
    assert.match(keyStrengthProblem(parseCertificatePem(weak.pem, 'f')) ?? '', /1024 bits/);
    const p384 = await makeRoot({ key: 'p384' });
    assert.match(keyStrengthProblem(parseCertificatePem(p384.pem, 'f')) ?? '', /EC P-384/);
  });

  it('issuedBy: the CA signed it and its subject is the issuer', async () => {
    const l = parseCertificatePem(leaf.pem, 'f');
    const r = parseCertificatePem(root.pem, 'f');
    assert.equal(issuedBy(l, r), true);
    assert.equal(issuedBy(r, l), false);
    // Same subject name, different key: the signature does not verify.
    const impostor = await makeRoot({ subject: 'C=FR, O=Acme, CN=Acme Root' });
    assert.equal(issuedBy(l, parseCertificatePem(impostor.pem, 'f')), false);
    // Signed by an intermediate: not directly issued by the root.
    const mid = await issue(root, { subject: 'CN=Batch CA', ca: true });
    const grandchild = parseCertificatePem((await issue(mid, { subject: 'CN=dev' })).pem, 'f');
    assert.equal(issuedBy(grandchild, r), false);
    assert.equal(issuedBy(grandchild, parseCertificatePem(mid.pem, 'f')), true);
  });
});

