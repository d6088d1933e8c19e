/**
 * The subject of the device certificates Keyway's CAs issue is fixed (certificate-profiles), so a
 * registry that trusts one of them can check a provisioning template against it when the
 * template is saved (the registry's IssuerProfiles).
 */
import { formatAuthority, type IssuedFields } from '../domain/authorities.js';
import type { PkiStore } from '../store/pki-store.js';
import { DEVICE_CERTIFICATE_FIELDS } from './certificate-profiles.js';

export class KeywayIssuerProfiles {
  constructor(private readonly store: PkiStore) {}

  /** For each of these CA certificates (DER SHA-256) that is one of Keyway's CAs: its devices' subject fields. */
  async issuedFields(caDerSha256s: readonly string[]): Promise<ReadonlyMap<string, IssuedFields>> {
    const found = await this.store.findAuthoritiesByFingerprint(caDerSha256s);
    return new Map(
      found.map((a) => [a.derSha256, { fields: DEVICE_CERTIFICATE_FIELDS, issuer: `Keyway's CA ${formatAuthority(a.name)}` }]),
    );
  }
}
