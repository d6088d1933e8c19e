import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EC_KEY, opensslIn } from '../../test/support/openssl-ca.js';
import { cliTestKit } from './cli-test-kit.js';

describe('keyway ca / keyway certs', () => {
  const kit = cliTestKit({ prefix: 'keyway-cli-ca-', env: { KEYWAY_PROJECT: 'demo', KEYWAY_REGION: 'europe-west1' } });
  const { cli, ok } = kit;
  /** openssl in the CLI's working directory, as a device maker's tool would be. */
  const tools = () => opensslIn(kit.work);

  it('creates a hierarchy, issues device certificates both ways, revokes and fetches CRLs', async () => {
    assert.match((await ok(['ca', 'create-root'])).stderr, /Created certificate authority \[root\] \(ECDSA_P256, key encrypted at rest\)/);
    assert.match((await ok(['ca', 'create-intermediate', '--batch', 'B1'])).stderr, /\[int-B1\]/);
    const list = await ok(['ca', 'list']);
    assert.match(list.stdout, /^int-B1 +INTERMEDIATE +ACTIVE +root +B1 +ECDSA_P256\/ENCRYPTED/m);
    assert.match((await ok(['ca', 'describe', 'root'])).stdout, /^type: ROOT$/m);

    // A key and CSR made here; only the CSR leaves.
    const made = await ok(['certs', 'issue', '--device', 'dev1', '--ca', 'int-B1', '--out-dir', 'out']);
    assert.match(made.stderr, /Wrote \.\/out\/dev1\.key \(mode 0600/);
    assert.equal((await stat(join(kit.work, 'out', 'dev1.key'))).mode & 0o777, 0o600);
    const rootPem = (await ok(['ca', 'describe', 'root', '--pem'])).stdout;
    assert.match(rootPem, /^-----BEGIN CERTIFICATE-----\n[^]*\n-----END CERTIFICATE-----\n$/, 'only the certificate');
    await writeFile(join(kit.work, 'root.pem'), rootPem);
    const verified = tools().tryOpenssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'out/dev1-chain.pem', 'out/dev1.crt']);
    assert.equal(verified.status, 0, verified.output);
    const pub = (args: string[]) => tools().openssl(args);
    assert.equal(pub(['x509', '-in', 'out/dev1.crt', '-noout', '-pubkey']), pub(['pkey', '-in', 'out/dev1.key', '-pubout']));
    // The key is never overwritten.
    const again = await cli(['certs', 'issue', '--device', 'dev1', '--ca', 'int-B1', '--out-dir', 'out']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /exists/);

    // From a CSR the device made.
    await tools().csr('dev2', EC_KEY, '/CN=dev2');
    const issued = await ok(['certs', 'issue', '--csr', 'dev2.csr', '--ca', 'int-B1', '--out', 'dev2.crt', '--format', 'json']);
    const serial = (JSON.parse(issued.stdout) as { serialNumber: string }).serialNumber;
    // The certificate and its intermediate, as the device presents them; not the root.
    assert.equal((await readFile(join(kit.work, 'dev2.crt'), 'utf8')).match(/BEGIN CERTIFICATE/g)?.length, 2, 'leaf and intermediate');
    assert.equal((await readFile(join(kit.work, 'out', 'dev1.crt'), 'utf8')).match(/BEGIN CERTIFICATE/g)?.length, 2, 'leaf and intermediate');

    assert.match((await ok(['certs', 'revoke', '--ca', 'int-B1', '--serial', serial, '--reason', 'key-compromise'])).stderr, /KEY_COMPROMISE/);
    await ok(['ca', 'crl', 'int-B1', '--out', 'int.crl', '--der']);
    const crl = tools().openssl(['crl', '-inform', 'DER', '-in', 'int.crl', '-noout', '-text']);
    assert.match(crl, new RegExp(`Serial Number: 0*${serial.toUpperCase()}`));
    assert.match((await ok(['ca', 'crl', 'root'])).stdout, /^-----BEGIN X509 CRL-----/);

    assert.match((await ok(['ca', 'revoke', 'int-B1', '--reason', 'superseded'])).stderr, /Revoked certificate authority \[int-B1\] \(SUPERSEDED\)/);
    const refused = await cli(['certs', 'issue', '--csr', 'dev2.csr', '--ca', 'int-B1']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /FAILED_PRECONDITION: .*revoked/);
    const usage = await cli(['certs', 'issue', '--ca', 'int-B1']);
    assert.equal(usage.code, 2);
  });
});
