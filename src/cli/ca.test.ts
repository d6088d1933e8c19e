import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestStack, TEST_ADMIN_TOKEN, type TestStack } from '../api/test-stack.js';
import { ensureDevelopmentPki } from '../pki/development-ca.js';
import { run } from './run.js';

describe('keyway ca / keyway certs', () => {
  let work: string;
  let stack: TestStack;
  let apiUrl: string;

  const cli = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    let stdout = '';
    let stderr = '';
    const code = await run(args, {
      stdout: (t) => void (stdout += t),
      stderr: (t) => void (stderr += t),
      env: { KEYWAY_API_URL: apiUrl, KEYWAY_PROJECT: 'demo', KEYWAY_REGION: 'europe-west1' },
      cwd: work,
    });
    return { code, stdout, stderr };
  };
  const ok = async (...args: string[]) => {
    const r = await cli(args);
    assert.equal(r.code, 0, `keyway ${args.join(' ')}\n${r.stderr}`);
    return r;
  };
  const openssl = (args: string[]) => spawnSync('openssl', args, { cwd: work, encoding: 'utf8' });

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'keyway-cli-ca-'));
    const pki = await ensureDevelopmentPki(join(work, 'keyway-data'), []);
    await writeFile(join(work, 'keyway-data', 'admin-token'), `${TEST_ADMIN_TOKEN}\n`, { mode: 0o600 });
    stack = await startTestStack({ https: { cert: pki.certPem, key: pki.keyPem } });
    await stack.api.listen({ host: '127.0.0.1', port: 0 });
    const address = stack.api.server.address();
    assert.ok(address && typeof address === 'object');
    apiUrl = `https://localhost:${address.port}`;
  });
  after(async () => {
    await stack.close();
    await rm(work, { recursive: true, force: true });
  });

  it('creates a hierarchy, issues device certificates both ways, revokes and fetches CRLs', async () => {
    assert.match((await ok('ca', 'create-root')).stderr, /Created certificate authority \[root\] \(ECDSA_P256, key encrypted at rest\)/);
    assert.match((await ok('ca', 'create-intermediate', '--batch', 'B1')).stderr, /\[int-B1\]/);
    const list = await ok('ca', 'list');
    assert.match(list.stdout, /^int-B1 +INTERMEDIATE +ACTIVE +root +B1 +ECDSA_P256\/ENCRYPTED/m);
    assert.match((await ok('ca', 'describe', 'root')).stdout, /^type: ROOT$/m);

    // A key and CSR made here; only the CSR leaves.
    const made = await ok('certs', 'issue', '--device', 'dev1', '--ca', 'int-B1', '--out-dir', 'out');
    assert.match(made.stderr, /Wrote \.\/out\/dev1\.key \(mode 0600/);
    assert.equal((await stat(join(work, 'out', 'dev1.key'))).mode & 0o777, 0o600);
    await ok('ca', 'describe', 'root', '--format', 'json').then(async (r) =>
      writeFile(join(work, 'root.pem'), (JSON.parse(r.stdout) as { certificate: string }).certificate),
    );
    const verified = openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'out/dev1-chain.pem', 'out/dev1.crt']);
    assert.equal(verified.status, 0, verified.stderr);
    const pub = (args: string[]) => openssl(args).stdout;
    assert.equal(pub(['x509', '-in', 'out/dev1.crt', '-noout', '-pubkey']), pub(['pkey', '-in', 'out/dev1.key', '-pubout']));
    // The key is never overwritten.
    const again = await cli(['certs', 'issue', '--device', 'dev1', '--ca', 'int-B1', '--out-dir', 'out']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /exists/);

    // From a CSR the device made.
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'dev2.key']);
    openssl(['req', '-new', '-key', 'dev2.key', '-subj', '/CN=dev2', '-out', 'dev2.csr']);
    const issued = await ok('certs', 'issue', '--csr', 'dev2.csr', '--ca', 'int-B1', '--out', 'dev2.crt', '--format', 'json');
    const serial = (JSON.parse(issued.stdout) as { serialNumber: string }).serialNumber;
    assert.match(await readFile(join(work, 'dev2.crt'), 'utf8'), /BEGIN CERTIFICATE[\s\S]+BEGIN CERTIFICATE[\s\S]+BEGIN CERTIFICATE/);

    assert.match((await ok('certs', 'revoke', '--ca', 'int-B1', '--serial', serial, '--reason', 'key-compromise')).stderr, /KEY_COMPROMISE/);
    await ok('ca', 'crl', 'int-B1', '--out', 'int.crl', '--der');
    const crl = openssl(['crl', '-inform', 'DER', '-in', 'int.crl', '-noout', '-text']);
    assert.match(crl.stdout, new RegExp(`Serial Number: 0*${serial.toUpperCase()}`));
    assert.match((await ok('ca', 'crl', 'root')).stdout, /^-----BEGIN X509 CRL-----/);

    assert.match((await ok('ca', 'revoke', 'int-B1', '--reason', 'superseded')).stderr, /Revoked certificate authority \[int-B1\] \(SUPERSEDED\)/);
    const refused = await cli(['certs', 'issue', '--csr', 'dev2.csr', '--ca', 'int-B1']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /FAILED_PRECONDITION: .*revoked/);
    const usage = await cli(['certs', 'issue', '--ca', 'int-B1']);
    assert.equal(usage.code, 2);
  });
});
