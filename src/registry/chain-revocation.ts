/**
 * Whether anything in a verified certificate chain is revoked, by any of the revocation sources
 * (a registry's uploaded CRLs, Keyway's own PKI), with a reason naming which certificate.
 */
import type { CertificateKey, RevocationSource } from '../domain/certificate-keys.js';
import type { ChainCertificate } from '../identity/x509-chain.js';

export async function chainRevocation(
  chain: readonly ChainCertificate[],
  keys: readonly CertificateKey[],
  sources: readonly RevocationSource[],
): Promise<string | undefined> {
  const hits = await Promise.all(sources.map((s) => s.revokedAmong(keys)));
  const revoked = new Set(hits.flatMap((h) => [...h]));
  if (revoked.size === 0) return undefined;
  // Which certificate each key names: `cert:` by fingerprint, `serial:` by serial under its issuer.
  // From the anchor down, so that a revoked CA, which takes its certificates with it, is named.
  for (let i = chain.length - 1; i >= 0; i--) {
    const cert = chain[i]!;
    const issuer = chain[i + 1] ?? cert;
    const mine = [`cert:${cert.fingerprint}`, `serial:${issuer.spkiSha256}/${cert.serial}`];
    if (mine.some((k) => revoked.has(k as CertificateKey)))
      return i === 0 ? `the certificate is revoked (serial ${cert.serial})` : `issuer "${cert.subject}" of the certificate is revoked`;
  }
  return 'a certificate of the chain is revoked';
}
