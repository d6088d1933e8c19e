/**
 * Names of certificates that revocation speaks of, shared by the PKI, the registry and the
 * broker. A live certificate connection carries the keys of every certificate in its verified
 * chain; a revocation names keys, and every connection holding one of them ends.
 * - `cert:{sha256}`: one exact certificate, by the SHA-256 (hex) of its DER;
 * - `serial:{issuerSpkiSha256}/{serial}`: the certificate with that serial number from the
 *   issuer whose public key (SubjectPublicKeyInfo DER) has that SHA-256 (hex), which is what a
 *   CRL lists.
 */

export type CertificateKey = `cert:${string}` | `serial:${string}/${string}`;

/** Lowercase hex without leading zeros ("0" for zero), whatever the input's case or padding. */
export function normalizeSerial(serialHex: string): string {
  const hex = serialHex.trim().toLowerCase().replace(/^0x/, '').replace(/:/g, '');
  if (!/^[0-9a-f]+$/.test(hex)) throw new Error(`not a hexadecimal serial number: ${serialHex}`);
  const stripped = hex.replace(/^0+/, '');
  return stripped === '' ? '0' : stripped;
}

export const certificateKey = (derSha256Hex: string): CertificateKey => `cert:${derSha256Hex.toLowerCase()}`;

export const serialKey = (issuerSpkiSha256Hex: string, serialHex: string): CertificateKey =>
  `serial:${issuerSpkiSha256Hex.toLowerCase()}/${normalizeSerial(serialHex)}`;

/** Who knows of revoked certificates (Keyway's own PKI, CRLs uploaded to a registry). */
export interface RevocationSource {
  /** Those of `keys` that are revoked. */
  revokedAmong(keys: readonly CertificateKey[]): Promise<ReadonlySet<CertificateKey>>;
}
