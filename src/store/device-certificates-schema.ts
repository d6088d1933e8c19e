/**
 * The table of device certificates (migration 0004_device_certificates), typed as in schema.ts:
 * times are epoch milliseconds in bigint columns, hashes and serials lowercase hex text.
 */
import type { Int64 } from './schema.js';

export interface DeviceCertificatesTable {
  /** SHA-256 (hex) of the certificate's DER: the certificate's id, unique across the installation. */
  fingerprint: string;
  device_num_id: Int64;
  project: string;
  location: string;
  registry_id: string;
  /** SHA-256 (hex) of the issuer's SubjectPublicKeyInfo DER. */
  issuer_spki_sha256: string;
  /** normalizeSerial() form. */
  serial: string;
  subject: string;
  issuer: string;
  not_before: Int64;
  not_after: Int64;
  pem: string;
  /** A CertificateState. */
  state: string;
  created_at: Int64;
  updated_at: Int64;
}
