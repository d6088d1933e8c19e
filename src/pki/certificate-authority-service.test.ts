import assert from 'node:assert/strict';
import { createDecipheriv } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuthorityName } from '../domain/authorities.js';
import { certificateKey, serialKey } from '../domain/certificate-keys.js';
import { KeywayError } from '../domain/errors.js';
import { custodyLabel } from './certificate-authority-service.js';
import { EC_KEY, opensslIn, RSA_KEY, type OpensslWorkbench } from '../../test/support/openssl-ca.js';
import { LOCATION, pkiTestBed, type PkiTestBed } from './authority-test-bed.js';

const nameOf = (authority: string): AuthorityName => ({ ...LOCATION, authority });
const status = (code: string, pattern?: RegExp) => (e: unknown) =>
  e instanceof KeywayError && e.status === code && (pattern === undefined || pattern.test(e.message));

describe('certificate authority service', () => {
  let bed: PkiTestBed;
  /** openssl in the bed's directory: device keys and CSRs, and an outside reading of what the CA made. */
  let tools: OpensslWorkbench;
  before(async () => {
    bed = await pkiTestBed();
    tools = opensslIn(bed.dir);
    await bed.service.createRoot(LOCATION, 'root');
    await bed.service.createIntermediate(LOCATION, 'int-b1', { parent: 'root', batch: 'B1' });
    const root = await bed.service.describe(nameOf('root'));
    await tools.write('root.pem', root.certificatePem);
  });
  after(() => bed.close());

  it('makes a root and a per-batch intermediate with CA profiles openssl agrees with', async () => {
    const root = await bed.service.describe(nameOf('root'));
    const int = await bed.service.describe(nameOf('int-b1'));
    assert.equal(root.type, 'ROOT');
    assert.equal(int.parent, 'root');
    assert.equal(int.batch, 'B1');
    assert.equal(int.custodyKind, 'encrypted');
    assert.equal(int.issuerSpkiSha256, root.spkiSha256);
    await tools.write('int.pem', int.certificatePem);
    const rootText = tools.openssl(['x509', '-in', 'root.pem', '-noout', '-text']);
    assert.match(rootText, /Basic Constraints: critical\s+CA:TRUE, pathlen:1/);
    assert.match(rootText, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    const intText = tools.openssl(['x509', '-in', 'int.pem', '-noout', '-text']);
    assert.match(intText, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    assert.match(intText, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    assert.match(intText, /Subject: CN = Keyway Intermediate CA int-b1, OU = batch B1, O = demo/);
    assert.match(intText, /Authority Key Identifier/);
    // About ten and five years.
    const years = (a: { notBefore: Date; notAfter: Date }) => (a.notAfter.getTime() - a.notBefore.getTime()) / (365 * 86_400_000);
    assert.ok(Math.abs(years(root) - 10) < 0.1 && Math.abs(years(int) - 5) < 0.1);
    assert.match(tools.openssl(['verify', '-CAfile', 'root.pem', 'int.pem']), /int\.pem: OK/);
  });

  it('issues a P-256 device certificate: clientAuth, cA false, CN = device id, chain verifies', async () => {
    const csr = await tools.csr('dev1', EC_KEY, '/CN=whatever');
    const issued = await bed.service.issueFromCsr(nameOf('int-b1'), csr, { deviceId: 'dev1' });
    assert.match(issued.serialNumber, /^[0-9a-f]{25,32}$/);
    assert.equal(issued.chain.length, 2);
    await tools.write('dev1.crt', issued.certificatePem);
    await tools.write('chain.pem', issued.chain[0] ?? '');
    const text = tools.openssl(['x509', '-in', 'dev1.crt', '-noout', '-text']);
    assert.match(text, /Subject: CN = dev1\n/);
    assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /Key Usage: critical\s+Digital Signature\n/);
    assert.match(text, /Extended Key Usage: \s*TLS Web Client Authentication/);
    assert.match(text, /Subject Key Identifier/);
    assert.match(text, /Authority Key Identifier/);
    assert.match(tools.openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'chain.pem', '-purpose', 'sslclient', 'dev1.crt']), /OK/);
    // The key in the certificate is the one in the request.
    const fromCert = tools.openssl(['x509', '-in', 'dev1.crt', '-noout', '-pubkey']);
    const fromKey = tools.openssl(['pkey', '-in', 'dev1.key', '-pubout']);
    assert.equal(fromCert, fromKey);
    // About a year.
    assert.ok(Math.abs((issued.notAfter.getTime() - issued.notBefore.getTime()) / 86_400_000 - 365) < 1);
  });

  it('issues for an RSA key with keyEncipherment, from an RSA intermediate, taking the CN from the CSR', async () => {
    await bed.service.createIntermediate(LOCATION, 'int-rsa', { parent: 'root', batch: 'RSA batch', keyAlgorithm: 'rsa-2048' });
    const csr = await tools.csr('rsa-dev', RSA_KEY(2048), '/CN=rsa-dev');
    const issued = await bed.service.issueFromCsr(nameOf('int-rsa'), csr, { validityDays: 30 });
    await tools.write('rsa-dev.crt', issued.certificatePem);
    await tools.write('int-rsa.pem', issued.chain[0] ?? '');
    const text = tools.openssl(['x509', '-in', 'rsa-dev.crt', '-noout', '-text']);
    assert.match(text, /Subject: CN = rsa-dev\n/);
    assert.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
    assert.match(text, /Key Usage: critical\s+Digital Signature, Key Encipherment/);
    assert.match(tools.openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'int-rsa.pem', 'rsa-dev.crt']), /OK/);
  });

  it('refuses bad requests: forged signature, weak or unsupported keys, CA requests, no name', async () => {
    const int = nameOf('int-b1');
    const invalid = (pattern: RegExp) => status('INVALID_ARGUMENT', pattern);
    await assert.rejects(bed.service.issueFromCsr(int, 'hello', { deviceId: 'dev2' }), invalid(/BEGIN CERTIFICATE REQUEST/));
    const good = await tools.csr('forged', EC_KEY, '/CN=forged');
    const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 3] = (der[der.length - 3] ?? 0) ^ 0xff; // inside the signature
    const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await assert.rejects(bed.service.issueFromCsr(int, forged, { deviceId: 'dev2' }), invalid(/signature does not verify|not a readable/));
    await assert.rejects(bed.service.issueFromCsr(int, await tools.csr('weak', RSA_KEY(1024), '/CN=weak'), {}), invalid(/1024 bits is too weak/));
    const p384 = await tools.csr('p384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'], '/CN=p384');
    await assert.rejects(bed.service.issueFromCsr(int, p384, {}), invalid(/only P-256/));
    const caReq = await tools.csr('ca-req', EC_KEY, '/CN=sneaky', ['-addext', 'basicConstraints=critical,CA:TRUE']);
    await assert.rejects(bed.service.issueFromCsr(int, caReq, { deviceId: 'sneaky' }), invalid(/asks for a CA certificate/));
    const signer = await tools.csr('signer', EC_KEY, '/CN=signer', ['-addext', 'keyUsage=critical,keyCertSign']);
    await assert.rejects(bed.service.issueFromCsr(int, signer, {}), invalid(/certificate or CRL signing/));
    const noCn = await tools.csr('no-cn', EC_KEY, '/O=nobody');
    await assert.rejects(bed.service.issueFromCsr(int, noCn, {}), invalid(/deviceId/));
    await assert.rejects(bed.service.issueFromCsr(int, noCn, { deviceId: 'x' }), invalid(/deviceId/));
    await assert.rejects(bed.service.issueFromCsr(int, noCn, { deviceId: 'dev3', validityDays: 0 }), invalid(/validityDays/));
  });

  it('only an active intermediate issues: not a root, not a revoked CA; only a root signs intermediates', async () => {
    const csr = await tools.csr('nobody', EC_KEY, '/CN=nobody');
    await assert.rejects(bed.service.issueFromCsr(nameOf('root'), csr), status('FAILED_PRECONDITION', /root CA/));
    await assert.rejects(bed.service.issueFromCsr(nameOf('missing'), csr), status('NOT_FOUND'));
    await bed.service.createIntermediate(LOCATION, 'int-gone', { parent: 'root', batch: 'gone' });
    await bed.service.revoke(nameOf('int-gone'), 'KEY_COMPROMISE');
    await assert.rejects(bed.service.issueFromCsr(nameOf('int-gone'), csr), status('FAILED_PRECONDITION', /revoked/));
    await assert.rejects(bed.service.crl(nameOf('int-gone')), status('FAILED_PRECONDITION', /revoked/));
    await assert.rejects(
      bed.service.createIntermediate(LOCATION, 'int-x', { parent: 'int-b1', batch: 'x' }),
      status('FAILED_PRECONDITION', /only a root CA signs intermediates/),
    );
    await assert.rejects(bed.service.createRoot(LOCATION, 'root'), status('ALREADY_EXISTS'));
    await assert.rejects(bed.service.createIntermediate(LOCATION, 'int-y', { parent: 'root', batch: 'a,b=c' }), status('INVALID_ARGUMENT', /batch/));
  });

  it('revokes certificates and CAs, lists them on CRLs openssl reads, and tells the bus', async () => {
    const int = nameOf('int-b1');
    const issued = await bed.service.issueFromCsr(int, await tools.csr('dev-r', EC_KEY, '/CN=dev-r'), {});
    const keep = await bed.service.issueFromCsr(int, await tools.csr('dev-k', EC_KEY, '/CN=dev-k'), {});
    const record = await bed.service.revokeCertificate(int, issued.serialNumber.toUpperCase(), 'KEY_COMPROMISE');
    assert.equal(record.revokeReason, 'KEY_COMPROMISE');
    const intRecord = await bed.service.describe(int);
    assert.deepEqual(bed.revoked.at(-1)?.keys, [
      certificateKey(record.derSha256),
      serialKey(intRecord.spkiSha256, issued.serialNumber),
    ]);
    await assert.rejects(bed.service.revokeCertificate(int, 'abcdef', undefined), status('NOT_FOUND'));
    await assert.rejects(bed.service.revokeCertificate(int, 'xyz', undefined), status('INVALID_ARGUMENT'));
    await assert.rejects(bed.service.revokeCertificate(int, issued.serialNumber, 'BOGUS'), status('INVALID_ARGUMENT'));

    const first = await bed.service.crl(int);
    const second = await bed.service.crl(int);
    assert.equal(second.crlNumber, first.crlNumber + 1);
    await tools.write('int-b1.crl', second.der);
    await tools.write('int-b1.crl.pem', second.pem);
    const text = tools.openssl(['crl', '-inform', 'DER', '-in', 'int-b1.crl', '-noout', '-text']);
    assert.match(text, /Version 2/);
    assert.match(text, new RegExp(`CRL Number: \\s*${second.crlNumber}\\b`));
    assert.match(text, /Authority Key Identifier/);
    assert.match(text, new RegExp(`Serial Number: 0*${issued.serialNumber.toUpperCase()}`));
    assert.doesNotMatch(text, new RegExp(keep.serialNumber.toUpperCase()));
    assert.match(text, /Key Compromise/);
    // Seven days of validity, and the signature checks against the intermediate.
    const dates = tools.openssl(['crl', '-in', 'int-b1.crl.pem', '-noout', '-lastupdate', '-nextupdate']);
    const [last, next] = [...dates.matchAll(/=(.*)/g)].map((m) => new Date(m[1] ?? '').getTime());
    assert.equal(((next ?? 0) - (last ?? 0)) / 86_400_000, 7);
    await tools.write('int-b1-ca.pem', intRecord.certificatePem);
    assert.match(tools.openssl(['crl', '-in', 'int-b1.crl.pem', '-noout', '-CAfile', 'int-b1-ca.pem']), /verify OK/);

    // openssl verify with the CRL: the revoked one fails, the other passes.
    await tools.write('dev-r.crt', issued.certificatePem);
    await tools.write('dev-k.crt', keep.certificatePem);
    await tools.write('bundle.pem', `${intRecord.certificatePem}\n${await tools.read('root.pem')}`);
    const rootCrl = await bed.service.crl(nameOf('root'));
    await tools.write('crls.pem', `${second.pem}${rootCrl.pem}`);
    const verify = (cert: string) => tools.tryOpenssl(['verify', '-crl_check_all', '-CRLfile', 'crls.pem', '-CAfile', 'bundle.pem', cert]);
    assert.match(verify('dev-r.crt').output, /certificate revoked/);
    assert.equal(verify('dev-k.crt').status, 0, verify('dev-k.crt').output);

    // Revoking the intermediate puts it on the root's CRL and invalidates all it issued.
    await bed.service.revoke(int, 'CA_COMPROMISE');
    assert.deepEqual(bed.revoked.at(-1)?.keys, [certificateKey(intRecord.derSha256), serialKey(intRecord.issuerSpkiSha256, intRecord.serialNumber)]);
    const afterRevoke = await bed.service.crl(nameOf('root'));
    await tools.write('root.crl', afterRevoke.der);
    const rootText = tools.openssl(['crl', '-inform', 'DER', '-in', 'root.crl', '-noout', '-text']);
    assert.match(rootText, new RegExp(`Serial Number: 0*${intRecord.serialNumber.toUpperCase()}`));
    assert.match(rootText, /CA Compromise/);
    await tools.write('crls.pem', `${second.pem}${afterRevoke.pem}`);
    assert.match(verify('dev-k.crt').output, /certificate revoked/);
  });

  it('answers revocation checks (RevocationSource) for certificates, CAs and everything under a revoked CA', async () => {
    await bed.service.createIntermediate(LOCATION, 'int-src', { parent: 'root', batch: 'src' });
    const int = await bed.service.describe(nameOf('int-src'));
    const a = await bed.service.issueFromCsr(int.name, await tools.csr('src-a', EC_KEY, '/CN=src-a'));
    const b = await bed.service.issueFromCsr(int.name, await tools.csr('src-b', EC_KEY, '/CN=src-b'));
    const keysOf = (serial: string, der: string) => [serialKey(int.spkiSha256, serial), certificateKey(der)];
    const aDer = a.fingerprint;
    const bDer = b.fingerprint;
    const source = bed.service.revocationSource;
    const all = [...keysOf(a.serialNumber, aDer), ...keysOf(b.serialNumber, bDer), certificateKey(int.derSha256)];
    assert.deepEqual([...(await source.revokedAmong(all))], []);
    await bed.service.revokeCertificate(int.name, a.serialNumber, 'SUPERSEDED');
    assert.deepEqual(new Set(await source.revokedAmong(all)), new Set(keysOf(a.serialNumber, aDer)));
    // The same serial from another issuer is not revoked.
    assert.equal((await source.revokedAmong([serialKey('00'.repeat(32), a.serialNumber)])).size, 0);
    await bed.service.revoke(int.name, 'CESSATION_OF_OPERATION');
    assert.deepEqual(new Set(await source.revokedAmong(all)), new Set(all));
    assert.ok((await source.revokedAmong([serialKey(int.issuerSpkiSha256, int.serialNumber)])).size === 1);
  });

  it('never writes a CA key in clear: the database holds only what the KEK decrypts', async () => {
    const root = await bed.service.describe(nameOf('root'));
    const sealed = JSON.parse(root.keyReference) as Record<string, string>;
    const decipher = createDecipheriv('aes-256-gcm', bed.kek.key, Buffer.from(sealed.iv ?? '', 'base64'));
    decipher.setAAD(Buffer.from(`keyway-encrypted-key/v1\0ECDSA_P256\0${custodyLabel(root.name)}`));
    decipher.setAuthTag(Buffer.from(sealed.tag ?? '', 'base64'));
    const pkcs8 = Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext ?? '', 'base64')), decipher.final()]);
    // The private scalar: the 32 bytes after the PKCS#8/SEC1 prefix (04 20).
    const scalar = pkcs8.subarray(pkcs8.indexOf(Buffer.from('0420', 'hex')) + 2).subarray(0, 32);
    assert.equal(scalar.length, 32);
    const needles = [pkcs8, scalar, Buffer.from(pkcs8.toString('base64')), Buffer.from(scalar.toString('hex')), Buffer.from(scalar.toString('base64'))];
    const files = (await readdir(bed.dir)).filter((f) => f.startsWith('keyway.db'));
    assert.ok(files.length > 0);
    for (const file of files) {
      const bytes = await readFile(join(bed.dir, file));
      for (const needle of needles) assert.ok(!bytes.includes(needle), `${file} holds key material in clear`);
    }
  });
});
