import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { copyFile, chmod, mkdtemp, readdir, readFile, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Server } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { KeywayError } from '../domain/errors.js';
import { ensureDevelopmentPki, type ServerTlsMaterial } from './development-ca.js';

const DAY_MS = 86_400_000;
const roots: string[] = [];
async function freshDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'keyway-pki-'));
  roots.push(dir);
  return dir;
}
after(() => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

/** A TLS server on an ephemeral loopback port presenting the material's certificate. */
async function tlsServer(material: ServerTlsMaterial, host = '127.0.0.1'): Promise<{ server: Server; port: number }> {
  const server = createServer({ cert: material.certPem, key: material.keyPem, minVersion: 'TLSv1.2' }, (socket) => socket.end('hello'));
  await new Promise<void>((ok, fail) => server.once('error', fail).listen(0, host, ok));
  return { server, port: (server.address() as AddressInfo).port };
}

/** Connects trusting only `ca`; resolves 'ok' or the TLS error code. */
function tryConnect(port: number, options: { host: string; servername?: string; ca?: string }): Promise<string> {
  return new Promise((done) => {
    const socket = connect({ port, host: options.host, servername: options.servername, ca: options.ca, minVersion: 'TLSv1.2' }, () => {
      socket.end();
      done(socket.authorized ? 'ok' : `unauthorized: ${String(socket.authorizationError)}`);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

describe('ensureDevelopmentPki', () => {
  let dataDir: string;
  let material: ServerTlsMaterial;

  before(async () => {
    dataDir = await freshDataDir();
    material = await ensureDevelopmentPki(dataDir, []);
  });

  it('creates a P-256 CA and server certificate under <dataDir>/pki with keys at 0600', async () => {
    const pki = join(dataDir, 'pki');
    assert.equal(material.caCertPath, join(pki, 'ca.crt'));
    assert.equal(material.certPath, join(pki, 'server.crt'));
    assert.equal(material.keyPath, join(pki, 'server.key'));
    assert.deepEqual((await readdir(pki)).sort(), ['ca.crt', 'ca.key', 'server-rsa.crt', 'server-rsa.key', 'server.crt', 'server.key']);
    assert.equal(await mode(join(pki, 'ca.key')), 0o600);
    assert.equal(await mode(join(pki, 'server.key')), 0o600);
    assert.equal(await mode(join(pki, 'server-rsa.key')), 0o600);
    assert.equal(await readFile(material.caCertPath, 'utf8'), material.caCertPem);
    assert.equal(await readFile(material.rsaCertPath, 'utf8'), material.rsaCertPem);
    assert.equal(await readFile(material.rsaKeyPath, 'utf8'), material.rsaKeyPem);
    // The RSA-2048 server certificate, issued by the same CA for the same names.
    const rsa = new X509Certificate(material.rsaCertPem);
    assert.equal(rsa.publicKey.asymmetricKeyType, 'rsa');
    assert.equal(rsa.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    assert.ok(rsa.checkIssued(new X509Certificate(material.caCertPem)) && rsa.verify(new X509Certificate(material.caCertPem).publicKey));
    assert.ok(rsa.checkHost('localhost') && rsa.checkIP('127.0.0.1'));
    assert.equal(await readFile(material.certPath, 'utf8'), material.certPem);
    assert.equal(await readFile(material.keyPath, 'utf8'), material.keyPem);
  });

  it('makes a CA certificate with the right constraints and lifetime', () => {
    const ca = new X509Certificate(material.caCertPem);
    assert.equal(ca.ca, true);
    assert.equal(ca.subject, 'CN=Keyway Development CA');
    assert.equal(ca.issuer, ca.subject);
    assert.equal(ca.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const years = (new Date(ca.validTo).getTime() - new Date(ca.validFrom).getTime()) / (365 * DAY_MS);
    assert.ok(years >= 9.9 && years <= 10.1, `CA lifetime ${years} years`);
  });

  it('makes a server certificate for serverAuth, signed by the CA, covering the default names', () => {
    const ca = new X509Certificate(material.caCertPem);
    const cert = new X509Certificate(material.certPem);
    assert.equal(cert.ca, false);
    assert.ok(cert.verify(ca.publicKey));
    assert.ok(cert.checkIssued(ca));
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    assert.equal(cert.checkHost('localhost'), 'localhost');
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.ok(cert.checkIP('::1'));
    const days = (new Date(cert.validTo).getTime() - new Date(cert.validFrom).getTime()) / DAY_MS;
    assert.ok(days <= 398 && days >= 396, `server lifetime ${days} days`);
  });

  it('serves TLS that a client trusting only ca.crt accepts for localhost and 127.0.0.1, and rejects for other names', async () => {
    const { server, port } = await tlsServer(material);
    try {
      assert.equal(await tryConnect(port, { host: '127.0.0.1', servername: 'localhost', ca: material.caCertPem }), 'ok');
      assert.equal(await tryConnect(port, { host: '127.0.0.1', ca: material.caCertPem }), 'ok');
      assert.equal(await tryConnect(port, { host: '127.0.0.1', servername: 'evil.example', ca: material.caCertPem }), 'ERR_TLS_CERT_ALTNAME_INVALID');
      // Without the development CA the chain is not trusted at all.
      assert.notEqual(await tryConnect(port, { host: '127.0.0.1', servername: 'localhost' }), 'ok');
      // A CA from another data directory is not this one.
      const other = await ensureDevelopmentPki(await freshDataDir(), []);
      assert.notEqual(await tryConnect(port, { host: '127.0.0.1', servername: 'localhost', ca: other.caCertPem }), 'ok');
    } finally {
      server.close();
    }
  });

  it('serves TLS on ::1 to a client trusting only ca.crt', async (t) => {
    let listening: { server: Server; port: number };
    try {
      listening = await tlsServer(material, '::1');
    } catch {
      t.skip('IPv6 loopback is not available here');
      return;
    }
    try {
      assert.equal(await tryConnect(listening.port, { host: '::1', ca: material.caCertPem }), 'ok');
    } finally {
      listening.server.close();
    }
  });

  it('reuses everything on a second call without rewriting files', async () => {
    const before = await Promise.all([material.caCertPath, material.certPath, material.keyPath].map((p) => stat(p)));
    const again = await ensureDevelopmentPki(dataDir, ['localhost', '127.0.0.1']);
    assert.deepEqual(again, material);
    const afterStats = await Promise.all([material.caCertPath, material.certPath, material.keyPath].map((p) => stat(p)));
    afterStats.forEach((s, i) => {
      assert.equal(s.ino, before[i]?.ino);
      assert.equal(s.mtimeMs, before[i]?.mtimeMs);
    });
  });
});

describe('ensureDevelopmentPki reissuing', () => {
  it('reissues the server certificate from the same CA and key when a new hostname is requested', async () => {
    const dataDir = await freshDataDir();
    const first = await ensureDevelopmentPki(dataDir, []);
    const second = await ensureDevelopmentPki(dataDir, ['device.example.test', '10.1.2.3', 'FE80::1']);
    assert.equal(second.caCertPem, first.caCertPem);
    assert.equal(second.keyPem, first.keyPem);
    assert.notEqual(second.certPem, first.certPem);
    const cert = new X509Certificate(second.certPem);
    assert.ok(cert.checkHost('device.example.test', { subject: 'never' }));
    assert.ok(cert.checkIP('10.1.2.3'));
    assert.ok(cert.checkIP('fe80::1'));
    assert.ok(cert.checkHost('localhost'));

    const { server, port } = await tlsServer(second);
    try {
      assert.equal(await tryConnect(port, { host: '127.0.0.1', servername: 'device.example.test', ca: second.caCertPem }), 'ok');
      assert.equal(await tryConnect(port, { host: '127.0.0.1', servername: 'localhost', ca: first.caCertPem }), 'ok');
    } finally {
      server.close();
    }
    // Asking again for a covered name does not reissue.
    assert.deepEqual(await ensureDevelopmentPki(dataDir, ['DEVICE.example.test.']), second);
  });

  it('reissues a server certificate that expires within 30 days, keeping the CA', async () => {
    const dataDir = await freshDataDir();
    const now = new Date();
    const first = await ensureDevelopmentPki(dataDir, [], now);
    const notYet = await ensureDevelopmentPki(dataDir, [], new Date(now.getTime() + 300 * DAY_MS));
    assert.equal(notYet.certPem, first.certPem);
    const later = new Date(now.getTime() + 370 * DAY_MS);
    const renewed = await ensureDevelopmentPki(dataDir, [], later);
    assert.equal(renewed.caCertPem, first.caCertPem);
    assert.notEqual(renewed.certPem, first.certPem);
    assert.ok(new Date(new X509Certificate(renewed.certPem).validTo).getTime() > later.getTime() + 300 * DAY_MS);
  });

  it('heals a key left without its certificate, keeping the key', async () => {
    const dataDir = await freshDataDir();
    const first = await ensureDevelopmentPki(dataDir, []);
    await unlink(first.caCertPath);
    await unlink(first.certPath);
    const healed = await ensureDevelopmentPki(dataDir, []);
    assert.equal(healed.keyPem, first.keyPem);
    const ca = new X509Certificate(healed.caCertPem);
    assert.ok(ca.checkPrivateKey(createPrivateKey(await readFile(join(dataDir, 'pki', 'ca.key'), 'utf8'))));
    assert.ok(new X509Certificate(healed.certPem).verify(ca.publicKey));
    // The old server certificate still chains to the re-derived CA certificate (same key and name).
    assert.ok(new X509Certificate(first.certPem).verify(ca.publicKey));
  });

  it('replaces a server certificate that does not belong to its key', async () => {
    const dataDir = await freshDataDir();
    const other = await ensureDevelopmentPki(await freshDataDir(), []);
    const first = await ensureDevelopmentPki(dataDir, []);
    await copyFile(other.certPath, first.certPath);
    const fixed = await ensureDevelopmentPki(dataDir, []);
    assert.notEqual(fixed.certPem, other.certPem);
    assert.ok(new X509Certificate(fixed.certPem).checkPrivateKey(createPrivateKey(fixed.keyPem)));
    assert.ok(new X509Certificate(fixed.certPem).verify(new X509Certificate(first.caCertPem).publicKey));
  });

  it('tightens key files that were made readable by others', async () => {
    const dataDir = await freshDataDir();
    const first = await ensureDevelopmentPki(dataDir, []);
    await chmod(join(dataDir, 'pki', 'ca.key'), 0o644);
    await chmod(first.keyPath, 0o640);
    await ensureDevelopmentPki(dataDir, []);
    assert.equal(await mode(join(dataDir, 'pki', 'ca.key')), 0o600);
    assert.equal(await mode(first.keyPath), 0o600);
  });

  it('creates keys 0600 even under a permissive umask', async () => {
    const previous = process.umask(0);
    try {
      const dataDir = await freshDataDir();
      const material = await ensureDevelopmentPki(dataDir, []);
      assert.equal(await mode(join(dataDir, 'pki', 'ca.key')), 0o600);
      assert.equal(await mode(material.keyPath), 0o600);
    } finally {
      process.umask(previous);
    }
  });

  it('gives concurrent callers one CA and material that fits together', async () => {
    const dataDir = await freshDataDir();
    const results = await Promise.all(Array.from({ length: 4 }, () => ensureDevelopmentPki(dataDir, [])));
    const caKey = createPrivateKey(await readFile(join(dataDir, 'pki', 'ca.key'), 'utf8'));
    const serverKeyPem = await readFile(join(dataDir, 'pki', 'server.key'), 'utf8');
    for (const r of results) {
      assert.equal(r.keyPem, serverKeyPem);
      assert.ok(new X509Certificate(r.caCertPem).checkPrivateKey(caKey));
      assert.ok(new X509Certificate(r.certPem).verify(new X509Certificate(r.caCertPem).publicKey));
    }
    assert.deepEqual((await readdir(join(dataDir, 'pki'))).sort(), ['ca.crt', 'ca.key', 'server-rsa.crt', 'server-rsa.key', 'server.crt', 'server.key']);
  });

  it('removes temp files left by an interrupted run', async () => {
    const dataDir = await freshDataDir();
    await ensureDevelopmentPki(dataDir, []);
    const leftover = join(dataDir, 'pki', 'server.key.123.abcdef.tmp');
    await writeFile(leftover, 'partial', { mode: 0o600 });
    const old = new Date(Date.now() - 3600_000);
    await utimes(leftover, old, old);
    await ensureDevelopmentPki(dataDir, []);
    assert.deepEqual((await readdir(join(dataDir, 'pki'))).sort(), ['ca.crt', 'ca.key', 'server-rsa.crt', 'server-rsa.key', 'server.crt', 'server.key']);
  });
});

describe('ensureDevelopmentPki refusals', () => {
  it('refuses hostnames that are neither DNS names nor IP addresses', async () => {
    const dataDir = await freshDataDir();
    for (const bad of ['bad host', '-leading.example', 'a..b', '[::1]', 'http://x.example', 'x'.repeat(64) + '.example', '', 'name,CN=evil']) {
      await assert.rejects(
        ensureDevelopmentPki(dataDir, ['ok.example', bad]),
        (e: unknown) => e instanceof KeywayError && e.status === 'INVALID_ARGUMENT' && e.fieldViolations[0]?.field === 'hostnames[1]',
        `hostname ${JSON.stringify(bad)} must be refused`,
      );
    }
  });

  it('never overwrites a key it cannot use', async () => {
    const dataDir = await freshDataDir();
    await ensureDevelopmentPki(dataDir, []);
    const caKeyPath = join(dataDir, 'pki', 'ca.key');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await writeFile(caKeyPath, rsa, { mode: 0o600 });
    await assert.rejects(ensureDevelopmentPki(dataDir, []), (e: unknown) => e instanceof KeywayError && e.status === 'FAILED_PRECONDITION' && /ca\.key/.test(e.message));
    assert.equal(await readFile(caKeyPath, 'utf8'), rsa);
    await writeFile(caKeyPath, 'garbage', { mode: 0o600 });
    await assert.rejects(ensureDevelopmentPki(dataDir, []), (e: unknown) => e instanceof KeywayError && e.status === 'FAILED_PRECONDITION');
    assert.equal(await readFile(caKeyPath, 'utf8'), 'garbage');
  });
});

