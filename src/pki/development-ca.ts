/**
 * The development PKI: a local ECDSA P-256 CA under `<dataDir>/pki/` and two server certificates
 * it issues, an ECDSA P-256 one and an RSA-2048 one served side by side (each client gets the one
 * it supports), so TLS is on from the first start without an operator-supplied certificate.
 * Devices and tools trust `ca.crt`. It is for development only: its key lies unencrypted in the
 * data directory, and the server warns whenever it serves certificates from it.
 *
 * Keys are the anchors and are never overwritten: a certificate is derived from its key and is
 * reissued whenever it is missing, does not match, no longer covers the requested names, or is
 * close to expiry. Each file appears atomically (temp file + link/rename), keys before their
 * certificates, so an interrupted run leaves at worst a key whose certificate the next run issues.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { chmod, link, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import * as x509 from '@peculiar/x509';
import { failedPrecondition, fieldError } from '../domain/errors.js';

export interface ServerTlsMaterial {
  readonly caCertPem: string;
  /** The ECDSA P-256 server certificate and key. */
  readonly certPem: string;
  readonly keyPem: string;
  readonly caCertPath: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** The RSA-2048 server certificate and key, for clients without ECDSA. */
  readonly rsaCertPem: string;
  readonly rsaKeyPem: string;
  readonly rsaCertPath: string;
  readonly rsaKeyPath: string;
}

export const DEVELOPMENT_CA_SUBJECT = 'CN=Keyway Development CA';
/** Names every development server certificate covers. */
export const DEFAULT_SERVER_NAMES: readonly string[] = ['localhost', '127.0.0.1', '::1'];

const DAY_MS = 86_400_000;
const CA_VALIDITY_DAYS = 3650;
/** Within the 398-day ceiling that browsers and Apple platforms enforce for TLS server certificates. */
const SERVER_VALIDITY_DAYS = 397;
const RENEW_BEFORE_DAYS = 30;
/** Validity starts a little before "now" so clients with a slightly slow clock accept it. */
const BACKDATE_MS = 60 * 60 * 1000;
const STALE_TEMP_MS = 10 * 60 * 1000;
const SERVER_AUTH_OID = '1.3.6.1.5.5.7.3.1';

const crypto = webcrypto as unknown as Crypto;
const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const RSA_PKCS1 = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;
const RSA_BITS = 2048;

/** The kinds of server key: the CA's is always EC. */
type KeyKind = 'ec' | 'rsa';
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

// ---------------------------------------------------------------------------------------------
// Names

type ServerName = { readonly kind: 'dns' | 'ip'; readonly value: string };

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

function normalizeName(raw: string, field: string): ServerName {
  if (typeof raw !== 'string') throw fieldError(field, 'must be a DNS name or an IP address');
  const name = raw.trim().toLowerCase();
  const ipVersion = isIP(name);
  if (ipVersion === 4) return { kind: 'ip', value: name };
  if (ipVersion === 6) return { kind: 'ip', value: new URL(`http://[${name}]`).hostname.slice(1, -1) };
  const dns = name.endsWith('.') ? name.slice(0, -1) : name;
  if (dns.length === 0 || dns.length > 253 || !dns.split('.').every((label) => DNS_LABEL.test(label))) {
    throw fieldError(field, 'must be a DNS name or an IP address');
  }
  return { kind: 'dns', value: dns };
}

function serverNames(hostnames: readonly string[]): ServerName[] {
  const all = [
    ...DEFAULT_SERVER_NAMES.map((n) => normalizeName(n, 'hostnames')),
    ...hostnames.map((n, i) => normalizeName(n, `hostnames[${i}]`)),
  ];
  const seen = new Set<string>();
  return all.filter((n) => {
    const key = `${n.kind}:${n.value}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// Files

const tempPathFor = (path: string): string => `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;

async function writeTemp(path: string, contents: string, mode: number): Promise<string> {
  const temp = tempPathFor(path);
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(contents);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return temp;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some filesystems cannot fsync a directory; the rename is still atomic there.
  } finally {
    await handle.close();
  }
}

/** Creates `path` atomically unless it exists; returns false when another writer got there first. */
async function createExclusive(path: string, contents: string, mode: number): Promise<boolean> {
  const temp = await writeTemp(path, contents, mode);
  try {
    await link(temp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    await unlink(temp);
    await syncDir(resolve(path, '..'));
  }
}

/** Replaces `path` atomically. */
async function replaceFile(path: string, contents: string, mode: number): Promise<void> {
  const temp = await writeTemp(path, contents, mode);
  try {
    await rename(temp, path);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
  await syncDir(resolve(path, '..'));
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Temp files older than any write in progress are leftovers of an interrupted run. */
async function removeStaleTemps(dir: string, now: number): Promise<void> {
  for (const entry of await readdir(dir)) {
    if (!entry.endsWith('.tmp')) continue;
    const path = join(dir, entry);
    const info = await stat(path).catch(() => undefined);
    if (info && now - info.mtimeMs > STALE_TEMP_MS) await unlink(path).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Keys

interface LoadedKey {
  readonly pem: string;
  readonly key: KeyObject;
}

function parsePrivateKey(pem: string, path: string, kind: KeyKind): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw failedPrecondition(`${path} is not a readable private key; move it away to have a new one created`);
  }
  if (kind === 'rsa') {
    if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < RSA_BITS) {
      throw failedPrecondition(`${path} is not an RSA private key of ${RSA_BITS} bits or more; move it away to have a new one created`);
    }
    return key;
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw failedPrecondition(`${path} is not an ECDSA P-256 private key; move it away to have a new one created`);
  }
  return key;
}

async function generateRsaPem(): Promise<string> {
  const { privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: RSA_BITS });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

async function generateP256Pem(): Promise<string> {
  const pair = (await crypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
  return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Loads the key at `path`, creating it (0600) when absent; an existing key is never replaced. */
async function loadOrCreateKey(path: string, kind: KeyKind = 'ec'): Promise<LoadedKey> {
  let pem = await readIfExists(path);
  if (pem === undefined) {
    const created = kind === 'rsa' ? await generateRsaPem() : await generateP256Pem();
    pem = (await createExclusive(path, created, 0o600)) ? created : await readFile(path, 'utf8');
  } else {
    const { mode } = await stat(path);
    if ((mode & 0o077) !== 0) await chmod(path, 0o600);
  }
  return { pem, key: parsePrivateKey(pem, path, kind) };
}

async function toSigningKey(key: KeyObject): Promise<CryptoKey> {
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  return crypto.subtle.importKey('pkcs8', pkcs8, ECDSA_P256, false, ['sign']);
}

async function toPublicCryptoKey(key: KeyObject): Promise<CryptoKey> {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  return crypto.subtle.importKey('spki', spki, key.asymmetricKeyType === 'rsa' ? RSA_PKCS1 : ECDSA_P256, true, ['verify']);
}

// ---------------------------------------------------------------------------------------------
// Certificates

function serialNumber(): string {
  const bytes = randomBytes(16);
  // Positive and without a leading zero byte, as RFC 5280 wants serials encoded.
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

function parseCertificate(pem: string | undefined): X509Certificate | undefined {
  if (pem === undefined) return undefined;
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

function validFor(cert: X509Certificate, now: Date): boolean {
  const notBefore = new Date(cert.validFrom).getTime();
  const notAfter = new Date(cert.validTo).getTime();
  return notBefore <= now.getTime() && notAfter - now.getTime() > RENEW_BEFORE_DAYS * DAY_MS;
}

function caCertificateUsable(cert: X509Certificate | undefined, key: KeyObject, now: Date): boolean {
  return (
    cert !== undefined &&
    cert.ca &&
    cert.checkPrivateKey(key) &&
    cert.checkIssued(cert) &&
    cert.verify(cert.publicKey) &&
    validFor(cert, now)
  );
}

function covers(cert: X509Certificate, name: ServerName): boolean {
  return name.kind === 'ip' ? cert.checkIP(name.value) !== undefined : cert.checkHost(name.value, { subject: 'never', wildcards: false }) !== undefined;
}

function serverCertificateUsable(
  cert: X509Certificate | undefined,
  key: KeyObject,
  ca: X509Certificate,
  names: readonly ServerName[],
  now: Date,
): boolean {
  return (
    cert !== undefined &&
    !cert.ca &&
    cert.checkPrivateKey(key) &&
    cert.checkIssued(ca) &&
    cert.verify(ca.publicKey) &&
    (cert.keyUsage ?? []).includes(SERVER_AUTH_OID) &&
    validFor(cert, now) &&
    names.every((name) => covers(cert, name))
  );
}

async function issueCaCertificate(key: KeyObject, now: Date): Promise<string> {
  const publicKey = await toPublicCryptoKey(key);
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: DEVELOPMENT_CA_SUBJECT,
      notBefore,
      notAfter: new Date(notBefore.getTime() + CA_VALIDITY_DAYS * DAY_MS),
      keys: { privateKey: await toSigningKey(key), publicKey },
      signingAlgorithm: SIGNING,
      extensions: [
        // pathLength 0: this CA signs end-entity certificates only.
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return cert.toString('pem') + '\n';
}

async function issueServerCertificate(
  key: KeyObject,
  caKey: KeyObject,
  caCertPem: string,
  names: readonly ServerName[],
  now: Date,
): Promise<string> {
  const ca = new x509.X509Certificate(caCertPem);
  const publicKey = await toPublicCryptoKey(key);
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: `CN=${names[0]?.value ?? 'localhost'}`,
      issuer: ca.subject,
      notBefore,
      notAfter: new Date(notBefore.getTime() + SERVER_VALIDITY_DAYS * DAY_MS),
      publicKey,
      signingKey: await toSigningKey(caKey),
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        // RSA key exchange (TLS 1.2 without ECDHE) also needs keyEncipherment.
        new x509.KeyUsagesExtension(
          key.asymmetricKeyType === 'rsa'
            ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
            : x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension(
          names.map((n) => ({ type: n.kind, value: n.value })),
          false,
        ),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(ca, false, crypto),
      ],
    },
    crypto,
  );
  return cert.toString('pem') + '\n';
}

// ---------------------------------------------------------------------------------------------

/**
 * Returns the development CA and a server certificate covering localhost, 127.0.0.1, ::1 and
 * `hostnames`, creating or reissuing whatever is missing, mismatched or near expiry.
 */
export async function ensureDevelopmentPki(dataDir: string, hostnames: readonly string[], now: Date = new Date()): Promise<ServerTlsMaterial> {
  const names = serverNames(hostnames);
  const dir = resolve(dataDir, 'pki');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await removeStaleTemps(dir, Date.now());

  const caKeyPath = join(dir, 'ca.key');
  const caCertPath = join(dir, 'ca.crt');
  const keyPath = join(dir, 'server.key');
  const certPath = join(dir, 'server.crt');

  const caKey = await loadOrCreateKey(caKeyPath);
  let caCertPem = await readIfExists(caCertPath);
  if (caCertPem === undefined || !caCertificateUsable(parseCertificate(caCertPem), caKey.key, now)) {
    caCertPem = await issueCaCertificate(caKey.key, now);
    await replaceFile(caCertPath, caCertPem, 0o644);
  }
  const ca = new X509Certificate(caCertPem);

  const ec = await ensureServerCertificate(keyPath, certPath, 'ec', caKey.key, caCertPem, ca, names, now);
  const rsaKeyPath = join(dir, 'server-rsa.key');
  const rsaCertPath = join(dir, 'server-rsa.crt');
  const rsa = await ensureServerCertificate(rsaKeyPath, rsaCertPath, 'rsa', caKey.key, caCertPem, ca, names, now);

  return {
    caCertPem,
    certPem: ec.certPem,
    keyPem: ec.keyPem,
    caCertPath,
    certPath,
    keyPath,
    rsaCertPem: rsa.certPem,
    rsaKeyPem: rsa.keyPem,
    rsaCertPath,
    rsaKeyPath,
  };
}

async function ensureServerCertificate(
  keyPath: string,
  certPath: string,
  kind: KeyKind,
  caKey: KeyObject,
  caCertPem: string,
  ca: X509Certificate,
  names: readonly ServerName[],
  now: Date,
): Promise<{ certPem: string; keyPem: string }> {
  const serverKey = await loadOrCreateKey(keyPath, kind);
  let certPem = await readIfExists(certPath);
  if (certPem === undefined || !serverCertificateUsable(parseCertificate(certPem), serverKey.key, ca, names, now)) {
    certPem = await issueServerCertificate(serverKey.key, caKey, caCertPem, names, now);
    await replaceFile(certPath, certPem, 0o644);
  }
  return { certPem, keyPem: serverKey.pem };
}
