/**
 * Certificates made inside tests (@peculiar/x509, in-process): CAs, intermediates and device
 * (leaf) certificates with exactly the properties a test needs, including deliberately wrong ones
 * (expired, CA as leaf, wrong extended key usage, forged signature). Certificates that must come
 * from an outside tool, and openssl's reading of Keyway's, are openssl-ca's.
 */
import { generateKeyPairSync, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';

const crypto = webcrypto as unknown as Crypto;
const ECDSA = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface TestCert {
  readonly cert: x509.X509Certificate;
  readonly pem: string;
  readonly der: Buffer;
  /** The private key, PKCS#8 PEM (for TLS clients). */
  readonly keyPem: string;
  readonly privateKey: KeyObject;
  readonly signingKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

export interface CertOptions {
  /** e.g. `CN=dev1, O=Acme`. */
  readonly subject: string;
  readonly ca?: boolean;
  readonly pathLength?: number;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Key usage flags; default keyCertSign|cRLSign for a CA, digitalSignature for a leaf; null = none. */
  readonly keyUsage?: number | null;
  /** Extended key usages; default clientAuth for a leaf, none for a CA; null = none. */
  readonly extendedKeyUsage?: readonly string[] | null;
  readonly key?: 'ec' | 'rsa2048' | 'rsa1024' | 'p384';
  readonly serialNumber?: string;
  /** Omit basicConstraints entirely. */
  readonly noBasicConstraints?: boolean;
}

let serial = Math.floor(Math.random() * 1e6);
const nextSerial = (): string => {
  serial += 1;
  return `7e${serial.toString(16).padStart(8, '0')}`;
};

async function keyPair(kind: CertOptions['key'] = 'ec'): Promise<{ keys: CryptoKeyPair; privateKey: KeyObject; alg: typeof ECDSA | typeof RSA }> {
  const generated =
    kind === 'ec' || kind === 'p384'
      ? generateKeyPairSync('ec', { namedCurve: kind === 'ec' ? 'prime256v1' : 'secp384r1' })
      : generateKeyPairSync('rsa', { modulusLength: kind === 'rsa1024' ? 1024 : 2048 });
  const pkcs8 = generated.privateKey.export({ type: 'pkcs8', format: 'der' });
  const spki = generated.publicKey.export({ type: 'spki', format: 'der' });
  const alg = kind === 'ec' || kind === 'p384' ? ECDSA : RSA;
  const importAlg = kind === 'p384' ? { name: 'ECDSA', namedCurve: 'P-384' } : kind === 'ec' ? ECDSA : RSA;
  const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, importAlg, true, ['sign']);
  const publicKey = await crypto.subtle.importKey('spki', spki, importAlg, true, ['verify']);
  return { keys: { privateKey, publicKey }, privateKey: generated.privateKey, alg };
}

function extensions(o: CertOptions): x509.Extension[] {
  const ca = o.ca ?? false;
  const out: x509.Extension[] = [];
  if (!o.noBasicConstraints) out.push(new x509.BasicConstraintsExtension(ca, ca ? o.pathLength : undefined, true));
  const ku =
    o.keyUsage === undefined
      ? ca
        ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
        : x509.KeyUsageFlags.digitalSignature
      : o.keyUsage;
  if (ku !== null) out.push(new x509.KeyUsagesExtension(ku, true));
  const eku = o.extendedKeyUsage === undefined ? (ca ? null : [x509.ExtendedKeyUsage.clientAuth]) : o.extendedKeyUsage;
  if (eku !== null) out.push(new x509.ExtendedKeyUsageExtension([...eku], false));
  return out;
}

function wrap(cert: x509.X509Certificate, privateKey: KeyObject, keys: CryptoKeyPair): TestCert {
  return {
    cert,
    pem: cert.toString('pem') + '\n',
    der: Buffer.from(cert.rawData),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    privateKey,
    signingKey: keys.privateKey,
    publicKey: keys.publicKey,
  };
}

/** A self-signed root CA. */
export async function makeRoot(o: Partial<CertOptions> = {}): Promise<TestCert> {
  const opts: CertOptions = { subject: 'CN=Test Root CA, O=Keyway Tests', ca: true, ...o };
  const { keys, privateKey, alg } = await keyPair(opts.key);
  const now = Date.now();
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: opts.serialNumber ?? nextSerial(),
      name: opts.subject,
      notBefore: opts.notBefore ?? new Date(now - DAY_MS),
      notAfter: opts.notAfter ?? new Date(now + 3650 * DAY_MS),
      keys,
      signingAlgorithm: alg,
      extensions: [...extensions(opts), ski],
    },
    crypto,
  );
  return wrap(cert, privateKey, keys);
}

/** A certificate issued by `issuer` (an intermediate with `ca: true`, a leaf otherwise). */
export async function issue(issuer: TestCert, o: CertOptions): Promise<TestCert> {
  const { keys, privateKey } = await keyPair(o.key);
  const now = Date.now();
  const issuerAlg = issuer.signingKey.algorithm.name === 'ECDSA' ? ECDSA : RSA;
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: o.serialNumber ?? nextSerial(),
      subject: o.subject,
      issuer: issuer.cert.subject,
      notBefore: o.notBefore ?? new Date(now - DAY_MS),
      notAfter: o.notAfter ?? new Date(now + 365 * DAY_MS),
      publicKey: keys.publicKey,
      signingKey: issuer.signingKey,
      signingAlgorithm: issuerAlg,
      extensions: [
        ...extensions(o),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(issuer.cert, false, crypto),
      ],
    },
    crypto,
  );
  return wrap(cert, privateKey, keys);
}

/** Root → intermediate (pathLength 0) → leaf `CN={deviceId}`: the common device chain. */
export async function deviceChain(deviceId: string, leaf: Partial<CertOptions> = {}): Promise<{ root: TestCert; intermediate: TestCert; leaf: TestCert }> {
  const root = await makeRoot();
  const intermediate = await issue(root, { subject: 'CN=Test Batch CA, O=Keyway Tests', ca: true, pathLength: 0 });
  const device = await issue(intermediate, { subject: `CN=${deviceId}`, ...leaf });
  return { root, intermediate, leaf: device };
}
