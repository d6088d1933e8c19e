/**
 * The tables of Keyway's own PKI (migration 0002_pki), typed as in schema.ts: times are epoch
 * milliseconds in bigint columns, hashes and serial numbers lowercase hex text.
 */
import type { Int64, NullableInt64 } from './schema.js';

export interface CertificateAuthoritiesTable {
  project: string;
  location: string;
  id: string;
  /** ROOT or INTERMEDIATE. */
  kind: string;
  /** The issuing CA's id (same project and location); null for a root. */
  parent_id: string | null;
  /** The manufacturing batch an intermediate serves. */
  batch: string | null;
  certificate_pem: string;
  /** Normalized hex (domain/certificate-keys normalizeSerial). */
  serial_number: string;
  /** SHA-256 (hex) of the certificate's DER. */
  der_sha256: string;
  /** SHA-256 (hex) of the CA's own SubjectPublicKeyInfo DER. */
  spki_sha256: string;
  /** SHA-256 (hex) of the issuer's SubjectPublicKeyInfo DER (the CA's own for a root). */
  issuer_spki_sha256: string;
  subject: string;
  not_before: Int64;
  not_after: Int64;
  /** A CaKeyAlgorithm (pki/key-custody). */
  key_algorithm: string;
  /** Which KeyCustody holds the key: 'encrypted' or 'pkcs11'. */
  custody_kind: string;
  /** The custody's opaque reference; never a private key in clear. */
  key_reference: string;
  /** ACTIVE or REVOKED. */
  status: string;
  revoke_time: NullableInt64;
  revoke_reason: string | null;
  /** The number the CA's next CRL carries (RFC 5280 §5.2.3: monotonically increasing). */
  next_crl_number: Int64;
  created_at: Int64;
}

export interface IssuedCertificatesTable {
  project: string;
  location: string;
  ca_id: string;
  serial_number: string;
  issuer_spki_sha256: string;
  der_sha256: string;
  subject: string;
  device_id: string | null;
  not_before: Int64;
  not_after: Int64;
  certificate_pem: string;
  revoke_time: NullableInt64;
  revoke_reason: string | null;
  created_at: Int64;
}
