/** Facts of a certificate the PKI stores and revocation speaks of: serial, hashes, names, dates. */
import { createHash, randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { normalizeSerial } from '../domain/certificate-keys.js';

export const sha256Hex = (data: ArrayBuffer | Uint8Array): string =>
  createHash('sha256')
    .update(data instanceof Uint8Array ? data : new Uint8Array(data))
    .digest('hex');

/** A fresh random 16-byte serial: positive and without a leading zero byte (RFC 5280 §4.1.2.2). */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

export interface CertificateFacts {
  /** normalizeSerial() form. */
  readonly serialNumber: string;
  readonly derSha256: string;
  readonly spkiSha256: string;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export function factsOf(cert: x509.X509Certificate): CertificateFacts {
  return {
    serialNumber: normalizeSerial(cert.serialNumber),
    derSha256: sha256Hex(cert.rawData),
    spkiSha256: sha256Hex(cert.publicKey.rawData),
    subject: cert.subject,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

/** The SubjectKeyIdentifier of a CA certificate (hex): what AuthorityKeyIdentifier extensions under it carry. */
export function subjectKeyIdOf(cert: x509.X509Certificate): string {
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (!ski) throw new Error(`CA certificate ${cert.subject} has no SubjectKeyIdentifier`);
  return ski.keyId;
}

/** The fingerprint the API shows: SHA-256 of the DER, lowercase hex (as device certificates are named). */
export const fingerprintOf = (derSha256: string): string => derSha256.toLowerCase();
