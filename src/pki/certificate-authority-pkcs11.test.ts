/**
 * The certificate authority with its keys in a PKCS#11 token (SoftHSM2), end to end: the custody
 * is chosen by configuration (openCaKeyCustodies), the root and the intermediate are generated in
 * the token, and a device certificate issued from an openssl CSR verifies with `openssl verify`,
 * before and after a restart.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KeywayError } from '../domain/errors.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';
import { CertificateAuthorityService, custodyLabel } from './certificate-authority-service.js';
import { openCaKeyCustodies, type CaKeyCustodies } from './custodies.js';
import { parsePkcs11Reference } from './pkcs11-custody.js';
import { EC_KEY, opensslIn, RSA_KEY, type OpensslWorkbench } from '../../test/support/openssl-ca.js';
import { createSoftHsmToken, softHsmSkip, type SoftHsmToken } from '../../test/support/softhsm.js';
import { LOCATION } from './authority-test-bed.js';

describe('certificate authority with CA keys in a PKCS#11 token (SoftHSM2)', { skip: softHsmSkip }, () => {
  let token: SoftHsmToken;
  let dir: string;
  let store: Store;
  /** openssl in `dir`: device keys and CSRs, and the verdict on what the CA issued. */
  let tools: OpensslWorkbench;
  const masterKey = Buffer.alloc(32, 9).toString('base64');

  before(async () => {
    token = await createSoftHsmToken();
    dir = await mkdtemp(join(tmpdir(), 'keyway-ca-pkcs11-'));
    tools = opensslIn(dir);
    await writeFile(join(dir, 'pin'), token.pin, { mode: 0o600 });
    store = await openSqliteStore(join(dir, 'data', 'keyway.db'));
  });
  after(async () => {
    await store?.close();
    await token?.remove();
    await rm(dir, { recursive: true, force: true });
  });

  const openCustodies = (withToken = true): Promise<CaKeyCustodies> =>
    openCaKeyCustodies({
      dataDir: join(dir, 'data'),
      masterKey,
      ...(withToken ? { pkcs11: { module: token.module, tokenLabel: token.tokenLabel, pinFile: join(dir, 'pin') } } : {}),
    });

  /** `openssl verify` of a device certificate against the root, the intermediate (chain[0]) untrusted. */
  const verifyChain = (certificatePem: string, chain: readonly string[], file: string): Promise<string> =>
    tools.verify(file, certificatePem, chain[1] ?? '', chain.slice(0, 1), ['-x509_strict', '-purpose', 'sslclient']);

  test('a root and an intermediate made in the token issue a device certificate that openssl verifies, before and after a restart', async () => {
    const ca = (custodies: CaKeyCustodies): CertificateAuthorityService =>
      new CertificateAuthorityService({ store: store.pki, custodies });
    const intermediateName = { ...LOCATION, authority: 'batch-1' };

    let custodies = await openCustodies();
    try {
      const service = ca(custodies);
      const root = await service.createRoot(LOCATION, 'root');
      const intermediate = await service.createIntermediate(LOCATION, 'batch-1', { parent: 'root', batch: 'line 1' });
      const rsaIntermediate = await service.createIntermediate(LOCATION, 'batch-rsa', {
        parent: 'root',
        batch: 'line 2',
        keyAlgorithm: 'RSA_2048',
      });
      for (const authority of [root, intermediate, rsaIntermediate]) {
        assert.equal(authority.custodyKind, 'pkcs11');
        // The store keeps where the key is, not the key.
        const reference = parsePkcs11Reference(authority.keyReference);
        assert.equal(reference.token, token.tokenLabel);
        assert.equal(reference.label, custodyLabel(authority.name));
        assert.deepEqual(Object.keys(JSON.parse(authority.keyReference)).sort(), ['id', 'kind', 'label', 'token']);
      }

      const issued = await service.issueFromCsr(intermediateName, await tools.csr('dev1', EC_KEY, '/CN=dev1'));
      assert.match(await verifyChain(issued.certificatePem, issued.chain, 'dev1'), /dev1\.pem: OK$/);
      const fromRsa = await service.issueFromCsr(
        { ...LOCATION, authority: 'batch-rsa' },
        await tools.csr('dev2', RSA_KEY(2048), '/CN=dev2'),
      );
      assert.match(await verifyChain(fromRsa.certificatePem, fromRsa.chain, 'dev2'), /dev2\.pem: OK$/);
    } finally {
      await custodies.close();
    }

    // A restart: the module is finalized and loaded again; the keys are found by their references.
    custodies = await openCustodies();
    try {
      const service = ca(custodies);
      const issued = await service.issueFromCsr(intermediateName, await tools.csr('dev3', EC_KEY, '/CN=dev3'));
      assert.match(await verifyChain(issued.certificatePem, issued.chain, 'dev3'), /dev3\.pem: OK$/);

      // The CRL is signed in the token too.
      await service.revokeCertificate(intermediateName, issued.serialNumber, 'KEY_COMPROMISE');
      const crl = await service.crl(intermediateName);
      await writeFile(join(dir, 'batch-1.crl'), crl.der);
      const text = tools.openssl(['crl', '-inform', 'DER', '-in', 'batch-1.crl', '-CAfile', 'dev3-intermediate.pem', '-noout', '-text']);
      assert.match(text, /verify OK/);
      // openssl pads the serial to whole bytes; ours drops leading zeros.
      assert.match(text, new RegExp(`Serial Number: 0?${issued.serialNumber.toUpperCase()}\\n`));
    } finally {
      await custodies.close();
    }
  });

  test('without the token configured, a CA whose key is in it says so instead of signing', async () => {
    const custodies = await openCustodies(false);
    try {
      const service = new CertificateAuthorityService({ store: store.pki, custodies });
      await assert.rejects(
        service.issueFromCsr({ ...LOCATION, authority: 'batch-1' }, await tools.csr('dev4', EC_KEY, '/CN=dev4')),
        (e: unknown) => e instanceof KeywayError && e.status === 'FAILED_PRECONDITION' && /PKCS#11 token, but none is configured/.test(e.message),
      );
    } finally {
      await custodies.close();
    }
  });
});
