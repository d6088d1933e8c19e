import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import type { CertificatesRevoked } from '../bus/bus.js';
import { LocalBus } from '../bus/local-bus.js';
import { certificateKey, serialKey, type CertificateKey, type RevocationSource } from '../domain/certificate-keys.js';
import { KeywayError, type RpcStatus } from '../domain/errors.js';
import { formatDevice, type DeviceName, type LocationName, type RegistryName } from '../domain/names.js';
import type { DeviceAuthMethod, ProvisioningTemplate } from '../domain/resources.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';
import { capturingLogger } from '../../test/support/log-capture.js';
import { deviceChain, issue, makeRoot, type TestCert } from '../../test/support/test-pki.js';
import { DeviceManagerService } from './device-manager-service.js';

const dir = mkdtempSync(join(tmpdir(), 'keyway-devcerts-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const LOC: LocationName = { project: 'acme', location: 'europe-west1' };
const DAY = 86_400_000;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const spkiSha = (c: TestCert): string => sha(Buffer.from(c.cert.publicKey.rawData));

async function rejects(promise: Promise<unknown>, status: RpcStatus, message?: RegExp): Promise<void> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof KeywayError, `expected a KeywayError, got ${String(e)}`);
    assert.equal(e.status, status, e.message);
    if (message) assert.match(e.message, message);
    return;
  }
  assert.fail(`expected ${status}, but it succeeded`);
}

/** Keyway's PKI as the service sees it: a RevocationSource; here the revoked keys are set by the test. */
class RevokedKeys implements RevocationSource {
  readonly keys = new Set<CertificateKey>();
  async revokedAmong(keys: readonly CertificateKey[]): Promise<ReadonlySet<CertificateKey>> {
    return new Set(keys.filter((k) => this.keys.has(k)));
  }
}

interface Fixture {
  store: Store;
  bus: LocalBus;
  service: DeviceManagerService;
  pki: RevokedKeys;
  revoked: CertificatesRevoked[];
  logs: Record<string, unknown>[];
  rawLog: string[];
  close(): Promise<void>;
}

let counter = 0;
async function fixture(): Promise<Fixture> {
  const store = await openSqliteStore(join(dir, `db-${++counter}`, 'keyway.db'));
  const bus = new LocalBus();
  const pki = new RevokedKeys();
  const { logger, lines: logs, raw: rawLog } = capturingLogger('info');
  const service = new DeviceManagerService({ store, bus, flushIntervalMs: 60_000, revocations: [pki], logger });
  const revoked: CertificatesRevoked[] = [];
  bus.onCertificatesRevoked((e) => revoked.push(e));
  return {
    store,
    bus,
    service,
    pki,
    revoked,
    logs,
    rawLog,
    close: async () => {
      await service.close();
      await bus.close();
      await store.close();
    },
  };
}

async function registryWith(
  f: Fixture,
  id: string,
  cas: readonly (TestCert | { ca: TestCert; template: ProvisioningTemplate })[],
  deviceAuthMethod: DeviceAuthMethod = 'JWT_OR_CERTIFICATE',
): Promise<RegistryName> {
  await f.service.createRegistry(LOC, id, {});
  const name = { ...LOC, registry: id };
  const credentials = cas.map((c) =>
    'template' in c
      ? { publicKeyCertificate: { format: 'X509_CERTIFICATE_PEM' as const, certificate: c.ca.pem }, provisioningTemplate: c.template }
      : { publicKeyCertificate: { format: 'X509_CERTIFICATE_PEM' as const, certificate: c.pem } },
  );
  // Set through the store: the registry-credentials API is another module's and is tested there.
  await f.store.updateRegistry(name, { credentials, deviceAuthMethod });
  return name;
}

const clientId = (d: DeviceName): string => formatDevice(d);

describe('device certificates and certificate authentication', () => {
  let f: Fixture;
  let root: TestCert;
  let batch: TestCert;
  let leaf: TestCert;
  let REG: RegistryName;
  const dev = (device: string): DeviceName => ({ ...REG, device });
  const chainOf = (c: TestCert): Buffer[] => [c.der, batch.der];

  before(async () => {
    f = await fixture();
    ({ root, intermediate: batch, leaf } = await deviceChain('dev1'));
    REG = await registryWith(f, 'fleet', [root]);
    await f.service.createDevice(REG, 'dev1', {});
    await f.service.createDevice(REG, 'dev2', {});
  });
  after(() => f.close());

  describe('registration', () => {
    it('registers a certificate (with its intermediate) ACTIVE by default, lists and gets it', async () => {
      const registered = await f.service.registerDeviceCertificate(dev('dev1'), leaf.pem + batch.pem);
      assert.equal(registered.fingerprint, sha(leaf.der));
      assert.equal(registered.state, 'ACTIVE');
      assert.equal(registered.subject, 'CN=dev1');
      assert.equal(registered.issuer, batch.cert.subject);
      assert.equal(registered.serialNumber, leaf.cert.serialNumber.replace(/^0+/, ''));
      assert.deepEqual(registered.device, dev('dev1'));
      assert.equal(new x509.X509Certificate(registered.certificatePem).subject, 'CN=dev1');
      assert.deepEqual((await f.service.listDeviceCertificates(dev('dev1'))).map((c) => c.fingerprint), [registered.fingerprint]);
      assert.deepEqual(await f.service.getDeviceCertificate(dev('dev1'), registered.fingerprint.toUpperCase()), registered);
      assert.deepEqual(await f.service.listDeviceCertificates(dev('dev2')), []);
    });

    it('registers INACTIVE on request and refuses PENDING_ACTIVATION or other states', async () => {
      const other = await issue(batch, { subject: 'CN=dev1-b' });
      const c = await f.service.registerDeviceCertificate(dev('dev1'), other.pem + batch.pem, 'INACTIVE');
      assert.equal(c.state, 'INACTIVE');
      const third = await issue(batch, { subject: 'CN=dev1-c' });
      for (const bad of ['PENDING_ACTIVATION', 'REVOKED', 'nope'])
        await rejects(f.service.registerDeviceCertificate(dev('dev1'), third.pem + batch.pem, bad as 'ACTIVE'), 'INVALID_ARGUMENT', /deviceCertificate.state/);
    });

    it('refuses a certificate already registered, to this device or another', async () => {
      await rejects(f.service.registerDeviceCertificate(dev('dev1'), leaf.pem + batch.pem), 'ALREADY_EXISTS', /already registered to this device/);
      await rejects(f.service.registerDeviceCertificate(dev('dev2'), leaf.pem + batch.pem), 'ALREADY_EXISTS', /to another device/);
    });

    it('refuses a CA certificate, an expired certificate, one from an outside CA, a wrong EKU, without the needed intermediate', async () => {
      const field = /deviceCertificate.certificatePem/;
      await rejects(f.service.registerDeviceCertificate(dev('dev2'), batch.pem), 'INVALID_ARGUMENT', /leaf is a CA certificate/);
      const expired = await issue(batch, { subject: 'CN=dev2', notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
      await rejects(f.service.registerDeviceCertificate(dev('dev2'), expired.pem + batch.pem), 'INVALID_ARGUMENT', /expired at/);
      const outsideRoot = await makeRoot({ subject: 'CN=Outside Root' });
      const outside = await issue(outsideRoot, { subject: 'CN=dev2' });
      await rejects(f.service.registerDeviceCertificate(dev('dev2'), outside.pem), 'INVALID_ARGUMENT', /not among the registry's CAs/);
      const server = await issue(batch, { subject: 'CN=dev2', extendedKeyUsage: [x509.ExtendedKeyUsage.serverAuth] });
      await rejects(f.service.registerDeviceCertificate(dev('dev2'), server.pem + batch.pem), 'INVALID_ARGUMENT', /without clientAuth/);
      const fine = await issue(batch, { subject: 'CN=dev2' });
      await rejects(f.service.registerDeviceCertificate(dev('dev2'), fine.pem), 'INVALID_ARGUMENT', field);
    });

    it('refuses garbage, private keys and unknown devices; a registry without CAs is a failed precondition', async () => {
      await rejects(f.service.registerDeviceCertificate(dev('dev2'), 'hello'), 'INVALID_ARGUMENT', /deviceCertificate.certificatePem/);
      await rejects(f.service.registerDeviceCertificate(dev('dev2'), leaf.pem + leaf.keyPem), 'INVALID_ARGUMENT', /private key/);
      await rejects(f.service.registerDeviceCertificate(dev('nobody'), leaf.pem), 'NOT_FOUND');
      const bare = { ...LOC, registry: 'bare' };
      await f.service.createRegistry(LOC, 'bare', {});
      await f.service.createDevice(bare, 'dev1', {});
      await rejects(f.service.registerDeviceCertificate({ ...bare, device: 'dev1' }, leaf.pem + batch.pem), 'FAILED_PRECONDITION', /no CA certificates/);
    });
  });

  describe('states', () => {
    it('ACTIVE → INACTIVE publishes a revocation of the certificate; INACTIVE → ACTIVE does not', async () => {
      const c = await issue(batch, { subject: 'CN=dev2' });
      const fp = (await f.service.registerDeviceCertificate(dev('dev2'), c.pem + batch.pem)).fingerprint;
      f.revoked.length = 0;
      const inactive = await f.service.updateDeviceCertificateState(dev('dev2'), fp, 'INACTIVE', ['state']);
      assert.equal(inactive.state, 'INACTIVE');
      assert.deepEqual(f.revoked, [{ keys: [certificateKey(fp)], reason: 'certificate inactive' }]);
      const active = await f.service.updateDeviceCertificateState(dev('dev2'), fp, 'ACTIVE', ['state']);
      assert.equal(active.state, 'ACTIVE');
      assert.equal(f.revoked.length, 1);
      await f.service.updateDeviceCertificateState(dev('dev2'), fp, 'REVOKED', ['state']);
      assert.deepEqual(f.revoked[1], { keys: [certificateKey(fp)], reason: 'certificate revoked' });
      // REVOKED is permanent.
      for (const s of ['ACTIVE', 'INACTIVE'])
        await rejects(f.service.updateDeviceCertificateState(dev('dev2'), fp, s, ['state']), 'FAILED_PRECONDITION', /permanent/);
      assert.equal((await f.service.getDeviceCertificate(dev('dev2'), fp)).state, 'REVOKED');
    });

    it('refuses PENDING_ACTIVATION as a target, a wrong mask, a malformed fingerprint, another device\'s certificate', async () => {
      const fp = sha(leaf.der);
      await rejects(f.service.updateDeviceCertificateState(dev('dev1'), fp, 'PENDING_ACTIVATION', ['state']), 'INVALID_ARGUMENT', /set by Keyway only/);
      await rejects(f.service.updateDeviceCertificateState(dev('dev1'), fp, 'INACTIVE', ['blocked']), 'INVALID_ARGUMENT', /updateMask/);
      await rejects(f.service.updateDeviceCertificateState(dev('dev1'), fp, 'INACTIVE', []), 'INVALID_ARGUMENT', /updateMask/);
      await rejects(f.service.getDeviceCertificate(dev('dev1'), 'abc'), 'INVALID_ARGUMENT', /64 hexadecimal/);
      await rejects(f.service.getDeviceCertificate(dev('dev2'), fp), 'NOT_FOUND');
      await rejects(f.service.updateDeviceCertificateState(dev('dev2'), fp, 'INACTIVE', ['state']), 'NOT_FOUND');
      await rejects(f.service.deleteDeviceCertificate(dev('dev2'), fp), 'NOT_FOUND');
    });

    it('deleting a certificate publishes its revocation; deleting the device deletes its certificates', async () => {
      await f.service.createDevice(REG, 'dev3', {});
      const c = await issue(batch, { subject: 'CN=dev3' });
      const fp = (await f.service.registerDeviceCertificate(dev('dev3'), c.pem + batch.pem)).fingerprint;
      f.revoked.length = 0;
      await f.service.deleteDeviceCertificate(dev('dev3'), fp);
      assert.deepEqual(f.revoked, [{ keys: [certificateKey(fp)], reason: 'certificate deleted' }]);
      await rejects(f.service.getDeviceCertificate(dev('dev3'), fp), 'NOT_FOUND');
      await f.service.registerDeviceCertificate(dev('dev3'), c.pem + batch.pem);
      await f.service.deleteDevice(dev('dev3'));
      assert.equal(await f.store.getDeviceCertificate(fp), undefined);
      // Free again: it can be registered to another device.
      await f.service.createDevice(REG, 'dev4', {});
      await f.service.registerDeviceCertificate(dev('dev4'), c.pem + batch.pem);
    });
  });

  describe('authenticateCertificate', () => {
    const refusedWith = async (id: string, chain: Buffer[], reason: RegExp): Promise<void> => {
      const r = await f.service.authenticateCertificate(id, chain);
      assert.equal(r.ok, false, `expected a refusal matching ${reason}`);
      if (!r.ok) assert.match(r.reason, reason);
    };

    it('admits a registered ACTIVE certificate of the device the client id names, by id or numeric id', async () => {
      const r = await f.service.authenticateCertificate(clientId(dev('dev1')), chainOf(leaf));
      assert.ok(r.ok, r.ok ? '' : r.reason);
      assert.equal(r.device.method, 'certificate');
      assert.equal(r.device.key, clientId(dev('dev1')));
      assert.equal(r.device.certificateFingerprint, sha(leaf.der));
      assert.equal(r.device.provisioned, false);
      assert.equal(r.device.credentialFingerprint, undefined);
      assert.ok(r.device.revocationKeys.includes(certificateKey(sha(leaf.der))));
      assert.ok(r.device.revocationKeys.includes(serialKey(spkiSha(batch), leaf.cert.serialNumber)));
      assert.ok(r.device.revocationKeys.includes(serialKey(spkiSha(root), batch.cert.serialNumber)));
      assert.equal(r.device.notAfter.getTime(), leaf.cert.notAfter.getTime());
      const numId = (await f.service.getDevice(dev('dev1'))).numId;
      const byNum = await f.service.authenticateCertificate(clientId(dev(numId)), chainOf(leaf));
      assert.ok(byNum.ok && byNum.device.name.device === 'dev1', byNum.ok ? '' : byNum.reason);
    });

    it('refuses a certificate from a CA the registry does not have, and a forged one', async () => {
      const outsideRoot = await makeRoot({ subject: 'CN=Outside Root' });
      const outsideCa = await issue(outsideRoot, { subject: 'CN=Outside CA', ca: true });
      const outside = await issue(outsideCa, { subject: 'CN=dev1' });
      await refusedWith(clientId(dev('dev1')), [outside.der, outsideCa.der, outsideRoot.der], /not among the registry's CAs/);
      const impostor = await makeRoot({ subject: batch.cert.subject });
      const forged = await issue(impostor, { subject: 'CN=dev1' });
      await refusedWith(clientId(dev('dev1')), [forged.der, batch.der], /does not verify/);
    });

    it('refuses an expired certificate even when registered', async () => {
      const c = await issue(batch, { subject: 'CN=dev2' });
      await f.service.registerDeviceCertificate(dev('dev2'), c.pem + batch.pem);
      const r = await f.service.authenticateCertificate(clientId(dev('dev2')), chainOf(c), new Date(c.cert.notAfter.getTime() + 1000));
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.reason, /expired at/);
      assert.ok((await f.service.authenticateCertificate(clientId(dev('dev2')), chainOf(c))).ok);
    });

    it('refuses INACTIVE and REVOKED certificates', async () => {
      const c = await issue(batch, { subject: 'CN=dev2' });
      const fp = (await f.service.registerDeviceCertificate(dev('dev2'), c.pem + batch.pem, 'INACTIVE')).fingerprint;
      await refusedWith(clientId(dev('dev2')), chainOf(c), /the certificate is INACTIVE/);
      await f.service.updateDeviceCertificateState(dev('dev2'), fp, 'REVOKED', ['state']);
      await refusedWith(clientId(dev('dev2')), chainOf(c), /the certificate is REVOKED/);
    });

    it('refuses a certificate revoked by a CRL uploaded to the registry', async () => {
      const c = await issue(batch, { subject: 'CN=dev2' });
      await f.service.registerDeviceCertificate(dev('dev2'), c.pem + batch.pem);
      assert.ok((await f.service.authenticateCertificate(clientId(dev('dev2')), chainOf(c))).ok);
      const replaced = await f.store.replaceRegistryCrl(REG, {
        issuerSpkiSha256: spkiSha(batch),
        crlNumber: 1n,
        entries: [{ serial: c.cert.serialNumber, revocationTime: new Date() }],
        uploadedAt: new Date(),
      });
      assert.equal(replaced.status, 'replaced');
      await refusedWith(clientId(dev('dev2')), chainOf(c), /the certificate is revoked/);
    });

    it("refuses a certificate issued by an intermediate Keyway's PKI revoked, and one the PKI revoked itself", async () => {
      const other = await deviceChain('dev5');
      const reg = await registryWith(f, 'pki-fleet', [other.root]);
      await f.service.createDevice(reg, 'dev5', {});
      await f.service.registerDeviceCertificate({ ...reg, device: 'dev5' }, other.leaf.pem + other.intermediate.pem);
      const id = clientId({ ...reg, device: 'dev5' });
      assert.ok((await f.service.authenticateCertificate(id, [other.leaf.der, other.intermediate.der])).ok);
      f.pki.keys.add(serialKey(spkiSha(other.root), other.intermediate.cert.serialNumber));
      await refusedWith(id, [other.leaf.der, other.intermediate.der], /issuer "CN=Test Batch CA, O=Keyway Tests" of the certificate is revoked/);
      f.pki.keys.clear();
      f.pki.keys.add(certificateKey(sha(other.leaf.der)));
      await refusedWith(id, [other.leaf.der, other.intermediate.der], /the certificate is revoked/);
      // Nor can a certificate under the revoked intermediate be registered.
      f.pki.keys.clear();
      f.pki.keys.add(serialKey(spkiSha(other.root), other.intermediate.cert.serialNumber));
      await f.service.createDevice(reg, 'dev6', {});
      const late = await issue(other.intermediate, { subject: 'CN=dev6' });
      await rejects(
        f.service.registerDeviceCertificate({ ...reg, device: 'dev6' }, late.pem + other.intermediate.pem),
        'FAILED_PRECONDITION',
        /cannot be registered: issuer .* is revoked/,
      );
      f.pki.keys.clear();
    });

    it('refuses a certificate registered to another device (the client id names another device)', async () => {
      await refusedWith(clientId(dev('dev2')), chainOf(leaf), /registered to another device/);
      await refusedWith(clientId(dev('nobody')), chainOf(leaf), /registered to another device/);
    });

    it('refuses a CA certificate used as a leaf', async () => {
      await refusedWith(clientId(dev('dev1')), [batch.der, root.der], /leaf is a CA certificate/);
    });

    it('refuses a blocked device, an unregistered certificate, a malformed client id, an unknown registry', async () => {
      await f.service.createDevice(REG, 'blocked1', { blocked: true });
      const c = await issue(batch, { subject: 'CN=blocked1' });
      await f.service.registerDeviceCertificate(dev('blocked1'), c.pem + batch.pem);
      await refusedWith(clientId(dev('blocked1')), chainOf(c), /device is blocked/);
      const unregistered = await issue(batch, { subject: 'CN=dev2' });
      await refusedWith(clientId(dev('dev2')), chainOf(unregistered), /not registered to the device/);
      await refusedWith(clientId(dev('ghost')), chainOf(unregistered), /unknown device/);
      await refusedWith('not a path', chainOf(leaf), /malformed client id/);
      await refusedWith(clientId({ ...LOC, registry: 'nope', device: 'dev1' }), chainOf(leaf), /unknown registry/);
    });

    it('refuses certificates in a JWT_ONLY registry and JWTs in a CERTIFICATE_ONLY registry', async () => {
      const jwtOnly = await registryWith(f, 'jwt-only', [root], 'JWT_ONLY');
      await f.service.createDevice(jwtOnly, 'dev1', {});
      await refusedWith(clientId({ ...jwtOnly, device: 'dev1' }), chainOf(leaf), /accepts only JWT/);
      const certOnly = await registryWith(f, 'cert-only', [root], 'CERTIFICATE_ONLY');
      await f.service.createDevice(certOnly, 'dev1', {});
      const r = await f.service.authenticateJwt(clientId({ ...certOnly, device: 'dev1' }), 'a.b.c');
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.reason, /accepts only certificate authentication/);
    });

    it('admits a device whose ES256_X509_PEM credential is the presented certificate (Cloud IoT Core style)', async () => {
      const direct = await issue(root, { subject: 'CN=google-style' });
      const device = await f.service.createDevice(REG, 'gstyle1', {
        credentials: [{ publicKey: { format: 'ES256_X509_PEM', key: direct.pem } }],
      });
      const r = await f.service.authenticateCertificate(clientId(dev('gstyle1')), [direct.der]);
      assert.ok(r.ok, r.ok ? '' : r.reason);
      assert.equal(r.device.credentialFingerprint, (await f.store.findDevice(REG, { id: 'gstyle1' }))?.credentials[0]?.fingerprint);
      assert.equal(r.device.numId, device.numId);
      // Another device cannot use it.
      await refusedWith(clientId(dev('dev2')), [direct.der], /not registered to the device/);
    });

    it('logs every refusal at info with the reason, fingerprint, subject and issuer, and never a key', async () => {
      f.logs.length = 0;
      const outsideRoot = await makeRoot({ subject: 'CN=Logged Outside' });
      const outside = await issue(outsideRoot, { subject: 'CN=logged' });
      await refusedWith(clientId(dev('dev1')), [outside.der], /not among/);
      const line = f.logs.find((l) => l.msg === 'device certificate refused');
      assert.ok(line, 'a refusal line');
      assert.equal(line.level, 30);
      assert.equal(line.fingerprint, sha(outside.der));
      assert.equal(line.subject, 'CN=logged');
      assert.equal(line.issuer, 'CN=Logged Outside');
      assert.match(String(line.reason), /not among/);
      assert.ok(!f.rawLog.some((l) => /PRIVATE|BEGIN/.test(l)), 'no key or PEM in the log');
    });
  });

  describe('just-in-time provisioning', () => {
    let jitpRoot: TestCert;
    let jitp: RegistryName;
    const template: ProvisioningTemplate = {
      deviceId: '${CommonName}',
      metadata: { org: '${Organization}' },
      configData: Buffer.from('hello'),
      gatewayType: 'NON_GATEWAY',
    };
    before(async () => {
      jitpRoot = await makeRoot({ subject: 'CN=JITP Root' });
      jitp = await registryWith(f, 'jitp', [root, { ca: jitpRoot, template }]);
    });

    it('creates the device on its first connection, applies the template and admits that connection', async () => {
      const c = await issue(jitpRoot, { subject: 'CN=sensor-7, O=Acme' });
      const name = { ...jitp, device: 'sensor-7' };
      const r = await f.service.authenticateCertificate(clientId(name), [c.der]);
      assert.ok(r.ok, r.ok ? '' : r.reason);
      assert.equal(r.device.provisioned, true);
      const device = await f.service.getDevice(name);
      assert.equal(device.numId, r.device.numId);
      assert.deepEqual(device.metadata, { org: 'Acme' });
      assert.equal(device.config.binaryData.toString(), 'hello');
      assert.equal(device.gatewayConfig.gatewayType, 'NON_GATEWAY');
      assert.deepEqual(device.credentials, []);
      const certs = await f.service.listDeviceCertificates(name);
      assert.deepEqual(certs.map((x) => [x.fingerprint, x.state]), [[sha(c.der), 'ACTIVE']]);
      const again = await f.service.authenticateCertificate(clientId(name), [c.der]);
      assert.ok(again.ok && !again.device.provisioned, again.ok ? '' : again.reason);
    });

    it('two first connections at once: one device, both admitted', async () => {
      const c = await issue(jitpRoot, { subject: 'CN=sensor-8, O=Acme' });
      const id = clientId({ ...jitp, device: 'sensor-8' });
      const [a, b] = await Promise.all([f.service.authenticateCertificate(id, [c.der]), f.service.authenticateCertificate(id, [c.der])]);
      assert.ok(a.ok && b.ok, `${a.ok ? '' : a.reason} ${b.ok ? '' : b.reason}`);
      assert.equal(a.device.numId, b.device.numId);
      assert.equal([a.device.provisioned, b.device.provisioned].filter(Boolean).length, 1);
    });

    it('refuses when the template names a field the certificate lacks, creating nothing', async () => {
      const c = await issue(jitpRoot, { subject: 'CN=sensor-9' });
      const r = await f.service.authenticateCertificate(clientId({ ...jitp, device: 'sensor-9' }), [c.der]);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.reason, /just-in-time provisioning refused: certificate has no Organization/);
      await rejects(f.service.getDevice({ ...jitp, device: 'sensor-9' }), 'NOT_FOUND');
      assert.equal(await f.store.getDeviceCertificate(sha(c.der)), undefined);
    });

    it('refuses a client id naming another device than the template makes', async () => {
      const c = await issue(jitpRoot, { subject: 'CN=sensor-10, O=Acme' });
      const r = await f.service.authenticateCertificate(clientId({ ...jitp, device: 'sensor-11' }), [c.der]);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.reason, /provisions device 'sensor-10', but the client id names 'sensor-11'/);
      await rejects(f.service.getDevice({ ...jitp, device: 'sensor-10' }), 'NOT_FOUND');
    });

    it('refuses an unknown certificate for an existing device: it must be registered to it', async () => {
      await f.service.createDevice(jitp, 'sensor-12', {});
      const c = await issue(jitpRoot, { subject: 'CN=sensor-12, O=Acme' });
      const r = await f.service.authenticateCertificate(clientId({ ...jitp, device: 'sensor-12' }), [c.der]);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.reason, /must be registered|register the certificate to the device/);
    });

    it('does not provision from a CA without a template', async () => {
      const c = await issue(batch, { subject: 'CN=sensor-13' });
      const r = await f.service.authenticateCertificate(clientId({ ...jitp, device: 'sensor-13' }), [c.der, batch.der]);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.reason, /allows no just-in-time provisioning/);
    });
  });
});
