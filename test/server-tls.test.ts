/**
 * The server's TLS end to end: the development CA's ECDSA and RSA certificates side by side on
 * MQTT and the admin API (and the warning that they are for development), operator certificate
 * chains checked at start and reloaded from their files without a restart, and MQTT by ALPN.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connect, type ConnectionOptions } from 'node:tls';
import mqtt, { type MqttClient } from 'mqtt';
import { loadConfig, type PartialConfig } from '../src/config/config.js';
import { startServer } from '../src/server/server.js';
import { eventually } from './support/eventually.js';
import { createBackendLogin } from './support/server.js';
import { capturingLogger } from './support/log-capture.js';
import { issue, makeRoot, type TestCert } from './support/test-pki.js';

const SERVER_AUTH = ['1.3.6.1.5.5.7.3.1'];
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function start(overrides: PartialConfig = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'keyway-tls-'));
  dirs.push(dataDir);
  const { logger, lines } = capturingLogger();
  const config = loadConfig({
    env: {},
    overrides: { dataDir, mqtt: { host: '127.0.0.1', port: 0 }, http: { host: '127.0.0.1', port: 0 }, api: { host: '127.0.0.1', port: 0 }, ...overrides },
  });
  return { server: await startServer(config, logger), lines, dataDir };
}

function peerCertificate(port: number, ca: string, options: ConnectionOptions = {}): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ...options }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (cert) resolve(cert);
      else reject(new Error('no server certificate'));
    });
    socket.once('error', reject);
  });
}

const EC_ONLY = { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', sigalgs: 'ecdsa_secp256r1_sha256' } as const;
const RSA_ONLY = { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256' } as const;

async function operatorPki(dir: string, cn = 'localhost') {
  const root = await makeRoot({ subject: `CN=Operator Root ${cn}` });
  const issuing = await issue(root, { subject: 'CN=Operator Issuing', ca: true, pathLength: 0 });
  const ec = await issue(issuing, { subject: `CN=${cn}`, extendedKeyUsage: SERVER_AUTH });
  const rsa = await issue(issuing, { subject: `CN=${cn}`, extendedKeyUsage: SERVER_AUTH, key: 'rsa2048' });
  const write = (name: string, c: TestCert): { certFile: string; keyFile: string } => {
    writeFileSync(join(dir, `${name}.crt`), c.pem + issuing.pem);
    writeFileSync(join(dir, `${name}.key`), c.keyPem, { mode: 0o600 });
    return { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
  };
  return { root, issuing, ec, rsa, write };
}

const noHostCheck = { checkServerIdentity: () => undefined };

describe('server TLS', () => {
  it('the development CA serves ECDSA and RSA side by side on MQTT and the admin API, and warns it is for development', async () => {
    const { server, lines } = await start();
    try {
      const { readFileSync } = await import('node:fs');
      const ca = readFileSync(server.caCertPath as string, 'utf8');
      for (const port of [server.mqttPort, server.apiPort]) {
        assert.equal((await peerCertificate(port, ca, EC_ONLY)).publicKey.asymmetricKeyType, 'ec');
        assert.equal((await peerCertificate(port, ca, RSA_ONLY)).publicKey.asymmetricKeyType, 'rsa');
      }
      assert.ok(lines.some((l) => l.level === 40 && /development CA.*development only/.test(String(l.msg))), 'a warning at start');
    } finally {
      await server.close();
    }
  });

  it('refuses to start with an operator chain that does not fit, saying why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-certs-'));
    dirs.push(dir);
    const p = await operatorPki(dir);
    const files = p.write('server', p.ec);
    writeFileSync(files.keyFile, p.rsa.keyPem);
    await assert.rejects(start({ tls: { certificates: [files] } }), /does not belong to the key/);
    writeFileSync(files.keyFile, p.ec.keyPem);
    writeFileSync(files.certFile, p.ec.pem + p.root.pem);
    await assert.rejects(start({ tls: { certificates: [files] } }), /did not issue.*leaf first/);
    const two = [p.write('a', p.ec), p.write('b', await issue(p.issuing, { subject: 'CN=localhost', extendedKeyUsage: SERVER_AUTH }))];
    await assert.rejects(start({ tls: { certificates: two } }), /more than one ECDSA/);
  });

  it('serves operator chains, reloads them when the files change, keeps established connections, and keeps the old ones on a bad file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-certs-'));
    dirs.push(dir);
    const first = await operatorPki(dir, 'localhost');
    const ecFiles = first.write('ec', first.ec);
    const rsaFiles = first.write('rsa', first.rsa);
    const { server, lines } = await start({ tls: { certificates: [ecFiles, rsaFiles] }, mqtt: { host: '127.0.0.1', port: 0, alpn: { port: 0 } } });
    try {
      const ca = first.root.pem;
      assert.equal((await peerCertificate(server.mqttPort, ca, EC_ONLY)).fingerprint256, new X509Certificate(first.ec.pem).fingerprint256);
      assert.equal((await peerCertificate(server.mqttPort, ca, RSA_ONLY)).fingerprint256, new X509Certificate(first.rsa.pem).fingerprint256);
      assert.equal(server.caCertPath, undefined, 'no development CA');

      // A backend connection made before the change.
      const adminToken = (await import('node:fs')).readFileSync(join(server.dataDir, 'admin-token'), 'utf8').trim();
      const login = await createBackendLogin({ apiUrl: `https://localhost:${server.apiPort}`, ca, adminToken, project: 'demo' });
      const backend = await new Promise<MqttClient>((resolve, reject) => {
        const c = mqtt.connect({ protocol: 'mqtts', host: '127.0.0.1', port: server.mqttPort, servername: 'localhost', ca, clientId: 'b1', ...login, reconnectPeriod: 0 });
        c.once('connect', () => resolve(c));
        c.once('error', reject);
      });

      // Replace the files in place, key first: the reload waits for a quiet moment (debounce).
      const next = await operatorPki(dir, 'localhost');
      const staged = next.write('staged-ec', next.ec);
      copyFileSync(staged.keyFile, ecFiles.keyFile);
      copyFileSync(staged.certFile, ecFiles.certFile);
      const expected = new X509Certificate(next.ec.pem).fingerprint256;
      const alpnPort = server.mqttAlpnPort as number;
      for (const port of [server.mqttPort, server.apiPort, server.httpPort, alpnPort]) {
        await eventually(async () => {
          const alpn = port === alpnPort ? { ALPNProtocols: ['mqtt'] } : {};
          const seen = await peerCertificate(port, next.root.pem, { ...EC_ONLY, ...alpn, ...noHostCheck });
          assert.equal(seen.fingerprint256, expected, `port ${port} serves the new certificate`);
        }, 5000, 100);
      }
      assert.ok(backend.connected, 'the established connection stays up');
      await backend.subscribeAsync('registries/fleet/devices/+/events');
      await backend.endAsync();

      // A bad new file: logged, and the old certificate stays.
      writeFileSync(ecFiles.certFile, 'garbage');
      await eventually(() => assert.ok(lines.some((l) => l.msg === 'server certificates not reloaded; the previous ones are still served'), 'logged'), 5000, 100);
      assert.equal((await peerCertificate(server.mqttPort, next.root.pem, { ...EC_ONLY, ...noHostCheck })).fingerprint256, expected);

      // SIGHUP's path: an explicit reload once the file is good again.
      writeFileSync(ecFiles.certFile, next.ec.pem + next.issuing.pem);
      assert.equal(await server.reloadTls(), true);
    } finally {
      await server.close();
    }
  });

  it('serves MQTT by ALPN mqtt on its own port and closes clients that do not speak it', async () => {
    const { server } = await start({ mqtt: { host: '127.0.0.1', port: 0, alpn: { port: 0 } } });
    try {
      const ca = (await import('node:fs')).readFileSync(server.caCertPath as string, 'utf8');
      const adminToken = (await import('node:fs')).readFileSync(join(server.dataDir, 'admin-token'), 'utf8').trim();
      const login = await createBackendLogin({ apiUrl: `https://localhost:${server.apiPort}`, ca, adminToken, project: 'demo' });
      const port = server.mqttAlpnPort as number;
      assert.ok(port > 0 && port !== server.mqttPort);
      const client = await new Promise<MqttClient>((resolve, reject) => {
        const c = mqtt.connect({
          protocol: 'mqtts', host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: ['mqtt'],
          clientId: 'alpn-backend', ...login, reconnectPeriod: 0,
        });
        c.once('connect', () => resolve(c));
        c.once('error', reject);
      });
      await client.endAsync();
      await assert.rejects(peerCertificate(port, ca, { ALPNProtocols: ['http/1.1'] }), /no.application.protocol/i);
    } finally {
      await server.close();
    }
  });
});
