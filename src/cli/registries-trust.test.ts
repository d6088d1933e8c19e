import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestStack, TEST_ADMIN_TOKEN, type TestStack } from '../api/test-stack.js';
import type { ApiDeviceRegistry } from '../api/wire-types.js';
import { ensureDevelopmentPki } from '../pki/development-ca.js';
import { run } from './run.js';

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** An outside CA made with openssl, and a CRL of it revoking serial 0A0B (CRL number `crlNumber`). */
function opensslCa(dir: string, name: string, crlNumber: number): { ca: string; crl: string; crlDer: string } {
  const at = (f: string): string => join(dir, `${name}-${f}`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', at('ca.key'), '-out', at('ca.pem'), '-subj', `/O=Outside/CN=${name}`, '-days', '30',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ], { stdio: 'ignore' });
  execFileSync('chmod', ['600', at('ca.key')]);
  execFileSync('sh', ['-c', `printf 'R\\t300101000000Z\\t240101000000Z\\t0A0B\\tunknown\\t/CN=dev\\n' > '${at('index.txt')}'`]);
  execFileSync('sh', ['-c', `printf '%02X\\n' ${crlNumber} > '${at('crlnumber')}'`]);
  const cnf = `[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = ${at('index.txt')}\ncrlnumber = ${at('crlnumber')}\ndefault_md = sha256\ndefault_crl_days = 7\n`;
  execFileSync('sh', ['-c', `cat > '${at('ca.cnf')}' <<'EOF'\n${cnf}EOF`]);
  execFileSync('openssl', ['ca', '-config', at('ca.cnf'), '-gencrl', '-keyfile', at('ca.key'), '-cert', at('ca.pem'), '-out', at('crl.pem')], { stdio: 'ignore' });
  execFileSync('openssl', ['crl', '-in', at('crl.pem'), '-outform', 'DER', '-out', at('crl.der')]);
  return { ca: at('ca.pem'), crl: at('crl.pem'), crlDer: at('crl.der') };
}

describe('keyway registries: CA certificates, device auth method, CRLs', () => {
  let work: string;
  let stack: TestStack;
  let apiUrl: string;

  const cli = async (args: readonly string[]): Promise<Result> => {
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
  const ok = async (...args: string[]): Promise<Result> => {
    const r = await cli(args);
    assert.equal(r.code, 0, `keyway ${args.join(' ')}\n${r.stderr}`);
    return r;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'keyway-cli-trust-'));
    const dataDir = join(work, 'keyway-data');
    const pki = await ensureDevelopmentPki(dataDir, []);
    await writeFile(join(dataDir, 'admin-token'), `${TEST_ADMIN_TOKEN}\n`, { mode: 0o600 });
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

  it('creates a registry with CAs and a template, describes, updates and uploads CRLs', async () => {
    const a = opensslCa(work, 'ca-a', 7);
    const b = opensslCa(work, 'ca-b', 1);
    const template = join(work, 'template.json');
    await writeFile(template, JSON.stringify({ deviceId: 'dev-${SerialNumber}', metadata: { org: '${Organization}' } }));

    await ok('registries', 'create', 'factory', '--ca-certificate-file', a.ca, '--provisioning-template-file', template,
      '--ca-certificate-file', b.ca, '--device-auth-method', 'certificate-only');
    const described = await ok('registries', 'describe', 'factory', '--format', 'json');
    const reg = JSON.parse(described.stdout) as ApiDeviceRegistry;
    assert.equal(reg.deviceAuthMethod, 'CERTIFICATE_ONLY');
    assert.equal(reg.credentials?.length, 2);
    assert.equal(reg.credentials?.[0]?.publicKeyCertificate.x509Details?.subject, 'CN=ca-a,O=Outside');
    assert.equal(reg.credentials?.[0]?.provisioningTemplate?.deviceId, 'dev-${SerialNumber}');
    assert.equal(reg.credentials?.[1]?.provisioningTemplate, undefined);
    assert.match((await ok('registries', 'describe', 'factory')).stdout, /subject: CN=ca-a,O=Outside/);

    const up = await ok('registries', 'crl', 'upload', '--registry', 'factory', a.crl);
    assert.match(up.stderr + up.stdout, /Uploaded CRL of \[CN=ca-a,O=Outside\] to registry \[factory\]: 1 revoked/);
    const der = await ok('registries', 'crl', 'upload', '--registry', 'factory', b.crlDer, '--format', 'json');
    assert.equal((JSON.parse(der.stdout) as { crlNumber: string }).crlNumber, '1');

    // Update replaces the list; the device auth method alone leaves it.
    await ok('registries', 'update', 'factory', '--ca-certificate-file', b.ca);
    const after1 = JSON.parse((await ok('registries', 'describe', 'factory', '--format', 'json')).stdout) as ApiDeviceRegistry;
    assert.equal(after1.credentials?.length, 1);
    await ok('registries', 'update', 'factory', '--device-auth-method', 'jwt-or-certificate');
    const after2 = JSON.parse((await ok('registries', 'describe', 'factory', '--format', 'json')).stdout) as ApiDeviceRegistry;
    assert.equal(after2.deviceAuthMethod, 'JWT_OR_CERTIFICATE');
    assert.equal(after2.credentials?.length, 1);

    // ca-a is gone from the registry: its CRL is refused now.
    const refused = await cli(['registries', 'crl', 'upload', '--registry', 'factory', a.crl]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /INVALID_ARGUMENT: .*not signed by any of the registry/);

    await ok('registries', 'update', 'factory', '--clear-ca-certificates');
    const cleared = JSON.parse((await ok('registries', 'describe', 'factory', '--format', 'json')).stdout) as ApiDeviceRegistry;
    assert.equal(cleared.credentials, undefined);
  });

  it('explains mistakes: template before any CA, unknown auth method, bad template field', async () => {
    const a = opensslCa(work, 'ca-c', 1);
    const orphan = await cli(['registries', 'create', 'bad-1', '--provisioning-template-file', 'nope.json']);
    assert.notEqual(orphan.code, 0);
    assert.match(orphan.stderr, /must follow the --ca-certificate-file/);
    const method = await cli(['registries', 'create', 'bad-2', '--device-auth-method', 'passwords']);
    assert.notEqual(method.code, 0);
    assert.match(method.stderr, /jwt-or-certificate, jwt-only, certificate-only/);
    const bad = join(work, 'bad.json');
    await writeFile(bad, JSON.stringify({ deviceId: '${CommonNmae}' }));
    const r = await cli(['registries', 'create', 'bad-3', '--ca-certificate-file', a.ca, '--provisioning-template-file', bad]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unknown certificate field 'CommonNmae'/);
  });
});
