/**
 * Keyway's own PKI end to end, as a user walks it: the `keyway` CLI (in-process `run()`) against
 * a real server, a root and per-batch intermediates, device certificates issued by them, devices
 * connecting over mutual TLS with mosquitto_pub/mosquitto_sub and mqtt.js, revocations that end
 * live connections within a second, just-in-time provisioning, and CRLs checked with openssl.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import { run } from '../src/cli/run.js';
import { normalizeSerial } from '../src/domain/certificate-keys.js';
import { closed, connectClient, devicePath } from './support/devices.js';
import { eventually } from './support/eventually.js';
import { startTestServer, type TestServer } from './support/server.js';

const PROJECT = 'demo';
const REGION = 'europe-west1';
const hasMosquittoClients = spawnSync('mosquitto_pub', ['--help']).error === undefined;
const hasOpenssl = spawnSync('openssl', ['version']).error === undefined;

let work: string;
let ts: TestServer;
const clients: MqttClient[] = [];

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'keyway-x509-pki-'));
  // The key-encryption key lives outside the data directory, mode 0600, as the README says.
  const masterKeyFile = join(work, 'master.key');
  writeFileSync(masterKeyFile, `${Buffer.alloc(32, 7).toString('base64')}\n`, { mode: 0o600 });
  chmodSync(masterKeyFile, 0o600);
  ts = await startTestServer({ dataDir: join(work, 'keyway-data'), pki: { masterKeyFile } });
});
after(async () => {
  for (const c of clients) c.end(true);
  await ts.close();
  rmSync(work, { recursive: true, force: true });
});

/** `keyway …` in this process, as a user in `work` with the server's data directory beside them. */
async function keyway(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    env: {
      KEYWAY_API_URL: `https://localhost:${ts.server.apiPort}`,
      KEYWAY_DATA_DIR: join(work, 'keyway-data'),
      KEYWAY_PROJECT: PROJECT,
      KEYWAY_REGION: REGION,
    },
    cwd: work,
  });
  return { code, stdout, stderr };
}

async function ok(...args: string[]): Promise<string> {
  const r = await keyway(...args);
  assert.equal(r.code, 0, `keyway ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const json = async <T = Record<string, unknown>>(...args: string[]): Promise<T> => JSON.parse(await ok(...args, '--format', 'json')) as T;

const file = (name: string): string => join(work, name);

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g;

/**
 * `keyway certs issue --device ID --ca CA --out-dir certs`, then, as the README does,
 * `cat ID.crt ID-chain.pem > ID-full.pem`. `chain` is that file's certificates without repeats
 * (leaf first): what mqtt.js presents.
 */
async function issueDevice(device: string, ca: string): Promise<{ serial: string; key: string; chain: string; chainFile: string }> {
  const issued = await json<{ serialNumber: string }>('certs', 'issue', '--device', device, '--ca', ca, '--out-dir', 'certs');
  const full = readFileSync(file(`certs/${device}.crt`), 'utf8') + readFileSync(file(`certs/${device}-chain.pem`), 'utf8');
  const chainFile = file(`certs/${device}-full.pem`);
  writeFileSync(chainFile, full);
  const chain = [...new Set((full.match(PEM_BLOCK) ?? []).map((b) => `${b.trimEnd()}\n`))].join('');
  return { serial: issued.serialNumber, key: readFileSync(file(`certs/${device}.key`), 'utf8'), chain, chainFile };
}

async function deviceClient(registry: string, device: string, m: { key: string; chain: string }, extra: IClientOptions = {}): Promise<MqttClient> {
  const c = await connectClient(ts.mqttPort, ts.ca, { clientId: devicePath(PROJECT, REGION, registry, device), key: m.key, cert: m.chain, ...extra });
  clients.push(c);
  return c;
}

/** The CONNACK code a refused connection got (mqtt.js reports it as the error's code). */
async function refusedCode(registry: string, device: string, m: { key: string; chain: string }, extra: IClientOptions = {}): Promise<number | undefined> {
  try {
    const c = await deviceClient(registry, device, m, extra);
    c.end(true);
    return undefined;
  } catch (e) {
    return (e as { code?: number }).code;
  }
}

/** Runs `keyway ...args` (a revocation) and resolves with the milliseconds from just before the CLI call to `client`'s close event. */
async function msUntilClosed(client: MqttClient, ...args: string[]): Promise<number> {
  assert.ok(client.connected, 'the device is connected before the revocation');
  const gone = closed(client);
  const start = performance.now();
  await ok(...args);
  await gone;
  return performance.now() - start;
}

/** Resolves with a client's next message on `topic`. */
const nextMessage = (client: MqttClient, topic: string): Promise<Buffer> =>
  new Promise((resolve) => {
    const on = (t: string, payload: Buffer): void => {
      if (t !== topic) return;
      client.off('message', on);
      resolve(payload);
    };
    client.on('message', on);
  });

const mosquittoCommon = (): string[] => ['--cafile', join(work, 'keyway-data', 'pki', 'ca.crt'), '-h', 'localhost', '-p', String(ts.mqttPort), '-V', 'mqttv311'];

/** Runs mosquitto_sub until it has the messages its -C asks for (-W: it gives up after 10 s rather than hang the test). */
function mosquittoSub(args: string[]): { output: Promise<string>; ready: Promise<void> } {
  const child = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-d', '-W', '10', ...args], { cwd: work });
  let out = '';
  let err = '';
  let markReady: () => void;
  const ready = new Promise<void>((r) => (markReady = r));
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    // With -d, mosquitto_sub reports the SUBACK on stdout.
    if (/SUBACK/.test(out)) markReady();
  });
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const output = new Promise<string>((resolve, reject) =>
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`mosquitto_sub exited ${code}: ${err}${out}`)))),
  );
  return { output, ready };
}

const openssl = (args: string[]): { status: number | null; stdout: string; stderr: string } =>
  spawnSync('openssl', args, { cwd: work, encoding: 'utf8' });

describe('Keyway PKI → device certificates → mutual TLS', { skip: hasOpenssl ? false : 'openssl not installed' }, () => {
  let dev1: Awaited<ReturnType<typeof issueDevice>>;

  it('root, batch intermediate, registry trusting the root, a certificate-only device: mosquitto_pub and mosquitto_sub over mutual TLS', async (t) => {
    assert.match((await keyway('ca', 'create-root')).stderr, /Created certificate authority \[root\].*encrypted at rest/);
    assert.match((await keyway('ca', 'create-intermediate', '--batch', 'b1')).stderr, /\[int-b1\]/);
    // As the README: `keyway ca describe root --pem > root.crt`.
    writeFileSync(file('root.crt'), await ok('ca', 'describe', 'root', '--pem'));
    const described = await json<{ certificate: string; type: string }>('ca', 'describe', 'root');
    assert.equal(described.type, 'ROOT');
    assert.equal(readFileSync(file('root.crt'), 'utf8').trim(), described.certificate.trim(), 'describe --pem prints the root certificate only');
    await ok('registries', 'create', 'fleet', '--ca-certificate-file', 'root.crt');
    await ok('devices', 'create', 'dev1', '--registry', 'fleet');
    dev1 = await issueDevice('dev1', 'int-b1');
    // The registry holds only the root: the README registers dev1.crt, which must carry the intermediate for that.
    await ok('devices', 'certificates', 'register', '--device', 'dev1', '--registry', 'fleet', '--certificate-file', 'certs/dev1.crt');
    const listed = await ok('devices', 'certificates', 'list', '--device', 'dev1', '--registry', 'fleet');
    assert.match(listed, /ACTIVE/);
    await ok('devices', 'configs', 'update', 'dev1', '--registry', 'fleet', '--config-data', '{"interval":10}');
    // The later tests need what was made above; only the Mosquitto part depends on the clients.
    if (!hasMosquittoClients) {
      t.skip('mosquitto-clients not installed (apt-get install mosquitto-clients)');
      return;
    }

    const backend = await connectClient(ts.mqttPort, ts.ca, { clientId: 'backend-x509', ...(await ts.backend(PROJECT)) });
    clients.push(backend);
    await backend.subscribeAsync('registries/fleet/devices/+/events', { qos: 1 });
    const event = nextMessage(backend, 'registries/fleet/devices/dev1/events');

    const clientId = devicePath(PROJECT, REGION, 'fleet', 'dev1');
    const tls = ['--cert', dev1.chainFile, '--key', file('certs/dev1.key')];
    const pub = await new Promise<{ code: number; stderr: string }>((done) =>
      execFile('mosquitto_pub', [...mosquittoCommon(), ...tls, '-i', clientId, '-t', '/devices/dev1/events', '-m', 'hello over mTLS', '-q', '1'], { cwd: work, timeout: 10_000 }, (error, _out, stderr) =>
        done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stderr }),
      ),
    );
    assert.equal(pub.code, 0, `mosquitto_pub: ${pub.stderr}`);
    assert.equal((await event).toString(), 'hello over mTLS');

    const sub = mosquittoSub([...mosquittoCommon(), ...tls, '-i', clientId, '-t', '/devices/dev1/config', '-q', '1', '-C', '1', '-v']);
    await sub.ready;
    assert.match(await sub.output, /\/devices\/dev1\/config \{"interval":10\}/);
    backend.end(true);
  });

  it('a certificate revoke ends that device\'s connection within one second, and only that one', async () => {
    await ok('devices', 'create', 'dev-a', '--registry', 'fleet');
    await ok('devices', 'create', 'dev-b', '--registry', 'fleet');
    const a = await issueDevice('dev-a', 'int-b1');
    const b = await issueDevice('dev-b', 'int-b1');
    await ok('devices', 'certificates', 'register', '--device', 'dev-a', '--registry', 'fleet', '--certificate-file', 'certs/dev-a-full.pem');
    await ok('devices', 'certificates', 'register', '--device', 'dev-b', '--registry', 'fleet', '--certificate-file', 'certs/dev-b-full.pem');
    const clientA = await deviceClient('fleet', 'dev-a', a);
    const clientB = await deviceClient('fleet', 'dev-b', b);
    let bClosed = false;
    clientB.once('close', () => (bClosed = true));

    const ms = await msUntilClosed(clientA, 'certs', 'revoke', '--ca', 'int-b1', '--serial', a.serial, '--reason', 'key-compromise');
    assert.ok(ms < 1000, `dev-a was disconnected ${Math.round(ms)} ms after 'keyway certs revoke', not within 1000 ms`);
    assert.equal(await refusedCode('fleet', 'dev-a', a), 5, 'a revoked certificate is refused with CONNACK 5');
    // dev-b, same intermediate, still talks: a round trip on its own config topic proves the connection lives.
    await clientB.subscribeAsync('/devices/dev-b/config', { qos: 1 });
    assert.equal(bClosed, false, 'dev-b, whose certificate was not revoked, stays connected');
    assert.ok(clientB.connected);
    clientB.end(true);
    // dev-b's certificate does not open dev-a's (or any other device's) door.
    assert.equal(await refusedCode('fleet', 'dev-a', b), 5, 'a certificate registered to dev-b is refused for the client id of dev-a');
    assert.equal(await refusedCode('fleet', 'dev1', b), 5, 'a certificate registered to dev-b is refused for the client id of dev1');
  });

  it('the CRL of the intermediate lists the revoked serial and verifies with openssl', async () => {
    const revoked = await issueDevice('dev-c', 'int-b1');
    await ok('certs', 'revoke', '--ca', 'int-b1', '--serial', revoked.serial);
    await ok('ca', 'crl', 'int-b1', '--out', 'int-b1.crl');
    const int = await json<{ certificate: string }>('ca', 'describe', 'int-b1');
    writeFileSync(file('int-b1.crt'), int.certificate);

    const text = openssl(['crl', '-in', 'int-b1.crl', '-noout', '-text']);
    assert.equal(text.status, 0, text.stderr);
    const listed = [...text.stdout.matchAll(/Serial Number: ([0-9A-Fa-f]+)/g)].map((m) => normalizeSerial(m[1] ?? ''));
    assert.ok(listed.includes(normalizeSerial(revoked.serial)), `CRL lists ${listed.join(', ')}; expected ${revoked.serial}`);
    assert.match(text.stdout, /Issuer: .*Keyway Intermediate CA int-b1/);
    assert.match(text.stdout, /X509v3 CRL Number/);
    const verified = openssl(['crl', '-in', 'int-b1.crl', '-noout', '-CAfile', 'int-b1.crt']);
    assert.equal(verified.status, 0, verified.stderr);
    assert.match(verified.stderr + verified.stdout, /verify OK/);
  });

  it('revoking an intermediate ends its devices\' connections within one second; a sibling intermediate\'s devices stay', async () => {
    await ok('ca', 'create-intermediate', '--batch', 'b2');
    await ok('devices', 'create', 'dev2', '--registry', 'fleet');
    const dev2 = await issueDevice('dev2', 'int-b2');
    await ok('devices', 'certificates', 'register', '--device', 'dev2', '--registry', 'fleet', '--certificate-file', 'certs/dev2-full.pem');

    // MQTT 5, so that the server says why it disconnects.
    const device1 = await deviceClient('fleet', 'dev1', dev1, { protocolVersion: 5 });
    let disconnectReason: number | undefined;
    device1.once('disconnect', (packet: { reasonCode?: number }) => (disconnectReason = packet.reasonCode));
    const device2 = await deviceClient('fleet', 'dev2', dev2);
    let twoClosed = false;
    device2.once('close', () => (twoClosed = true));

    const ms = await msUntilClosed(device1, 'ca', 'revoke', 'int-b1', '--reason', 'key-compromise');
    assert.ok(ms < 1000, `dev1 was disconnected ${Math.round(ms)} ms after 'keyway ca revoke int-b1', not within 1000 ms`);
    assert.equal(disconnectReason, 0x98, 'MQTT 5 DISCONNECT 0x98 (administrative action), as the README says');
    assert.equal(await refusedCode('fleet', 'dev1', dev1), 5, 'MQTT 3.1.1: CONNACK 5 for a certificate under a revoked intermediate');
    assert.equal(await refusedCode('fleet', 'dev1', dev1, { protocolVersion: 5 }), 0x87, 'MQTT 5: CONNACK 0x87 not authorized');

    // The sibling batch keeps working: dev2's connection lives and publishes.
    await device2.publishAsync('/devices/dev2/events', 'still here', { qos: 1 });
    assert.equal(twoClosed, false, 'dev2 (int-b2) stays connected');
    device2.end(true);
    const again = await deviceClient('fleet', 'dev2', dev2);
    again.end(true);

    // The root's CRL names the revoked intermediate.
    await ok('ca', 'crl', 'root', '--out', 'root.crl');
    const text = openssl(['crl', '-in', 'root.crl', '-noout', '-text']);
    assert.equal(text.status, 0, text.stderr);
    const intSerial = normalizeSerial(new X509Certificate(readFileSync(file('int-b1.crt'))).serialNumber);
    const listed = [...text.stdout.matchAll(/Serial Number: ([0-9A-Fa-f]+)/g)].map((m) => normalizeSerial(m[1] ?? ''));
    assert.ok(listed.includes(intSerial), `the root's CRL lists ${listed.join(', ')}; expected int-b1's ${intSerial}`);
  });

  it('a certificate made INACTIVE, or its device blocked, ends the connection within one second; both can be undone', async () => {
    await ok('devices', 'create', 'dev-s', '--registry', 'fleet');
    const material = await issueDevice('dev-s', 'int-b2');
    const registered = await json<{ fingerprint: string; state: string }>(
      'devices', 'certificates', 'register', '--device', 'dev-s', '--registry', 'fleet', '--certificate-file', 'certs/dev-s-full.pem',
    );
    assert.equal(registered.state, 'ACTIVE');
    const fp = registered.fingerprint;

    let ms = await msUntilClosed(await deviceClient('fleet', 'dev-s', material), 'devices', 'certificates', 'update', fp, '--device', 'dev-s', '--registry', 'fleet', '--state', 'INACTIVE');
    assert.ok(ms < 1000, `dev-s was disconnected ${Math.round(ms)} ms after its certificate became INACTIVE, not within 1000 ms`);
    assert.equal(await refusedCode('fleet', 'dev-s', material), 5, 'an INACTIVE certificate is refused');
    await ok('devices', 'certificates', 'update', fp, '--device', 'dev-s', '--registry', 'fleet', '--state', 'ACTIVE');

    ms = await msUntilClosed(await deviceClient('fleet', 'dev-s', material), 'devices', 'update', 'dev-s', '--registry', 'fleet', '--blocked');
    assert.ok(ms < 1000, `dev-s was disconnected ${Math.round(ms)} ms after it was blocked, not within 1000 ms`);
    assert.equal(await refusedCode('fleet', 'dev-s', material), 5, 'a blocked device is refused');
    await ok('devices', 'update', 'dev-s', '--registry', 'fleet', '--no-blocked');
    (await deviceClient('fleet', 'dev-s', material)).end(true);
  });

  it('just-in-time provisioning: an unknown device with a certificate from the template\'s CA is created and admitted on its first connection', async () => {
    await ok('ca', 'create-intermediate', '--batch', 'line-7');
    const int = await json<{ certificate: string }>('ca', 'describe', 'int-line-7');
    writeFileSync(file('int-line-7.crt'), int.certificate);
    // Keyway's device certificates name the device in the CN and nothing else; the serial is the other field they carry.
    writeFileSync(
      file('jitp.json'),
      JSON.stringify({
        deviceId: '${CommonName}',
        metadata: { batch: 'line-7', certificateSerial: '${SerialNumber}', provisionedAs: '${CommonName}' },
        configData: Buffer.from('{"interval":30}').toString('base64'),
      }),
    );
    await ok(
      'registries', 'create', 'factory',
      '--ca-certificate-file', 'int-line-7.crt', '--provisioning-template-file', 'jitp.json',
      '--device-auth-method', 'certificate-only',
    );
    const notYet = await keyway('devices', 'describe', 'new-1', '--registry', 'factory');
    assert.notEqual(notYet.code, 0);
    assert.match(notYet.stderr, /NOT_FOUND/);

    const material = await issueDevice('new-1', 'int-line-7');
    const device = await deviceClient('factory', 'new-1', material);
    // Admitted on this very connection: it subscribes and gets the template's initial config.
    const config = nextMessage(device, '/devices/new-1/config');
    await device.subscribeAsync('/devices/new-1/config', { qos: 1 });
    assert.equal((await config).toString(), '{"interval":30}');
    await device.publishAsync('/devices/new-1/events', 'first words', { qos: 1 });

    const described = await json<{ id: string; metadata?: Record<string, string>; lastEventTime?: string }>('devices', 'describe', 'new-1', '--registry', 'factory');
    assert.equal(described.id, 'new-1');
    assert.deepEqual(described.metadata, { batch: 'line-7', certificateSerial: normalizeSerial(material.serial), provisionedAs: 'new-1' });
    await eventually(async () => {
      const d = await json<{ lastEventTime?: string }>('devices', 'describe', 'new-1', '--registry', 'factory');
      assert.ok(d.lastEventTime, 'lastEventTime is recorded for the provisioned device');
    });
    const certs = await json<Array<{ state: string; serialNumber: string }> | { certificates: Array<{ state: string; serialNumber: string }> }>(
      'devices', 'certificates', 'list', '--device', 'new-1', '--registry', 'factory',
    );
    const list = Array.isArray(certs) ? certs : certs.certificates;
    assert.equal(list.length, 1);
    assert.equal(list[0]?.state, 'ACTIVE');
    assert.equal(normalizeSerial(list[0]?.serialNumber ?? ''), normalizeSerial(material.serial));
    device.end(true);

    // The device created on its first connection comes back like any other.
    const back = await deviceClient('factory', 'new-1', material);
    back.end(true);

    // A device that made its own key and CSR (openssl): Keyway's device profile keeps only the CN of the request's subject.
    assert.equal(openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'certs/csr-1.key']).status, 0);
    const req = openssl(['req', '-new', '-key', 'certs/csr-1.key', '-subj', '/CN=csr-1/OU=line-7/O=Acme', '-out', 'certs/csr-1.csr']);
    assert.equal(req.status, 0, req.stderr);
    const fromCsr = await json<{ serialNumber: string; subject: string }>('certs', 'issue', '--csr', 'certs/csr-1.csr', '--ca', 'int-line-7', '--out', 'certs/csr-1.crt');
    assert.equal(fromCsr.subject, 'CN=csr-1');
    const csrChain = [...new Set(readFileSync(file('certs/csr-1.crt'), 'utf8').match(PEM_BLOCK) ?? [])].join('');
    const csrDevice = await deviceClient('factory', 'csr-1', { key: readFileSync(file('certs/csr-1.key'), 'utf8'), chain: csrChain });
    csrDevice.end(true);
    const csrDescribed = await json<{ metadata?: Record<string, string> }>('devices', 'describe', 'csr-1', '--registry', 'factory');
    assert.deepEqual(csrDescribed.metadata, { batch: 'line-7', certificateSerial: normalizeSerial(fromCsr.serialNumber), provisionedAs: 'csr-1' });

    // Only the template's CA provisions: a certificate of a sibling intermediate under the same root is refused and creates nothing.
    const sibling = await issueDevice('new-2', 'int-b2');
    assert.equal(await refusedCode('factory', 'new-2', sibling), 5, 'a certificate from a CA the registry does not hold is refused');
    // The template's device id must be the one the client id names.
    const other = await issueDevice('new-3', 'int-line-7');
    assert.equal(await refusedCode('factory', 'new-4', other), 5, 'a certificate for new-3 does not provision new-4');
    for (const id of ['new-2', 'new-3', 'new-4']) {
      const r = await keyway('devices', 'describe', id, '--registry', 'factory');
      assert.match(r.stderr, /NOT_FOUND/, `no device ${id} was created`);
    }
  });

  it('a template naming a subject field the certificates lack: refused when saved for Keyway\'s CA, at connect for an outside one', async () => {
    writeFileSync(file('jitp-ou.json'), JSON.stringify({ deviceId: '${CommonName}', metadata: { batch: '${OrganizationalUnit}' } }));
    // Keyway knows its device certificates carry only the CN: the template is refused as it is saved.
    const saved = await keyway('registries', 'create', 'factory-ou', '--ca-certificate-file', 'int-line-7.crt', '--provisioning-template-file', 'jitp-ou.json');
    assert.equal(saved.code, 1, saved.stderr);
    assert.match(saved.stderr, /OrganizationalUnit', which the device certificates of Keyway's CA .*int-line-7 do not have; they carry CommonName, SerialNumber/);
    assert.match((await keyway('registries', 'describe', 'factory-ou')).stderr, /NOT_FOUND/, 'no registry was created');

    // An outside CA's certificates may or may not have the field: a certificate without it is refused at connect.
    const openssl = (...args: string[]): void => {
      const r = spawnSync('openssl', args, { cwd: work, encoding: 'utf8' });
      assert.equal(r.status, 0, `openssl ${args.join(' ')}\n${r.stderr}`);
    };
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'outside-ca.key',
      '-out', 'outside-ca.crt', '-subj', '/CN=Outside Batch CA', '-days', '30', '-addext', 'basicConstraints=critical,CA:true',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ou-1.key', '-out', 'ou-1.csr', '-subj', '/CN=ou-1');
    writeFileSync(file('leaf.ext'), 'basicConstraints=critical,CA:false\nextendedKeyUsage=clientAuth\n');
    openssl('x509', '-req', '-in', 'ou-1.csr', '-CA', 'outside-ca.crt', '-CAkey', 'outside-ca.key', '-CAcreateserial',
      '-out', 'ou-1.crt', '-days', '7', '-extfile', 'leaf.ext');
    await ok('registries', 'create', 'factory-ou', '--ca-certificate-file', 'outside-ca.crt', '--provisioning-template-file', 'jitp-ou.json');
    const material = { key: readFileSync(file('ou-1.key'), 'utf8'), chain: readFileSync(file('ou-1.crt'), 'utf8') };
    assert.equal(await refusedCode('factory-ou', 'ou-1', material), 5, 'no OrganizationalUnit in the certificate: refused');
    assert.match((await keyway('devices', 'describe', 'ou-1', '--registry', 'factory-ou')).stderr, /NOT_FOUND/, 'no device was created');
  });
});
