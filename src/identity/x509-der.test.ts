import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, webcrypto, X509Certificate } from 'node:crypto';
import { describe, it, before } from 'node:test';
import * as x509 from '@peculiar/x509';
import { deviceChain, issue, type TestCert } from '../../test/support/test-pki.js';
import { readCertificateStructure, readSpkiKeyFacts } from './x509-der.js';

const crypto = webcrypto as unknown as Crypto;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** What @peculiar/x509 reads of the same certificate, in x509-der's terms. */
function peculiarView(der: Buffer) {
  const c = new x509.X509Certificate(new Uint8Array(der));
  const bc = c.getExtension(x509.BasicConstraintsExtension);
  const ku = c.getExtension(x509.KeyUsagesExtension);
  const eku = c.getExtension(x509.ExtendedKeyUsageExtension);
  const ski = c.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki = c.getExtension(x509.AuthorityKeyIdentifierExtension);
  return {
    issuerDer: Buffer.from(c.issuerName.toArrayBuffer()),
    subjectDer: Buffer.from(c.subjectName.toArrayBuffer()),
    spkiSha256: sha(new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' })),
    isCa: bc?.ca === true,
    pathLength: bc?.pathLength,
    keyUsage: ku?.usages,
    extendedKeyUsage: eku ? [...eku.usages].map(String) : undefined,
    subjectKeyId: ski?.keyId.toLowerCase(),
    authorityKeyId: aki?.keyId?.toLowerCase(),
    criticalExtensions: [...c.extensions].filter((e) => e.critical).map((e) => e.type),
  };
}

/** A leaf signed by `issuer` with exactly `extensions`. */
async function withExtensions(issuer: TestCert, extensions: x509.Extension[]): Promise<Buffer> {
  const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: '0a1b2c',
      subject: 'CN=odd',
      issuer: issuer.cert.subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3_600_000),
      publicKey: keys.publicKey,
      signingKey: issuer.signingKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions,
    },
    crypto,
  );
  return Buffer.from(cert.rawData);
}

describe('readCertificateStructure', () => {
  let root: TestCert;
  let intermediate: TestCert;
  let leaf: TestCert;
  before(async () => {
    ({ root, intermediate, leaf } = await deviceChain('dev1'));
  });

  it('reads what @peculiar/x509 reads, for roots, intermediates and leaves of every kind', async () => {
    const certs = [
      root,
      intermediate,
      leaf,
      await issue(intermediate, { subject: 'CN=rsa, O=Acme, OU=a+OU=b', key: 'rsa2048' }),
      await issue(intermediate, { subject: 'CN=plain', extendedKeyUsage: null, keyUsage: null }),
      await issue(intermediate, { subject: 'CN=every usage', keyUsage: 0x1ff, extendedKeyUsage: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'] }),
      await issue(root, { subject: 'CN=Deep CA', ca: true, pathLength: 3 }),
      await issue(root, { subject: 'CN=no bc', noBasicConstraints: true }),
    ];
    for (const c of certs) {
      const s = readCertificateStructure(c.der);
      const p = peculiarView(c.der);
      const mine = {
        issuerDer: Buffer.from(s.issuerDer),
        subjectDer: Buffer.from(s.subjectDer),
        spkiSha256: sha(s.spkiDer),
        isCa: s.isCa,
        pathLength: s.pathLength,
        keyUsage: s.keyUsage,
        extendedKeyUsage: s.extendedKeyUsage,
        subjectKeyId: s.subjectKeyId,
        authorityKeyId: s.authorityKeyId,
        criticalExtensions: s.criticalExtensions,
      };
      for (const k of Object.keys(p) as (keyof typeof p)[]) assert.deepEqual(mine[k], p[k], `${c.cert.subject}: ${k}`);
      assert.equal(s.version, 3);
    }
  });

  it('reads key types and sizes as node:crypto reports them', async () => {
    const certs = [
      root,
      leaf,
      await issue(intermediate, { subject: 'CN=rsa', key: 'rsa2048' }),
      await issue(intermediate, { subject: 'CN=weak', key: 'rsa1024' }),
      await issue(intermediate, { subject: 'CN=p384', key: 'p384' }),
    ];
    for (const c of certs) {
      const key = new X509Certificate(c.der).publicKey;
      const facts = readSpkiKeyFacts(readCertificateStructure(c.der).spkiDer);
      assert.ok(facts, c.cert.subject);
      assert.equal(facts.asymmetricKeyType, key.asymmetricKeyType, c.cert.subject);
      assert.equal(facts.asymmetricKeyDetails?.namedCurve, key.asymmetricKeyDetails?.namedCurve, c.cert.subject);
      assert.equal(facts.asymmetricKeyDetails?.modulusLength, key.asymmetricKeyDetails?.modulusLength, c.cert.subject);
    }
    const ed25519 = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' });
    assert.equal(readSpkiKeyFacts(ed25519), undefined, 'other key types are left to node');
    assert.equal(readSpkiKeyFacts(Buffer.from('garbage')), undefined);
  });

  it('reads unknown critical extensions and refuses a repeated extension', async () => {
    const odd = await withExtensions(intermediate, [new x509.Extension('1.2.3.4.5', true, new Uint8Array([0x05, 0x00]))]);
    assert.deepEqual(readCertificateStructure(odd).criticalExtensions, ['1.2.3.4.5']);
    const twice = await withExtensions(intermediate, [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.BasicConstraintsExtension(true, undefined, true),
    ]);
    assert.throws(() => readCertificateStructure(twice), /2\.5\.29\.19 appears more than once/);
  });

  it('refuses an extension value with trailing data', async () => {
    // An EKU whose OCTET STRING holds the SEQUENCE and then a stray NULL.
    const eku = new Uint8Array([0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02, 0x05, 0x00]);
    const der = await withExtensions(intermediate, [new x509.Extension('2.5.29.37', false, eku)]);
    assert.throws(() => readCertificateStructure(der), /trailing data/);
  });

  it('refuses truncation, trailing data, indefinite lengths and garbage', () => {
    const der = leaf.der;
    assert.throws(() => readCertificateStructure(der.subarray(0, der.length - 1)), /truncated/);
    assert.throws(() => readCertificateStructure(Buffer.concat([der, Buffer.from([0])])), /trailing data/);
    const indefinite = Buffer.from(der);
    indefinite[1] = 0x80;
    assert.throws(() => readCertificateStructure(indefinite));
    assert.throws(() => readCertificateStructure(Buffer.from('not a certificate')));
    assert.throws(() => readCertificateStructure(Buffer.alloc(0)));
  });

  it('takes a version 1 certificate for what it is', () => {
    // Remove the [0] version field from the TBSCertificate and fix up the lengths.
    const der = leaf.der;
    const lenBytes = (n: number): Buffer => (n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]));
    const header = (at: number): { body: number; end: number } => {
      const first = der[at + 1]!;
      const n = first < 0x80 ? 0 : first & 0x7f;
      let len = first < 0x80 ? first : 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[at + 2 + i]!;
      return { body: at + 2 + n, end: at + 2 + n + len };
    };
    const cert = header(0);
    const tbs = header(cert.body);
    const tbsBody = der.subarray(tbs.body + 5, tbs.end); // skip a0 03 02 01 02
    const tbsV1 = Buffer.concat([Buffer.from([0x30]), lenBytes(tbsBody.length), tbsBody]);
    const rest = der.subarray(tbs.end, cert.end);
    const body = Buffer.concat([tbsV1, rest]);
    const v1 = Buffer.concat([Buffer.from([0x30]), lenBytes(body.length), body]);
    // A v1 certificate with extensions is malformed; without them it would read as version 1.
    assert.throws(() => readCertificateStructure(v1), /extensions in a certificate older than version 3/);
  });
});
