/**
 * RevocationSource for CRLs uploaded to a registry: `new RegistryRevocations(store, registry)`.
 * The certificate authenticator combines it with Keyway's own PKI revocations at connect time.
 * Only `serial:` keys can be revoked by an uploaded CRL; `cert:` keys never match here.
 */
import type { CertificateKey, RevocationSource } from '../domain/certificate-keys.js';
import type { RegistryName } from '../domain/names.js';
import type { Store } from '../store/store.js';

export class RegistryRevocations implements RevocationSource {
  readonly #registry: RegistryName;

  constructor(
    private readonly store: Pick<Store, 'revokedInRegistry'>,
    registry: RegistryName,
  ) {
    this.#registry = { project: registry.project, location: registry.location, registry: registry.registry };
  }

  revokedAmong(keys: readonly CertificateKey[]): Promise<ReadonlySet<CertificateKey>> {
    return this.store.revokedInRegistry(this.#registry, keys);
  }
}
