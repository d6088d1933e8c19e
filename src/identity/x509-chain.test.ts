import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { describe, it, before } from 'node:test';
import * as x509 from '@peculiar/x509';
import { certificateKey, serialKey } from '../domain/certificate-keys.js';
import { deviceChain, issue, makeRoot, type TestCert } from '../../test/support/test-pki.js';
import { MAX_PRESENTED_CERTIFICATES, peerCertificateDer, verifyClientChain } from './x509-chain.js';

const DAY = 86_400_000;
const now = new Date();
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const spkiSha = (c: TestCert): string => sha(Buffer.from(c.cert.publicKey.rawData));

function refused(v: ReturnType<typeof verifyClientChain>, pattern: RegExp): void {
  assert.equal(v.ok, false, 'expected a refusal');
  if (!v.ok) assert.match(v.reason, pattern);
}

describe('verifyClientChain', () => {
  let root: TestCert;
  let intermediate: TestCert;
  let leaf: TestCert;
  before(async () => {
    ({ root, intermediate, leaf } = await deviceChain('dev1'));
  });

  it('accepts root → intermediate → leaf with the root as anchor', () => {
    const v = verifyClientChain([leaf.der, intermediate.der], [root.pem], now);
    assert.ok(v.ok, v.ok ? '' : v.reason);
    assert.deepEqual(
      v.chain.map((c) => c.subject),
      [leaf.cert.subject, intermediate.cert.subject, root.cert.subject],
    );
    assert.equal(v.anchorIndex, 0);
    assert.equal(v.leafFingerprint, sha(leaf.der));
    const expected = [
      certificateKey(sha(leaf.der)),
      serialKey(spkiSha(intermediate), leaf.cert.serialNumber),
      certificateKey(sha(intermediate.der)),
      serialKey(spkiSha(root), intermediate.cert.serialNumber),
      certificateKey(sha(root.der)),
      serialKey(spkiSha(root), root.cert.serialNumber),
    ];
    assert.deepEqual([...v.revocationKeys].sort(), expected.sort());
    assert.equal(v.notAfter.getTime(), Math.min(leaf.cert.notAfter.getTime(), intermediate.cert.notAfter.getTime(), root.cert.notAfter.getTime()));
  });

  it('accepts an intermediate registered as the anchor, and DER anchors; finds the right anchor among several', async () => {
    const other = await makeRoot({ subject: 'CN=Other CA' });
    const v = verifyClientChain([leaf.der], [other.der, intermediate.der], now);
    assert.ok(v.ok, v.ok ? '' : v.reason);
    assert.equal(v.anchorIndex, 1);
    assert.equal(v.chain.length, 2);
    // The intermediate anchor is not self-signed: no serial key of its own.
    assert.ok(!v.revocationKeys.includes(serialKey(spkiSha(intermediate), intermediate.cert.serialNumber)));
  });

  it('ignores presented certificates the path does not need, in any order, and a presented copy of the root', async () => {
    const stray = await makeRoot({ subject: 'CN=Stray' });
    const v = verifyClientChain([leaf.der, stray.der, root.der, intermediate.der], [root.pem], now);
    assert.ok(v.ok, v.ok ? '' : v.reason);
    assert.equal(v.chain.length, 3);
  });

  it('refuses a chain from a CA the registry does not have', async () => {
    const outsideRoot = await makeRoot({ subject: 'CN=Outside Root' });
    const outsideCa = await issue(outsideRoot, { subject: 'CN=Outside CA', ca: true });
    const outsideLeaf = await issue(outsideCa, { subject: 'CN=dev1' });
    refused(
      verifyClientChain([outsideLeaf.der, outsideCa.der, outsideRoot.der], [root.pem], now),
      /issuer "CN=Outside Root" of "CN=Outside Root" is not among the registry's CAs/,
    );
    refused(verifyClientChain([leaf.der], [root.pem], now), /issuer "CN=Test Batch CA.*is not among the registry's CAs/);
  });

  it('refuses a forged leaf: the right issuer name, the wrong signature', async () => {
    const impostor = await makeRoot({ subject: intermediate.cert.subject, ca: true });
    const forged = await issue(impostor, { subject: 'CN=dev1' });
    assert.equal(forged.cert.issuer, intermediate.cert.subject);
    refused(verifyClientChain([forged.der, intermediate.der], [root.pem], now), /signature of "CN=dev1" does not verify/);
    // The impostor presented as the intermediate leads nowhere the registry trusts.
    refused(verifyClientChain([forged.der, impostor.der], [root.pem], now), /is not among the registry's CAs/);
  });

  it('refuses an expired leaf, a not-yet-valid leaf and an expired intermediate, with the date', async () => {
    const expired = await issue(intermediate, { subject: 'CN=old', notBefore: new Date(now.getTime() - 10 * DAY), notAfter: new Date(now.getTime() - DAY) });
    refused(verifyClientChain([expired.der, intermediate.der], [root.pem], now), /certificate "CN=old" expired at \d{4}-/);
    const future = await issue(intermediate, { subject: 'CN=new', notBefore: new Date(now.getTime() + DAY) });
    refused(verifyClientChain([future.der, intermediate.der], [root.pem], now), /is not valid before/);
    const oldCa = await issue(root, { subject: 'CN=Old Batch', ca: true, notBefore: new Date(now.getTime() - 10 * DAY), notAfter: new Date(now.getTime() - 3_600_000) });
    const underOld = await issue(oldCa, { subject: 'CN=dev2', notBefore: new Date(now.getTime() - 5 * DAY) });
    refused(verifyClientChain([underOld.der, oldCa.der], [root.pem], now), /"CN=Old Batch" expired at/);
    // The same chain was fine while valid.
    assert.ok(verifyClientChain([underOld.der, oldCa.der], [root.pem], new Date(now.getTime() - 7_200_000)).ok);
  });

  it('refuses a CA certificate used as a leaf, even the anchor itself', () => {
    refused(verifyClientChain([intermediate.der], [root.pem], now), /leaf is a CA certificate/);
    refused(verifyClientChain([root.der], [root.pem], now), /leaf is a CA certificate/);
  });

  it('refuses a leaf whose extended key usage lacks clientAuth; accepts none at all', async () => {
    const server = await issue(intermediate, { subject: 'CN=srv', extendedKeyUsage: [x509.ExtendedKeyUsage.serverAuth] });
    refused(verifyClientChain([server.der, intermediate.der], [root.pem], now), /extended key usage without clientAuth/);
    const plain = await issue(intermediate, { subject: 'CN=plain', extendedKeyUsage: null });
    assert.ok(verifyClientChain([plain.der, intermediate.der], [root.pem], now).ok);
  });

  it('refuses weak leaf keys (RSA 1024, P-384) and accepts RSA 2048', async () => {
    const rsa1024 = await issue(intermediate, { subject: 'CN=weak', key: 'rsa1024' });
    refused(verifyClientChain([rsa1024.der, intermediate.der], [root.pem], now), /RSA key of 1024 bits is too weak/);
    const p384 = await issue(intermediate, { subject: 'CN=p384', key: 'p384' });
    refused(verifyClientChain([p384.der, intermediate.der], [root.pem], now), /only P-256/);
    const rsa = await issue(intermediate, { subject: 'CN=rsa', key: 'rsa2048' });
    assert.ok(verifyClientChain([rsa.der, intermediate.der], [root.pem], now).ok);
  });

  it('refuses an issuer that is not a CA, or whose key usage forbids certificate signing', async () => {
    const notCa = await issue(root, { subject: 'CN=Not A CA', ca: false, extendedKeyUsage: null });
    const underNotCa = await issue(notCa, { subject: 'CN=dev3' });
    refused(verifyClientChain([underNotCa.der, notCa.der], [root.pem], now), /"CN=Not A CA" is not a CA certificate/);
    const noSign = await issue(root, { subject: 'CN=No Sign CA', ca: true, keyUsage: x509.KeyUsageFlags.cRLSign });
    const underNoSign = await issue(noSign, { subject: 'CN=dev4' });
    refused(verifyClientChain([underNoSign.der, noSign.der], [root.pem], now), /does not allow signing certificates/);
  });

  it('enforces pathLength constraints', async () => {
    // intermediate has pathLength 0: a CA under it cannot issue.
    const sub = await issue(intermediate, { subject: 'CN=Sub CA', ca: true });
    const underSub = await issue(sub, { subject: 'CN=dev5' });
    refused(verifyClientChain([underSub.der, sub.der, intermediate.der], [root.pem], now), /allows 0 intermediate CA\(s\) below it, the path has 1/);
  });

  it('bounds the number of presented certificates and refuses garbage', () => {
    const many = Array.from({ length: MAX_PRESENTED_CERTIFICATES + 1 }, () => leaf.der);
    refused(verifyClientChain(many, [root.pem], now), /at most 10/);
    refused(verifyClientChain([Buffer.from('not a certificate')], [root.pem], now), /not a parseable X.509 certificate/);
    refused(verifyClientChain([], [root.pem], now), /no client certificate/);
    refused(verifyClientChain([leaf.der, Buffer.alloc(20_000, 1)], [root.pem], now), /out of bounds/);
    refused(verifyClientChain([leaf.der, intermediate.der], [], now), /no CA certificates/);
  });

  it('checks a cached issuer\'s validity at every use, and a cached signature only for the very same bytes', async () => {
    const short = await issue(root, { subject: 'CN=Short Batch', ca: true, notAfter: new Date(now.getTime() + 3_600_000) });
    const under = await issue(short, { subject: 'CN=dev6' });
    assert.ok(verifyClientChain([under.der, short.der], [root.pem], now).ok, 'valid now (and cached)');
    refused(verifyClientChain([under.der, short.der], [root.pem], new Date(now.getTime() + 2 * 3_600_000)), /"CN=Short Batch" expired at/);
    // The same leaf with one bit of its signature flipped: neither the parse nor the signature of the original is reused.
    const forged = Buffer.from(under.der);
    forged[forged.length - 3]! ^= 0x01;
    refused(verifyClientChain([forged, short.der], [root.pem], now), /signature of "CN=dev6" does not verify|not a parseable/);
  });

  it('reuses a handshake\'s parse of a certificate only while its bytes are unchanged', () => {
    const der = peerCertificateDer(new X509Certificate(leaf.der));
    const v = verifyClientChain([der, intermediate.der], [root.pem], now);
    assert.ok(v.ok, v.ok ? '' : v.reason);
    assert.equal(v.leafFingerprint, sha(leaf.der));
    // Bytes changed after the handshake handed them out: parsed afresh, and the forgery shows.
    der[der.length - 3]! ^= 0x01;
    refused(verifyClientChain([der, intermediate.der], [root.pem], now), /signature of "CN=dev1" does not verify|not a parseable/);
  });

  it('bounds the path length', async () => {
    const cas: TestCert[] = [root];
    for (let i = 0; i < 6; i++) cas.push(await issue(cas[cas.length - 1]!, { subject: `CN=Level ${i}`, ca: true }));
    const deep = await issue(cas[cas.length - 1]!, { subject: 'CN=deep' });
    refused(verifyClientChain([deep.der, ...cas.slice(1).reverse().map((c) => c.der)], [root.pem], now), /within 5 issuers/);
  });
});
