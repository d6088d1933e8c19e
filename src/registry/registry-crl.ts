/**
 * CRLs of outside CAs uploaded to a registry: the CRL must be signed by one of the registry's CA
 * certificates and not older (by CRL number) than the one stored for that CA; it then replaces
 * the CA's revoked serials. The caller announces the revoked keys so live connections end.
 */
import { serialKey, type CertificateKey } from '../domain/certificate-keys.js';
import { failedPrecondition, fieldError, notFound } from '../domain/errors.js';
import { formatRegistry, type RegistryName } from '../domain/names.js';
import { crlSignedBy, parseCrl } from '../identity/x509-crl.js';
import type { Store } from '../store/store.js';
import { registryCaCertificates } from './registry-credentials.js';

export interface CrlUploadResult {
  /** RFC 4514 issuer name of the CRL. */
  readonly issuer: string;
  readonly crlNumber?: bigint;
  readonly revokedCount: number;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
  /** `serial:` keys of every certificate the CRL revokes. */
  readonly revokedKeys: readonly CertificateKey[];
}

export async function uploadRegistryCrl(
  store: Store,
  name: RegistryName,
  crlText: unknown,
  now: Date,
): Promise<CrlUploadResult> {
  const crl = parseCrl(crlText, 'crl');
  const registry = await store.getRegistry(name);
  if (!registry) throw notFound(`Registry ${formatRegistry(name)} not found.`);
  if (registry.credentials.length === 0)
    throw failedPrecondition(
      `Registry ${formatRegistry(name)} has no CA certificates; a CRL can only be uploaded for one of the registry's CAs.`,
    );
  const cas = registryCaCertificates(registry.credentials);
  let signer;
  for (const ca of cas) {
    if (await crlSignedBy(crl, ca)) {
      signer = ca;
      break;
    }
  }
  if (!signer)
    throw fieldError('crl', `is not signed by any of the registry's CA certificates (CRL issuer: ${crl.issuer.slice(0, 256)})`);
  const result = await store.replaceRegistryCrl(name, {
    issuerSpkiSha256: signer.spkiSha256,
    crlNumber: crl.crlNumber,
    entries: crl.entries,
    uploadedAt: now,
  });
  switch (result.status) {
    case 'registry-not-found':
      throw notFound(`Registry ${formatRegistry(name)} not found.`);
    case 'stale':
      throw failedPrecondition(
        `The CRL's number (${String(crl.crlNumber)}) is older than the CRL number ${result.storedCrlNumber} already uploaded for this CA.`,
      );
    case 'replaced':
      break;
  }
  return {
    issuer: crl.issuer,
    ...(crl.crlNumber !== undefined ? { crlNumber: crl.crlNumber } : {}),
    revokedCount: crl.entries.length,
    thisUpdate: crl.thisUpdate,
    ...(crl.nextUpdate !== undefined ? { nextUpdate: crl.nextUpdate } : {}),
    revokedKeys: [...new Set(crl.entries.map((e) => serialKey(signer.spkiSha256, e.serial)))],
  };
}
