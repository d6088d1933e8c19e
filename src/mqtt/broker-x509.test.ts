/**
 * Devices authenticated by mutual TLS, end to end: the broker over real TLS with the real device
 * manager, client certificates from an outside CA made with `openssl` (and test-pki where a
 * certificate must be odd), clients mosquitto_pub/mosquitto_sub and mqtt.js. Every refusal the
 * issue lists is tried, and each must be logged with its reason.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { DeviceName, RegistryName } from '../domain/names.js';
import type { RegistryCredential } from '../domain/resources.js';
import { capturingLogger } from '../../test/support/log-capture.js';
import { OpensslCa, type IssuedFiles } from '../../test/support/openssl-ca.js';
import { RawClient } from '../../test/support/raw-client.js';
import { issue, makeRoot } from '../../test/support/test-pki.js';
import {
  closed,
  connectBackend,
  eventually,
  inbox,
  LOCATION,
  mqttConnect,
  pki,
  PROJECT,
  REG,
  REGISTRY,
  refusedWith,
  startBroker,
  type Harness,
} from './broker-harness.test.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'keyway-x509-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const clientIdOf = (id: string, registry = REGISTRY): string => `projects/${PROJECT}/locations/${LOCATION}/registries/${registry}/devices/${id}`;
const nameOf = (id: string): DeviceName => ({ ...REG, device: id });
const fingerprintOf = (pem: string): string => createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
const caCredential = (pem: string, template?: RegistryCredential['provisioningTemplate']): RegistryCredential => ({
  publicKeyCertificate: { format: 'X509_CERTIFICATE_PEM', certificate: pem },
  ...(template ? { provisioningTemplate: template } : {}),
});

/** Log lines, parsed, of the broker and the device manager. */
interface LogLine {
  readonly msg: string;
  readonly reason?: string;
  readonly certificate?: string;
  readonly code?: number;
  readonly [key: string]: unknown;
}

let h: Harness;
let lines: LogLine[];
let root: OpensslCa;
let batch: OpensslCa;

before(async () => {
  const captured = capturingLogger<LogLine>();
  lines = captured.lines;
  h = await startBroker({}, undefined, { logger: captured.logger });
  root = OpensslCa.root(dir, 'Outside Root');
  batch = root.intermediate('Outside Batch 1');
  await h.service.patchRegistry(REG, { credentials: [caCredential(root.pem)] }, ['credentials']);
});
after(async () => h.close());

/** A device with a certificate from `ca` registered to it (ACTIVE). */
async function deviceWithCertificate(id: string, ca: OpensslCa = root, config?: string): Promise<IssuedFiles> {
  await h.service.createDevice(REG, id, config !== undefined ? { configData: Buffer.from(config) } : {});
  const issued = ca.issue(id);
  // An intermediate's certificate goes with the leaf, so that the chain reaches the registry's root.
  await h.service.registerDeviceCertificate(nameOf(id), ca === root ? issued.pem : issued.pem + ca.pem);
  return issued;
}

function connectWithCertificate(id: string, files: { pem: string; keyPem: string }, chain = '', options: IClientOptions = {}): Promise<MqttClient> {
  return mqttConnect(h.port, { clientId: clientIdOf(id), key: files.keyPem, cert: files.pem + chain, ...options });
}

/** The refusal logged for a certificate, with its reason. */
const refusalOf = (pem: string): LogLine | undefined => {
  const fingerprint = fingerprintOf(pem);
  return lines.find((l) => l.msg === 'connection refused' && l.certificate === fingerprint);
};

async function refused(id: string, files: { pem: string; keyPem: string }, reason: RegExp, chain = ''): Promise<void> {
  await assert.rejects(connectWithCertificate(id, files, chain, { protocolVersion: 5 }), refusedWith(0x87), 'MQTT 5: not authorised');
  await assert.rejects(connectWithCertificate(id, files, chain), refusedWith(5), 'MQTT 3.1.1: CONNACK 5');
  const line = await eventually(() => {
    const found = refusalOf(files.pem);
    assert.ok(found, 'the refusal is logged with the certificate');
    return found;
  });
  assert.match(line.reason ?? '', reason, 'the logged reason');
}

describe('devices authenticated by client certificates', () => {
  it('mosquitto_pub and mosquitto_sub connect with a certificate from an outside openssl CA', async () => {
    const files = await deviceWithCertificate('mosq1', root, 'config-v1');
    const backend = await connectBackend(h);
    const got = inbox(backend);
    await backend.subscribeAsync(`registries/${REGISTRY}/devices/mosq1/events/#`, { qos: 1 });
    const tls = ['-h', '127.0.0.1', '-p', String(h.port), '--cafile', join(dir, 'server-ca.crt'), '--cert', files.certPath, '--key', files.keyPath];
    writeFileSync(join(dir, 'server-ca.crt'), pki.caCertPem);
    await run('mosquitto_pub', [...tls, '-V', 'mqttv311', '-i', clientIdOf('mosq1'), '-t', '/devices/mosq1/events', '-m', 'hello from mosquitto', '-q', '1']);
    await eventually(() => assert.equal(got[0]?.payload.toString(), 'hello from mosquitto', 'the backend got the event'));
    const { stdout } = await run('mosquitto_sub', [...tls, '-V', 'mqttv5', '-i', clientIdOf('mosq1'), '-t', '/devices/mosq1/config', '-q', '1', '-C', '1', '-W', '5']);
    assert.equal(stdout.trim(), 'config-v1');
    await backend.endAsync();
  });

  it('mqtt.js connects with a certificate and its intermediate, publishes, and gets its config', async () => {
    const files = await deviceWithCertificate('js1', batch, 'cfg');
    const client = await connectWithCertificate('js1', files, batch.pem, { protocolVersion: 5 });
    const got = inbox(client);
    await client.subscribeAsync('/devices/js1/config', { qos: 1 });
    await client.publishAsync('/devices/js1/events', 'hi', { qos: 1 });
    await eventually(() => assert.equal(got[0]?.payload.toString(), 'cfg', 'config delivered'));
    // The password is ignored when a certificate is presented.
    await client.endAsync();
    const again = await connectWithCertificate('js1', files, batch.pem, { username: 'x', password: 'not a jwt' });
    await again.endAsync();
    assert.ok(lines.some((l) => l.msg === 'device connected with a client certificate' && l.device === `${clientIdOf('js1')}`), 'logged');
  });

  it('refuses a certificate from a CA the registry does not have', async () => {
    const stranger = OpensslCa.root(dir, 'Stranger Root');
    await h.service.createDevice(REG, 'stranger1', {});
    await refused('stranger1', stranger.issue('stranger1'), /not among the registry's CAs|not.*trusted|unknown|CA/i);
  });

  it('refuses an expired certificate', async () => {
    await h.service.createDevice(REG, 'old1', {});
    const now = Date.now();
    const files = root.issue('old1', { notBefore: new Date(now - 10 * 86_400_000), notAfter: new Date(now - 86_400_000) });
    await refused('old1', files, /expired/);
  });

  it('refuses a revoked certificate (state REVOKED, and listed in an uploaded CRL)', async () => {
    const files = await deviceWithCertificate('rev1');
    await h.service.updateDeviceCertificateState(nameOf('rev1'), fingerprintOf(files.pem), 'REVOKED', ['state']);
    await refused('rev1', files, /REVOKED|revoked/);

    const crlListed = await deviceWithCertificate('rev2');
    root.revoke(crlListed.certPath);
    await h.service.uploadRegistryCrl(REG, root.crl());
    await refused('rev2', crlListed, /revoked/);
  });

  it('refuses a certificate issued by a revoked intermediate', async () => {
    const batch2 = root.intermediate('Outside Batch 2');
    const files = await deviceWithCertificate('batch2dev', batch2);
    const client = await connectWithCertificate('batch2dev', files, batch2.pem);
    await client.endAsync();
    root.revoke(batch2.certPath);
    await h.service.uploadRegistryCrl(REG, root.crl());
    await refused('batch2dev', files, /revoked/, batch2.pem);
  });

  it('refuses a certificate registered to another device, and a client id that does not match', async () => {
    const files = await deviceWithCertificate('owner1');
    await h.service.createDevice(REG, 'other1', {});
    await refused('other1', files, /another device|not registered/);
    // A client id of a device that does not exist, and one of another registry.
    await assert.rejects(connectWithCertificate('nobody', files), refusedWith(5));
    await assert.rejects(mqttConnect(h.port, { clientId: clientIdOf('owner1', 'elsewhere'), key: files.keyPem, cert: files.pem }), refusedWith(5));
  });

  it('refuses a CA certificate used as the leaf', async () => {
    const batch3 = root.intermediate('Outside Batch 3');
    await h.service.createDevice(REG, 'calike', {});
    await refused('calike', { pem: batch3.pem, keyPem: batch3.keyPem }, /CA/);
  });

  it('refuses an MQTT 5 authentication method beside a certificate, and AUTH on a certificate connection', async () => {
    const files = await deviceWithCertificate('auth1');
    await assert.rejects(
      connectWithCertificate('auth1', files, '', { protocolVersion: 5, properties: { authenticationMethod: 'keyway-jwt' } }),
      refusedWith(0x8c),
    );
    const raw = await RawClient.open(h.port, pki.caCertPem, 5, { key: files.keyPem, cert: files.pem });
    const connack = await raw.connect(clientIdOf('auth1'), undefined);
    assert.equal(connack.reasonCode, 0);
    raw.send({ cmd: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'keyway-jwt', authenticationData: Buffer.from('x') } });
    const disconnect = await raw.next('disconnect');
    assert.equal((disconnect as { reasonCode?: number }).reasonCode, 0x82, 'protocol error: this connection has no authentication method');
    await raw.closed;
    assert.ok(lines.some((l) => l.reason === 'AUTH on a connection authenticated by its client certificate'), 'the reason is logged');
  });

  it('ends a certificate connection when its certificate expires (MQTT 5: DISCONNECT 0xA0)', async () => {
    const testRoot = await makeRoot({ subject: 'CN=Short Root' });
    const registryId = 'short';
    await h.service.createRegistry(REG, registryId, { credentials: [caCredential(testRoot.pem)] });
    const leaf = await issue(testRoot, { subject: 'CN=brief1', notAfter: new Date(Date.now() + 2500) });
    const name: DeviceName = { ...(REG as RegistryName), registry: registryId, device: 'brief1' };
    await h.service.createDevice({ ...REG, registry: registryId }, 'brief1', {});
    await h.service.registerDeviceCertificate(name, leaf.pem);
    const client = await mqttConnect(h.port, { clientId: clientIdOf('brief1', registryId), key: leaf.keyPem, cert: leaf.pem, protocolVersion: 5 });
    const disconnect = new Promise<number | undefined>((resolve) => client.once('disconnect', (p) => resolve(p.reasonCode)));
    assert.equal(await disconnect, 0xa0, 'maximum connect time');
    await closed(client);
  });

  it('disconnects a live device within one second of its certificate leaving ACTIVE, and refuses it after', async () => {
    const files = await deviceWithCertificate('live1');
    const client = await connectWithCertificate('live1', files, '', { protocolVersion: 5 });
    const disconnect = new Promise<number | undefined>((resolve) => client.once('disconnect', (p) => resolve(p.reasonCode)));
    const gone = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const start = performance.now();
    await h.service.updateDeviceCertificateState(nameOf('live1'), fingerprintOf(files.pem), 'INACTIVE', ['state']);
    await gone;
    const elapsed = performance.now() - start;
    assert.ok(elapsed < 1000, `closed ${Math.round(elapsed)} ms after the state change`);
    assert.equal(await disconnect, 0x98, 'administrative action');
    await refused('live1', files, /INACTIVE/);
  });

  it('disconnects within one second every device under an intermediate revoked by a CRL', async () => {
    const batch4 = root.intermediate('Outside Batch 4');
    const a = await deviceWithCertificate('crl-a', batch4);
    const b = await deviceWithCertificate('crl-b', batch4);
    const other = await deviceWithCertificate('crl-c', root);
    const clientA = await connectWithCertificate('crl-a', a, batch4.pem);
    const clientB = await connectWithCertificate('crl-b', b, batch4.pem, { protocolVersion: 5 });
    const clientC = await connectWithCertificate('crl-c', other);
    root.revoke(batch4.certPath);
    const crl = root.crl();
    const start = performance.now();
    await h.service.uploadRegistryCrl(REG, crl);
    await Promise.all([closed(clientA, 1000), closed(clientB, 1000)]);
    const elapsed = performance.now() - start;
    assert.ok(elapsed < 1000, `closed ${Math.round(elapsed)} ms after the CRL upload`);
    assert.ok(clientC.connected, 'a device of another issuer stays');
    await clientC.endAsync();
  });

  it('disconnects a certificate device when it is blocked', async () => {
    const files = await deviceWithCertificate('block1');
    const client = await connectWithCertificate('block1', files);
    const gone = closed(client, 1000);
    await h.service.patchDevice(nameOf('block1'), { blocked: true }, ['blocked']);
    await gone;
    await refused('block1', files, /blocked/);
  });

  it('provisions a device just in time from its certificate, on the same connection', async () => {
    const jitpCa = root.intermediate('JITP Batch');
    const registryId = 'jitp';
    await h.service.createRegistry(REG, registryId, {
      credentials: [
        caCredential(jitpCa.pem, {
          deviceId: '${CommonName}',
          metadata: { organization: '${Organization}', source: 'jitp' },
          configData: Buffer.from('initial-config'),
        }),
      ],
    });
    const files = jitpCa.issue('auto-1');
    const client = await mqttConnect(h.port, { clientId: clientIdOf('auto-1', registryId), key: files.keyPem, cert: files.pem, protocolVersion: 5 });
    const got = inbox(client);
    await client.subscribeAsync('/devices/auto-1/config', { qos: 1 });
    await eventually(() => assert.equal(got[0]?.payload.toString(), 'initial-config', 'the template config arrives'));
    const device = await h.service.getDevice({ ...REG, registry: registryId, device: 'auto-1' });
    assert.equal(device.metadata.source, 'jitp');
    assert.equal(device.metadata.organization, 'Outside Tests');
    assert.ok(lines.some((l) => l.msg === 'device provisioned on its first connection and connected'), 'provisioning logged');
    await client.endAsync();
  });
  it("resolves ${cert.subject.CN} in the device's policy from its client certificate", async () => {
    const files = await deviceWithCertificate('cn-policy');
    await h.policies.createPolicy(REG, 'by-cn', {
      version: '2026-01-01',
      statements: [{ effect: 'Allow', actions: ['publish'], resources: ['sensors/${cert.subject.CN}/data'] }],
    });
    await h.policies.attachPolicy(REG, 'by-cn', { deviceId: 'cn-policy' });
    const client = await connectWithCertificate('cn-policy', files);
    await client.publishAsync('sensors/cn-policy/data', '1', { qos: 1 });
    client.publish('sensors/someone-else/data', '1', { qos: 1 });
    await closed(client);
  });
});
