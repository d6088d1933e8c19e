import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ApiDeviceRegistry } from '../api/wire-types.js';
import { OpensslCa } from '../../test/support/openssl-ca.js';
import { cliTestKit } from './cli-test-kit.js';

describe('keyway registries: CA certificates, device auth method, CRLs', () => {
  const kit = cliTestKit({ prefix: 'keyway-cli-trust-', env: { KEYWAY_PROJECT: 'demo', KEYWAY_REGION: 'europe-west1' } });
  const { cli, ok } = kit;
  /** An outside CA that has revoked one of its certificates. */
  const outsideCa = (name: string): OpensslCa => {
    const ca = OpensslCa.root(kit.work, name);
    ca.revoke(ca.issue('dev').certPath);
    return ca;
  };

  it('creates a registry with CAs and a template, describes, updates and uploads CRLs', async () => {
    const a = outsideCa('ca-a');
    const aCrl = a.crlFile();
    const b = outsideCa('ca-b');
    const template = join(kit.work, 'template.json');
    await writeFile(template, JSON.stringify({ deviceId: 'dev-${SerialNumber}', metadata: { org: '${Organization}' } }));

    await ok(['registries', 'create', 'factory', '--ca-certificate-file', a.certPath, '--provisioning-template-file', template,
      '--ca-certificate-file', b.certPath, '--device-auth-method', 'certificate-only']);
    const described = await ok(['registries', 'describe', 'factory', '--format', 'json']);
    const reg = JSON.parse(described.stdout) as ApiDeviceRegistry;
    assert.equal(reg.deviceAuthMethod, 'CERTIFICATE_ONLY');
    assert.equal(reg.credentials?.length, 2);
    assert.equal(reg.credentials?.[0]?.publicKeyCertificate.x509Details?.subject, 'O=Outside Tests,CN=ca-a');
    assert.equal(reg.credentials?.[0]?.provisioningTemplate?.deviceId, 'dev-${SerialNumber}');
    assert.equal(reg.credentials?.[1]?.provisioningTemplate, undefined);
    assert.match((await ok(['registries', 'describe', 'factory'])).stdout, /subject: O=Outside Tests,CN=ca-a/);

    const up = await ok(['registries', 'crl', 'upload', '--registry', 'factory', aCrl]);
    assert.match(up.stderr + up.stdout, /Uploaded CRL of \[O=Outside Tests,CN=ca-a\] to registry \[factory\]: 1 revoked/);
    const der = await ok(['registries', 'crl', 'upload', '--registry', 'factory', b.crlFile('DER'), '--format', 'json']);
    assert.equal((JSON.parse(der.stdout) as { crlNumber: string }).crlNumber, '1');

    // Update replaces the list; the device auth method alone leaves it.
    await ok(['registries', 'update', 'factory', '--ca-certificate-file', b.certPath]);
    const after1 = JSON.parse((await ok(['registries', 'describe', 'factory', '--format', 'json'])).stdout) as ApiDeviceRegistry;
    assert.equal(after1.credentials?.length, 1);
    await ok(['registries', 'update', 'factory', '--device-auth-method', 'jwt-or-certificate']);
    const after2 = JSON.parse((await ok(['registries', 'describe', 'factory', '--format', 'json'])).stdout) as ApiDeviceRegistry;
    assert.equal(after2.deviceAuthMethod, 'JWT_OR_CERTIFICATE');
    assert.equal(after2.credentials?.length, 1);

    // ca-a is gone from the registry: its CRL is refused now.
    const refused = await cli(['registries', 'crl', 'upload', '--registry', 'factory', aCrl]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /INVALID_ARGUMENT: .*not signed by any of the registry/);

    await ok(['registries', 'update', 'factory', '--clear-ca-certificates']);
    const cleared = JSON.parse((await ok(['registries', 'describe', 'factory', '--format', 'json'])).stdout) as ApiDeviceRegistry;
    assert.equal(cleared.credentials, undefined);
  });

  it('explains mistakes: template before any CA, unknown auth method, bad template field', async () => {
    const a = OpensslCa.root(kit.work, 'ca-c');
    const orphan = await cli(['registries', 'create', 'bad-1', '--provisioning-template-file', 'nope.json']);
    assert.notEqual(orphan.code, 0);
    assert.match(orphan.stderr, /must follow the --ca-certificate-file/);
    const method = await cli(['registries', 'create', 'bad-2', '--device-auth-method', 'passwords']);
    assert.notEqual(method.code, 0);
    assert.match(method.stderr, /jwt-or-certificate, jwt-only, certificate-only/);
    const bad = join(kit.work, 'bad.json');
    await writeFile(bad, JSON.stringify({ deviceId: '${CommonNmae}' }));
    const r = await cli(['registries', 'create', 'bad-3', '--ca-certificate-file', a.certPath, '--provisioning-template-file', bad]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unknown certificate field 'CommonNmae'/);
  });
});
