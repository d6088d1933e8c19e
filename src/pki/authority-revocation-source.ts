/**
 * RevocationSource over Keyway's own PKI: a certificate key is revoked when Keyway revoked that
 * certificate (device or CA), or when the CA that issued it is revoked: a revoked intermediate
 * takes every certificate it issued with it, at once.
 */
import type { CertificateKey, RevocationSource } from '../domain/certificate-keys.js';
import type { PkiStore, SerialRef } from '../store/pki-store.js';

type ParsedKey = { readonly key: CertificateKey } & ({ readonly der: string } | SerialRef);

function parseKey(key: CertificateKey): ParsedKey | undefined {
  if (key.startsWith('cert:')) return { key, der: key.slice(5) };
  const m = /^serial:([0-9a-f]+)\/([0-9a-f]+)$/.exec(key);
  return m ? { key, issuerSpkiSha256: m[1] as string, serialNumber: m[2] as string } : undefined;
}

export class AuthorityRevocationSource implements RevocationSource {
  constructor(private readonly store: PkiStore) {}

  async revokedAmong(keys: readonly CertificateKey[]): Promise<ReadonlySet<CertificateKey>> {
    const parsed = keys.map(parseKey).filter((k): k is ParsedKey => k !== undefined);
    if (parsed.length === 0) return new Set();
    const hashes = parsed.flatMap((k) => ('der' in k ? [k.der] : []));
    const serials = parsed.flatMap((k) => ('der' in k ? [] : [k]));
    const facts = await this.store.lookupCertificates(hashes, serials);
    const revokedIssuers = await this.store.revokedAuthorityKeys([
      ...facts.map((f) => f.issuerSpkiSha256),
      ...serials.map((s) => s.issuerSpkiSha256),
    ]);
    const revoked = new Set<CertificateKey>();
    for (const k of parsed) {
      const hit =
        'der' in k
          ? facts.some((f) => f.derSha256 === k.der && (f.revoked || revokedIssuers.has(f.issuerSpkiSha256)))
          : revokedIssuers.has(k.issuerSpkiSha256) ||
            facts.some((f) => f.revoked && f.issuerSpkiSha256 === k.issuerSpkiSha256 && f.serialNumber === k.serialNumber);
      if (hit) revoked.add(k.key);
    }
    return revoked;
  }
}
