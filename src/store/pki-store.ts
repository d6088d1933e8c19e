/**
 * The store of Keyway's own PKI: certificate authorities (their certificates and custody
 * references, never private keys in clear) and the certificates they issued. Like the Store, it
 * records facts and reports outcomes as values; the PKI service decides what they mean.
 */
import type { AuthorityName, AuthorityState, AuthorityType, RevocationReason } from '../domain/authorities.js';
import type { LocationName } from '../domain/names.js';

export interface StoredAuthority {
  readonly name: AuthorityName;
  readonly type: AuthorityType;
  /** The issuing CA's id in the same project and location; absent for a root. */
  readonly parent?: string;
  readonly batch?: string;
  readonly certificatePem: string;
  /** normalizeSerial() form. */
  readonly serialNumber: string;
  /** SHA-256 (hex) of the certificate's DER. */
  readonly derSha256: string;
  /** SHA-256 (hex) of the CA's SubjectPublicKeyInfo DER. */
  readonly spkiSha256: string;
  /** SHA-256 (hex) of the issuer's SubjectPublicKeyInfo DER; the CA's own for a root. */
  readonly issuerSpkiSha256: string;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** A CaKeyAlgorithm. */
  readonly keyAlgorithm: string;
  /** The KeyCustody kind holding the key. */
  readonly custodyKind: string;
  readonly keyReference: string;
  readonly state: AuthorityState;
  readonly revokeTime?: Date;
  readonly revokeReason?: RevocationReason;
  readonly createTime: Date;
}

export interface StoredCertificate {
  readonly authority: AuthorityName;
  /** normalizeSerial() form. */
  readonly serialNumber: string;
  readonly issuerSpkiSha256: string;
  readonly derSha256: string;
  readonly subject: string;
  readonly deviceId?: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly certificatePem: string;
  readonly revokeTime?: Date;
  readonly revokeReason?: RevocationReason;
  readonly createTime: Date;
}

/** A certificate as a CRL names it: issuer key and serial. */
export interface SerialRef {
  readonly issuerSpkiSha256: string;
  readonly serialNumber: string;
}

/** What the store knows of one certificate it holds, issued certificate or CA alike. */
export interface CertificateFact extends SerialRef {
  readonly derSha256: string;
  readonly revoked: boolean;
}

export type RevokeResult<T> =
  | { readonly status: 'revoked'; readonly record: T }
  | { readonly status: 'already-revoked'; readonly record: T }
  | { readonly status: 'not-found' };

export interface PkiStore {
  /** 'parent-not-found' when `parent` names no CA of the same project and location. */
  insertAuthority(authority: StoredAuthority): Promise<'created' | 'exists' | 'parent-not-found'>;
  getAuthority(name: AuthorityName): Promise<StoredAuthority | undefined>;
  /** Ordered by id. */
  listAuthorities(parent: LocationName, limit: number): Promise<StoredAuthority[]>;
  /** Marks the CA revoked unless it already is; the first revocation's time and reason stay. */
  revokeAuthority(name: AuthorityName, at: Date, reason: RevocationReason): Promise<RevokeResult<StoredAuthority>>;
  /** Returns the CA's next CRL number and advances it, atomically; undefined when no such CA. */
  takeCrlNumber(name: AuthorityName): Promise<number | undefined>;

  insertCertificate(certificate: StoredCertificate): Promise<'created' | 'exists' | 'authority-not-found'>;
  getCertificate(authority: AuthorityName, serialNumber: string): Promise<StoredCertificate | undefined>;
  revokeCertificate(
    authority: AuthorityName,
    serialNumber: string,
    at: Date,
    reason: RevocationReason,
  ): Promise<RevokeResult<StoredCertificate>>;
  /** What a CRL of the CA lists: its revoked certificates and its revoked child CAs. */
  listRevokedCertificates(authority: AuthorityName): Promise<StoredCertificate[]>;
  listRevokedChildren(authority: AuthorityName): Promise<StoredAuthority[]>;
  /** Keyway's CAs among these certificates, by the SHA-256 (hex) of their DER; unknown ones are left out. */
  findAuthoritiesByFingerprint(derSha256s: readonly string[]): Promise<StoredAuthority[]>;

  /** Certificates (issued or CA) with one of these DER hashes or one of these issuer/serial pairs. */
  lookupCertificates(derSha256s: readonly string[], serials: readonly SerialRef[]): Promise<CertificateFact[]>;
  /** Those of `spkiSha256s` that are the keys of revoked CAs. */
  revokedAuthorityKeys(spkiSha256s: readonly string[]): Promise<Set<string>>;
}
