/**
 * X.509 certificates as registries and device credentials need them: strict parsing of one PEM
 * certificate, what Cloud IoT Core reported of it (X509CertificateDetails), the digests that name
 * it in revocations (domain/certificate-keys), whether it is a CA, whether its key is strong
 * enough, its subject fields for provisioning templates, and whether a CA issued it.
 * node:crypto does the signature checks and name matching (OpenSSL); @peculiar/x509 reads the
 * fields node does not expose (names as attribute lists, the signature algorithm).
 */
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { normalizeSerial } from '../domain/certificate-keys.js';
import { fieldError } from '../domain/errors.js';
import type { X509CertificateDetails } from '../domain/resources.js';

/** Largest PEM text accepted for one certificate (public-key.ts bounds credentials the same way). */
export const MAX_CERTIFICATE_PEM_CHARS = 32 * 1024;
const RSA_MIN_BITS = 2048;
const RSA_MAX_BITS = 8192;

/** One parsed certificate with what the rest of Keyway asks of it. */
export interface ParsedCertificate {
  /** The certificate's PEM block, re-encoded from its DER (no surrounding text). */
  readonly pem: string;
  readonly der: Buffer;
  /** SHA-256 (hex) of the DER: `certificateKey()`. */
  readonly sha256: string;
  /** SHA-256 (hex) of the SubjectPublicKeyInfo DER: what a CRL's issuer is known by. */
  readonly spkiSha256: string;
  /** normalizeSerial() form. */
  readonly serial: string;
  /** basicConstraints cA = true. */
  readonly isCa: boolean;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly publicKey: KeyObject;
  /** node's view: signature checks and issuer matching. */
  readonly node: X509Certificate;
  /** @peculiar/x509's view: names and algorithms. */
  readonly peculiar: x509.X509Certificate;
}

const PEM_BEGIN = /-----BEGIN ([^-\r\n]*)-----/g;
const CERTIFICATE_BLOCK = /^-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n\t ]+)-----END CERTIFICATE-----$/;

/**
 * Parses exactly one PEM certificate (≤ 32 KiB, X.509 v3). Throws INVALID_ARGUMENT on `field`
 * naming what is wrong; no part of the input is echoed back.
 */
export function parseCertificatePem(pem: unknown, field: string): ParsedCertificate {
  return parseCertificateDer(certificatePemToDer(pem, field), field);
}

/** The DER of exactly one PEM certificate, checked as parseCertificatePem does but not parsed. */
export function certificatePemToDer(pem: unknown, field: string): Buffer {
  if (typeof pem !== 'string' || pem.trim() === '') throw fieldError(field, 'must be a PEM certificate ("BEGIN CERTIFICATE")');
  if (pem.length > MAX_CERTIFICATE_PEM_CHARS)
    throw fieldError(field, `is longer than ${MAX_CERTIFICATE_PEM_CHARS} characters; expected one PEM certificate`);
  const labels = [...pem.matchAll(PEM_BEGIN)].map((m) => (m[1] ?? '').trim());
  if (labels.some((l) => l.includes('PRIVATE')) || /PRIVATE KEY/i.test(pem))
    throw fieldError(field, 'contains a private key, which is never accepted; supply only the certificate');
  if (labels.length !== 1) throw fieldError(field, `contains ${labels.length} PEM blocks; expected exactly one certificate`);
  const block = CERTIFICATE_BLOCK.exec(pem.trim());
  if (!block) throw fieldError(field, 'is not a single "BEGIN CERTIFICATE" PEM block');
  return Buffer.from((block[1] ?? '').replace(/\s+/g, ''), 'base64');
}

/** As parseCertificatePem, from DER (a TLS peer's chain). */
export function parseCertificateDer(der: Buffer, field = 'certificate'): ParsedCertificate {
  if (der.length === 0 || der.length > MAX_CERTIFICATE_PEM_CHARS) throw fieldError(field, 'is not a certificate of a sensible size');
  let node: X509Certificate;
  let peculiar: x509.X509Certificate;
  try {
    node = new X509Certificate(der);
    peculiar = new x509.X509Certificate(new Uint8Array(der));
  } catch {
    throw fieldError(field, 'is not a parseable X.509 certificate');
  }
  if (!node.raw.equals(der)) throw fieldError(field, 'has trailing data after the certificate');
  if (!isVersion3(der)) throw fieldError(field, 'is not an X.509 version 3 certificate');
  const notBefore = new Date(node.validFrom);
  const notAfter = new Date(node.validTo);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime()))
    throw fieldError(field, 'has an unreadable validity period');
  let publicKey: KeyObject;
  try {
    publicKey = node.publicKey;
  } catch {
    throw fieldError(field, 'holds a public key of a type that is not supported; use RSA or P-256');
  }
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return {
    pem: `-----BEGIN CERTIFICATE-----\n${(der.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE-----\n`,
    der,
    sha256: sha256Hex(der),
    spkiSha256: sha256Hex(spki),
    serial: normalizeSerial(node.serialNumber),
    isCa: peculiar.getExtension(x509.BasicConstraintsExtension)?.ca === true,
    notBefore,
    notAfter,
    publicKey,
    node,
    peculiar,
  };
}

export const sha256Hex = (data: Buffer | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/**
 * The version field of the TBSCertificate: `[0] EXPLICIT INTEGER 2` right after the two outer
 * SEQUENCE headers. A v1 certificate omits it (and has no extensions, so no basicConstraints).
 */
function isVersion3(der: Buffer): boolean {
  const afterHeader = (at: number): number | undefined => {
    if (der[at] !== 0x30) return undefined;
    const first = der[at + 1];
    if (first === undefined) return undefined;
    return first < 0x80 ? at + 2 : at + 2 + (first & 0x7f);
  };
  const tbs = afterHeader(0);
  const body = tbs === undefined ? undefined : afterHeader(tbs);
  if (body === undefined) return false;
  return der.subarray(body, body + 5).equals(Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]));
}

// ---------------------------------------------------------------------------------------------
// Details

/** "RSA 2048", "EC P-256", "Ed25519", … */
export function publicKeyType(key: KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      return `RSA ${d.modulusLength ?? 0}`;
    case 'ec':
      return `EC ${CURVE_NAMES[d.namedCurve ?? ''] ?? d.namedCurve ?? 'explicit'}`;
    case 'ed25519':
      return 'Ed25519';
    case 'ed448':
      return 'Ed448';
    default:
      return key.asymmetricKeyType ?? 'unknown';
  }
}

const CURVE_NAMES: Readonly<Record<string, string>> = {
  prime256v1: 'P-256',
  secp384r1: 'P-384',
  secp521r1: 'P-521',
  secp256k1: 'secp256k1',
};

/** Java-style names, as Cloud IoT Core reported them: SHA256withECDSA, SHA256withRSA, … */
export function signatureAlgorithmName(cert: ParsedCertificate): string {
  try {
    const alg = cert.peculiar.signatureAlgorithm as { name: string; hash?: { name: string } };
    const hash = (alg.hash?.name ?? '').replace('-', '');
    switch (alg.name) {
      case 'ECDSA':
        return `${hash}withECDSA`;
      case 'RSASSA-PKCS1-v1_5':
        return `${hash}withRSA`;
      case 'RSA-PSS':
        return `${hash}withRSAandMGF1`;
      default:
        return alg.name;
    }
  } catch {
    return 'unknown';
  }
}

const SHORT_NAMES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.6': 'C',
  '2.5.4.9': 'STREET',
  '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID',
};
const OID_OF: Readonly<Record<string, string>> = {
  CN: '2.5.4.3',
  L: '2.5.4.7',
  ST: '2.5.4.8',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  C: '2.5.4.6',
  DC: '0.9.2342.19200300.100.1.25',
  E: '1.2.840.113549.1.9.1',
  G: '2.5.4.42',
  I: '2.5.4.43',
  SN: '2.5.4.4',
  T: '2.5.4.12',
};

const escape4514 = (value: string): string =>
  value
    .replace(/([\\,+"<>;=])/g, '\\$1')
    .replace(/^([ #])/, '\\$1')
    .replace(/ $/, '\\ ')
    // Control characters as \XX hex pairs (RFC 4514 §2.4): a subject cannot break a log line.
    .replace(/./gsu, (c) => (c.charCodeAt(0) < 0x20 ? `\\${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}` : c));

/** A distinguished name as RFC 4514 writes it: the last RDN first, known types by short name. */
export function rfc4514(name: x509.Name): string {
  return name
    .toJSON()
    .map((rdn) =>
      Object.entries(rdn)
        .flatMap(([type, values]) => {
          const oid = OID_OF[type] ?? type;
          const label = SHORT_NAMES[oid] ?? oid;
          return values.map((v) => `${label}=${escape4514(String(v))}`);
        })
        .join('+'),
    )
    .reverse()
    .join(',');
}

export function certificateDetails(cert: ParsedCertificate): X509CertificateDetails {
  return {
    issuer: rfc4514(cert.peculiar.issuerName),
    subject: rfc4514(cert.peculiar.subjectName),
    startTime: cert.notBefore,
    expiryTime: cert.notAfter,
    signatureAlgorithm: signatureAlgorithmName(cert),
    publicKeyType: publicKeyType(cert.publicKey),
  };
}

/** Why the certificate's key may not be used (RSA 2048–8192 or P-256 only), or undefined. */
export function keyStrengthProblem(cert: ParsedCertificate): string | undefined {
  const key = cert.publicKey;
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    const bits = d.modulusLength ?? 0;
    if (bits < RSA_MIN_BITS) return `holds an RSA key of ${bits} bits; at least ${RSA_MIN_BITS} are required`;
    if (bits > RSA_MAX_BITS) return `holds an RSA key of ${bits} bits; at most ${RSA_MAX_BITS} are allowed`;
    return undefined;
  }
  if (key.asymmetricKeyType === 'ec' && d.namedCurve === 'prime256v1') return undefined;
  return `holds a ${publicKeyType(key)} key; only RSA (2048 bits or more) and EC P-256 keys are accepted`;
}

/** True when `at` lies within the certificate's validity period. */
export const isWithinValidity = (cert: ParsedCertificate, at: Date): boolean =>
  cert.notBefore.getTime() <= at.getTime() && at.getTime() <= cert.notAfter.getTime();

// ---------------------------------------------------------------------------------------------
// Subject fields for provisioning templates

/** Names a provisioning template may use as `${Name}`, with the subject attribute each reads. */
export const SUBJECT_FIELD_OIDS = {
  CommonName: '2.5.4.3',
  Organization: '2.5.4.10',
  OrganizationalUnit: '2.5.4.11',
  Country: '2.5.4.6',
  StateName: '2.5.4.8',
  Locality: '2.5.4.7',
  DistinguishedNameQualifier: '2.5.4.46',
  /** The subject DN's serialNumber attribute (not the certificate's serial). */
  SubjectSerialNumber: '2.5.4.5',
} as const;

/** Every field a template may name: the subject's, plus SerialNumber (the certificate's serial, hex). */
export const CERTIFICATE_FIELD_NAMES = [...Object.keys(SUBJECT_FIELD_OIDS), 'SerialNumber'] as readonly string[];
export type CertificateFieldName = keyof typeof SUBJECT_FIELD_OIDS | 'SerialNumber';

/** The certificate's values of the template fields; a field the certificate lacks is absent. */
export function certificateFields(cert: ParsedCertificate): Partial<Record<CertificateFieldName, string>> {
  const out: Partial<Record<CertificateFieldName, string>> = { SerialNumber: cert.serial };
  for (const [field, oid] of Object.entries(SUBJECT_FIELD_OIDS) as [keyof typeof SUBJECT_FIELD_OIDS, string][]) {
    // Several values (two OUs): the first, as AWS JITP templates take it.
    const value = cert.peculiar.subjectName.getField(oid)[0];
    if (value !== undefined && value !== '') out[field] = value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Issuance

/**
 * True when `caCert` issued `cert`: the issuer DN equals the CA's subject (and, where present,
 * the key identifiers and the CA's key usage agree — OpenSSL's check) and the signature
 * verifies with the CA's public key.
 */
export function issuedBy(cert: ParsedCertificate, caCert: ParsedCertificate): boolean {
  try {
    return cert.node.checkIssued(caCert.node) && cert.node.verify(caCert.publicKey);
  } catch {
    return false;
  }
}
