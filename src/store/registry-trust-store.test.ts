import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { certificateKey, serialKey } from '../domain/certificate-keys.js';
import type { RegistryName } from '../domain/names.js';
import type { Registry, RegistryCredential } from '../domain/resources.js';
import { openSqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';
import { newRegistry, REG, T0 } from './store-test-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'keyway-trust-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const OTHER: RegistryName = { ...REG, registry: 'other' };
const ISSUER = 'ab'.repeat(32);

const credential: RegistryCredential = {
  publicKeyCertificate: {
    format: 'X509_CERTIFICATE_PEM',
    certificate: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
    x509Details: {
      issuer: 'CN=Root',
      subject: 'CN=Root',
      startTime: new Date('2029-01-01T00:00:00Z'),
      expiryTime: new Date('2039-01-01T00:00:00Z'),
      signatureAlgorithm: 'SHA256withECDSA',
      publicKeyType: 'EC P-256',
    },
  },
  provisioningTemplate: {
    deviceId: 'sensor-${CommonName}',
    metadata: { batch: '${OrganizationalUnit}' },
    configData: Buffer.from([0, 1, 2, 255]),
    gatewayType: 'NON_GATEWAY',
  },
};

const registry = (name: RegistryName, credentials: readonly RegistryCredential[] = []): Registry =>
  newRegistry(name, { credentials, deviceAuthMethod: 'CERTIFICATE_ONLY' });

describe('store: registry trust', () => {
  let store: Store;
  let path: string;
  before(async () => {
    path = join(dir, 'keyway.db');
    store = await openSqliteStore(path);
    assert.equal(await store.insertRegistry(registry(REG, [credential]), T0), 'created');
    assert.equal(await store.insertRegistry(registry(OTHER), T0), 'created');
  });
  after(() => store.close());

  it('keeps CA credentials with details and template, and the device auth method', async () => {
    const got = await store.getRegistry(REG);
    assert.deepEqual(got?.credentials, [credential]);
    assert.equal(got?.deviceAuthMethod, 'CERTIFICATE_ONLY');
    const patched = await store.updateRegistry(REG, { credentials: [], deviceAuthMethod: 'JWT_ONLY' });
    assert.deepEqual(patched?.credentials, []);
    assert.equal(patched?.deviceAuthMethod, 'JWT_ONLY');
    await store.updateRegistry(REG, { credentials: [credential] });
    assert.deepEqual((await store.getRegistry(REG))?.credentials, [credential]);
  });

  it('replaces an issuer’s CRL entries and answers serial keys only', async () => {
    const revoked = serialKey(ISSUER, '0A0B');
    const other = serialKey(ISSUER, 'ff');
    let r = await store.replaceRegistryCrl(REG, {
      issuerSpkiSha256: ISSUER,
      crlNumber: 5n,
      entries: [{ serial: '0a0b', revocationTime: T0 }, { serial: '00:0A:0B', revocationTime: T0 }, { serial: '01', revocationTime: T0 }],
      uploadedAt: T0,
    });
    assert.deepEqual(r, { status: 'replaced' });
    const found = await store.revokedInRegistry(REG, [revoked, other, certificateKey('cd'.repeat(32))]);
    assert.deepEqual([...found], [revoked]);
    // Another registry's CRLs are not this one's.
    assert.equal((await store.revokedInRegistry(OTHER, [revoked])).size, 0);

    // An older CRL is refused and changes nothing.
    r = await store.replaceRegistryCrl(REG, { issuerSpkiSha256: ISSUER, crlNumber: 4n, entries: [], uploadedAt: T0 });
    assert.deepEqual(r, { status: 'stale', storedCrlNumber: 5n });
    assert.equal((await store.revokedInRegistry(REG, [revoked])).size, 1);

    // A newer one replaces the list: 0a0b is no longer there (removeFromCRL), ff is.
    r = await store.replaceRegistryCrl(REG, {
      issuerSpkiSha256: ISSUER,
      crlNumber: 2n ** 100n,
      entries: [{ serial: 'FF', revocationTime: T0 }],
      uploadedAt: T0,
    });
    assert.deepEqual(r, { status: 'replaced' });
    assert.deepEqual([...(await store.revokedInRegistry(REG, [revoked, other]))], [other]);
    assert.deepEqual(
      await store.replaceRegistryCrl({ ...REG, registry: 'nope' }, { issuerSpkiSha256: ISSUER, crlNumber: 1n, entries: [], uploadedAt: T0 }),
      { status: 'registry-not-found' },
    );
  });

  it('stores many entries, and deleting the registry takes its CRLs along', async () => {
    const entries = Array.from({ length: 1200 }, (_, i) => ({ serial: (i + 1).toString(16), revocationTime: T0 }));
    await store.replaceRegistryCrl(OTHER, { issuerSpkiSha256: ISSUER, crlNumber: undefined, entries, uploadedAt: T0 });
    assert.equal((await store.revokedInRegistry(OTHER, [serialKey(ISSUER, '4b0')])).size, 1);
    assert.equal(await store.deleteRegistry(OTHER), 'deleted');
    const raw = new BetterSqlite3(path, { readonly: true });
    try {
      const n = raw.prepare("select count(*) as n from registry_crl_entries where registry_id = 'other'").get() as { n: number };
      assert.equal(n.n, 0);
    } finally {
      raw.close();
    }
  });
});
