/**
 * Keyway's certificate authority service for tests: keys encrypted under a throw-away KEK, in a
 * throw-away SQLite store (pkiTestBed) or in a store the caller has (testAuthorities, which
 * api/test-stack uses). Certificates made by the tests themselves are test/support's: test-pki
 * (in-process) and openssl-ca (openssl, as an outside tool; it also reads and verifies what the
 * service made).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertificateKey } from '../domain/certificate-keys.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { PkiStore } from '../store/pki-store.js';
import type { Store } from '../store/store.js';
import { CertificateAuthorityService } from './certificate-authority-service.js';
import { custodySet } from './custodies.js';
import { EncryptedKeyCustody } from './encrypted-custody.js';
import { kekId, type KeyEncryptionKey } from './key-encryption-key.js';

export const LOCATION = { project: 'demo', location: 'europe-west1' } as const;

/** A CA service whose keys are encrypted under a new random KEK; revocations go to `onRevoked`. */
export function testAuthorities(
  store: PkiStore,
  onRevoked: (keys: CertificateKey[], reason: string) => void,
): { service: CertificateAuthorityService; kek: KeyEncryptionKey } {
  const key = randomBytes(32);
  const kek: KeyEncryptionKey = { key, id: kekId(key), source: 'test' };
  const service = new CertificateAuthorityService({
    store,
    custodies: custodySet([new EncryptedKeyCustody(kek)], 'encrypted'),
    onRevoked,
  });
  return { service, kek };
}

export interface PkiTestBed {
  /** The temp directory of the store; tests may put their files here too. */
  readonly dir: string;
  readonly store: Store;
  readonly kek: KeyEncryptionKey;
  readonly service: CertificateAuthorityService;
  readonly revoked: Array<{ keys: CertificateKey[]; reason: string }>;
  close(): Promise<void>;
}

export async function pkiTestBed(): Promise<PkiTestBed> {
  const dir = await mkdtemp(join(tmpdir(), 'keyway-ca-'));
  const store = await openSqliteStore(join(dir, 'keyway.db'));
  const revoked: Array<{ keys: CertificateKey[]; reason: string }> = [];
  const { service, kek } = testAuthorities(store.pki, (keys, reason) => revoked.push({ keys, reason }));
  return {
    dir,
    store,
    kek,
    service,
    revoked,
    close: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
