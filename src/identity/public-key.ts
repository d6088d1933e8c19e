/**
 * Parsing of device credential keys (Cloud IoT Core `PublicKeyCredential`) and the key-strength
 * rules: RSA ≥ 2048 bits for RS256, NIST P-256 for ES256, nothing else. A private key is never
 * accepted, and no part of the submitted text is ever echoed back in an error.
 */
import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { fieldError } from '../domain/errors.js';
import type { PublicKeyFormat } from '../domain/resources.js';

export type JwtAlgorithm = 'RS256' | 'ES256';

export interface CertificateDetails {
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subject: string;
  readonly issuer: string;
}

export interface CredentialKey {
  readonly format: PublicKeyFormat;
  /** RS256 for RSA, ES256 for P-256: the only algorithm a token checked against this key may use. */
  readonly algorithm: JwtAlgorithm;
  /** A public KeyObject. */
  readonly key: KeyObject;
  /** SHA-256 hex of the SPKI DER encoding. */
  readonly fingerprint: string;
  /** Present for the `*_X509_PEM` formats. */
  readonly certificate?: CertificateDetails;
}

/** Smallest RSA modulus accepted (reference §1.3, DESIGN security invariants). */
export const RSA_MIN_BITS = 2048;
/** Largest RSA modulus accepted: bounds the CPU an attacker-chosen key can cost per verification. */
export const RSA_MAX_BITS = 8192;
/** Largest PEM text accepted, well above any single RSA-8192 certificate. */
export const MAX_PEM_CHARS = 32 * 1024;

interface FormatRule {
  readonly algorithm: JwtAlgorithm;
  readonly container: 'key' | 'certificate';
}

const FORMAT_RULES: Readonly<Record<PublicKeyFormat, FormatRule>> = {
  RSA_PEM: { algorithm: 'RS256', container: 'key' },
  RSA_X509_PEM: { algorithm: 'RS256', container: 'certificate' },
  ES256_PEM: { algorithm: 'ES256', container: 'key' },
  ES256_X509_PEM: { algorithm: 'ES256', container: 'certificate' },
};

const KEY_LABELS = new Set(['PUBLIC KEY', 'RSA PUBLIC KEY']);
const CERTIFICATE_LABELS = new Set(['CERTIFICATE']);

// A PEM block: the label on BEGIN and END must agree (back-reference).
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\s]*?)-----END \1-----/g;
const PEM_BEGIN = /-----BEGIN ([^-\r\n]*)-----/g;

export function fingerprintOf(key: KeyObject): string {
  return createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** The DER of a P-256 SubjectPublicKeyInfo with an uncompressed point, up to the point's 0x04 (RFC 5480). */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const P256_SPKI_BYTES = P256_SPKI_PREFIX.length + 65;

/**
 * The common case, a P-256 key in SPKI form, imported from its coordinates as a JWK: OpenSSL's
 * PEM decoders take about twice as long, which counts when thousands of devices connect at once.
 * OpenSSL still checks that the point is on the curve. Undefined for anything else.
 */
function p256FromSpki(label: string, base64: string): KeyObject | undefined {
  if (label !== 'PUBLIC KEY') return undefined;
  const der = Buffer.from(base64.replace(/\s+/g, ''), 'base64');
  if (der.length !== P256_SPKI_BYTES || der[P256_SPKI_PREFIX.length] !== 0x04) return undefined;
  if (!der.subarray(0, P256_SPKI_PREFIX.length).equals(P256_SPKI_PREFIX)) return undefined;
  const at = P256_SPKI_PREFIX.length + 1;
  const x = der.toString('base64url', at, at + 32);
  const y = der.toString('base64url', at + 32, at + 64);
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x, y }, format: 'jwk' });
}

/** The algorithm a public key may sign with, or a description of why it may not be used. */
function algorithmOf(key: KeyObject): { algorithm: JwtAlgorithm } | { refused: string } {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa': {
      const bits = details.modulusLength ?? 0;
      if (bits < RSA_MIN_BITS) return { refused: `RSA key of ${bits} bits is too weak; at least ${RSA_MIN_BITS} bits are required` };
      if (bits > RSA_MAX_BITS) return { refused: `RSA key of ${bits} bits is larger than the ${RSA_MAX_BITS}-bit maximum` };
      return { algorithm: 'RS256' };
    }
    case 'ec':
      if (details.namedCurve !== 'prime256v1') {
        return { refused: `EC key on curve ${details.namedCurve ?? 'with explicit parameters'} is not supported; only P-256 (prime256v1) is` };
      }
      return { algorithm: 'ES256' };
    default:
      return { refused: `${key.asymmetricKeyType ?? 'unknown'} keys are not supported; use an RSA (RS256) or P-256 (ES256) key` };
  }
}

function formatHint(format: PublicKeyFormat): string {
  switch (format) {
    case 'RSA_PEM':
      return 'an RSA public key in a "BEGIN PUBLIC KEY" PEM block';
    case 'ES256_PEM':
      return 'a P-256 public key in a "BEGIN PUBLIC KEY" PEM block';
    case 'RSA_X509_PEM':
      return 'an X.509 certificate with an RSA key in a "BEGIN CERTIFICATE" PEM block';
    case 'ES256_X509_PEM':
      return 'an X.509 certificate with a P-256 key in a "BEGIN CERTIFICATE" PEM block';
  }
}

/** Node prints one RDN per line; the API shows them comma-separated. */
const oneLineName = (name: string): string =>
  name
    .split('\n')
    .filter((part) => part.length > 0)
    .join(', ');

/**
 * Parses and checks a credential's PEM text against its declared format. Throws
 * INVALID_ARGUMENT with a field violation on `field` when the key may not be used.
 * `knownFingerprint`, the one stored with the credential when it was created from this very
 * text, spares re-encoding the key to compute it (about as costly as parsing it).
 */
export function parseCredentialKey(
  format: PublicKeyFormat,
  pem: string,
  field = 'publicKey.key',
  knownFingerprint?: string,
): CredentialKey {
  const rule = FORMAT_RULES[format];
  if (rule === undefined) throw fieldError('publicKey.format', `unsupported public key format`);
  if (typeof pem !== 'string' || pem.trim().length === 0) throw fieldError(field, 'is empty; expected ' + formatHint(format));
  if (pem.length > MAX_PEM_CHARS) throw fieldError(field, `is longer than ${MAX_PEM_CHARS} characters`);

  // Refuse private material before any parser sees it: node would happily derive a public key
  // from a private one, and the caller must learn that the secret has to stay on the device.
  const labels = [...pem.matchAll(PEM_BEGIN)].map((m) => (m[1] ?? '').trim());
  if (labels.some((label) => label.includes('PRIVATE')) || /PRIVATE KEY/i.test(pem)) {
    throw fieldError(field, 'contains a private key, which is never accepted; supply only the public key or certificate');
  }

  const blocks = [...pem.matchAll(PEM_BLOCK)];
  if (blocks.length === 0) throw fieldError(field, 'is not a PEM block; expected ' + formatHint(format));
  if (blocks.length > 1) throw fieldError(field, `contains ${blocks.length} PEM blocks; expected exactly one`);
  const block = blocks[0]!;
  const label = block[1] ?? '';
  const text = block[0];

  const isCertificate = CERTIFICATE_LABELS.has(label);
  if (!isCertificate && !KEY_LABELS.has(label)) {
    throw fieldError(field, `holds a "${label}" PEM block; expected ${formatHint(format)}`);
  }
  if (isCertificate && rule.container === 'key') {
    throw fieldError(field, `is a certificate, but format ${format} expects a bare public key; use ${format === 'RSA_PEM' ? 'RSA_X509_PEM' : 'ES256_X509_PEM'} for certificates`);
  }
  if (!isCertificate && rule.container === 'certificate') {
    throw fieldError(field, `is a bare public key, but format ${format} expects an X.509 certificate; use ${format === 'RSA_X509_PEM' ? 'RSA_PEM' : 'ES256_PEM'} for public keys`);
  }

  let key: KeyObject;
  let certificate: CertificateDetails | undefined;
  /** Read from P-256 coordinates: its type and curve are known without asking OpenSSL again. */
  let p256 = false;
  if (isCertificate) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(text);
    } catch {
      throw fieldError(field, 'is not a parseable X.509 certificate');
    }
    const notBefore = new Date(cert.validFrom);
    const notAfter = new Date(cert.validTo);
    if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
      throw fieldError(field, 'has an unreadable validity period');
    }
    try {
      key = cert.publicKey;
    } catch {
      throw fieldError(field, 'holds a certificate whose public key type is not supported; use an RSA or P-256 key');
    }
    certificate = { notBefore, notAfter, subject: oneLineName(cert.subject), issuer: oneLineName(cert.issuer) };
  } else {
    try {
      // The label was checked above, so only SPKI or PKCS#1 public-key parsing can happen here.
      const fromCoordinates = p256FromSpki(label, block[2] ?? '');
      p256 = fromCoordinates !== undefined;
      key = fromCoordinates ?? createPublicKey({ key: text, format: 'pem' });
    } catch {
      throw fieldError(field, 'is not a parseable public key');
    }
  }
  if (key.type !== 'public') {
    throw fieldError(field, 'contains a private key, which is never accepted; supply only the public key or certificate');
  }

  const verdict: ReturnType<typeof algorithmOf> = p256 ? { algorithm: 'ES256' } : algorithmOf(key);
  if ('refused' in verdict) throw fieldError(field, verdict.refused);
  if (verdict.algorithm !== rule.algorithm) {
    const actual = verdict.algorithm === 'RS256' ? 'an RSA key' : 'a P-256 key';
    throw fieldError(field, `holds ${actual}, which does not match format ${format}; expected ${formatHint(format)}`);
  }

  const parsed: CredentialKey = { format, algorithm: rule.algorithm, key, fingerprint: knownFingerprint ?? fingerprintOf(key) };
  return certificate === undefined ? parsed : { ...parsed, certificate };
}
