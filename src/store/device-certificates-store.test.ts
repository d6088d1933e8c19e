import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NewDeviceCertificate } from './device-certificates-store.js';
import { openSqliteStore } from './sqlite-store.js';
import type { NewDevice, Store } from './store.js';
import { newDevice, newRegistry, REG, T0 } from './store-test-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'keyway-devcert-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const fp = (n: number): string => n.toString(16).padStart(64, '0');

const device = (id: string, numId: string, certificates?: NewDeviceCertificate[]): NewDevice =>
  newDevice(id, numId, certificates ? { certificates } : {});

const cert = (n: number, state: NewDeviceCertificate['state'] = 'ACTIVE'): NewDeviceCertificate => ({
  fingerprint: fp(n),
  issuerSpkiSha256: 'ab'.repeat(32),
  serial: n.toString(16),
  subject: `CN=dev${n}`,
  issuer: 'CN=CA',
  notBefore: T0,
  notAfter: new Date(T0.getTime() + 86_400_000),
  pem: '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n',
  state,
  createdAt: T0,
});

describe('device certificates in the store', () => {
  let store: Store;
  before(async () => {
    store = await openSqliteStore(join(dir, 'keyway.db'));
    await store.insertRegistry(newRegistry(), T0);
    assert.equal(await store.insertDevice(device('dev1', '101')), 'created');
    assert.equal(await store.insertDevice(device('dev2', '102')), 'created');
  });
  after(() => store.close());

  it('inserts, reads back with the owning device, and refuses a fingerprint registered anywhere', async () => {
    assert.equal(await store.insertDeviceCertificate('101', cert(1)), 'created');
    const got = await store.getDeviceCertificate(fp(1).toUpperCase());
    assert.deepEqual(got?.device, { ...REG, device: 'dev1' });
    assert.equal(got?.deviceNumId, '101');
    assert.equal(got?.state, 'ACTIVE');
    assert.equal(got?.notAfter.getTime(), T0.getTime() + 86_400_000);
    assert.equal(await store.insertDeviceCertificate('101', cert(1)), 'exists');
    assert.equal(await store.insertDeviceCertificate('102', cert(1)), 'exists');
    assert.equal(await store.insertDeviceCertificate('999', cert(2)), 'device-not-found');
    assert.deepEqual((await store.listDeviceCertificates('101')).map((c) => c.fingerprint), [fp(1)]);
    assert.deepEqual(await store.listDeviceCertificates('102'), []);
  });

  it('keeps REVOKED for good', async () => {
    await store.insertDeviceCertificate('102', cert(3));
    const inactive = await store.updateDeviceCertificateState(fp(3), 'INACTIVE', new Date(T0.getTime() + 1000));
    assert.equal(inactive.status, 'updated');
    if (inactive.status === 'updated') {
      assert.equal(inactive.before.state, 'ACTIVE');
      assert.equal(inactive.after.state, 'INACTIVE');
      assert.equal(inactive.after.updateTime.getTime(), T0.getTime() + 1000);
    }
    assert.equal((await store.updateDeviceCertificateState(fp(3), 'REVOKED', T0)).status, 'updated');
    const back = await store.updateDeviceCertificateState(fp(3), 'ACTIVE', T0);
    assert.equal(back.status, 'revoked');
    assert.equal((await store.getDeviceCertificate(fp(3)))?.state, 'REVOKED');
    assert.equal((await store.updateDeviceCertificateState(fp(99), 'ACTIVE', T0)).status, 'not-found');
  });

  it('creates a device with its certificate in one transaction, and rolls both back when the certificate is taken', async () => {
    assert.equal(await store.insertDevice(device('dev3', '103', [cert(4)])), 'created');
    assert.equal((await store.getDeviceCertificate(fp(4)))?.device.device, 'dev3');
    assert.equal(await store.insertDevice(device('dev4', '104', [cert(4)])), 'certificate-taken');
    assert.equal(await store.findDevice(REG, { id: 'dev4' }), undefined);
    assert.equal((await store.getDeviceCertificate(fp(4)))?.device.device, 'dev3');
  });

  it("deletes a device's certificates with the device, and deletes one certificate", async () => {
    await store.insertDeviceCertificate('103', cert(5));
    assert.equal((await store.deleteDeviceCertificate(fp(5)))?.fingerprint, fp(5));
    assert.equal(await store.deleteDeviceCertificate(fp(5)), undefined);
    await store.deleteDevice('103');
    assert.equal(await store.getDeviceCertificate(fp(4)), undefined);
    assert.equal(await store.insertDeviceCertificate('101', cert(4)), 'created');
  });
});
