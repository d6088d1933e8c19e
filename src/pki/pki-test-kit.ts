/**
 * Helpers for tests of the PKI: a throw-away SQLite store and KEK, and openssl run in a temp
 * directory to make device keys and CSRs and to read what Keyway produced, as an outside tool.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertificateKey } from '../domain/certificate-keys.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';
import { CertificateAuthorityService } from './certificate-authority-service.js';
import { custodySet } from './custodies.js';
import { EncryptedKeyCustody } from './encrypted-custody.js';
import { kekId, type KeyEncryptionKey } from './key-encryption-key.js';

export interface PkiTestBed {
  readonly dir: string;
  readonly store: Store;
  readonly kek: KeyEncryptionKey;
  readonly service: CertificateAuthorityService;
  readonly revoked: Array<{ keys: CertificateKey[]; reason: string }>;
  /** Runs openssl in `dir`; throws with its stderr when it fails. */
  openssl(args: readonly string[], input?: string): string;
  /** Like openssl() but returns the exit status and output instead of throwing. */
  tryOpenssl(args: readonly string[], input?: string): { status: number; output: string };
  write(file: string, text: string | Buffer): Promise<string>;
  read(file: string): Promise<string>;
  /** A key (openssl genpkey arguments) and a CSR for it, with subject `/CN=cn`; returns the CSR PEM. */
  csr(name: string, keyArgs: readonly string[], subject: string, extra?: readonly string[]): Promise<string>;
  close(): Promise<void>;
}

export const LOCATION = { project: 'demo', location: 'europe-west1' } as const;

export async function pkiTestBed(): Promise<PkiTestBed> {
  const dir = await mkdtemp(join(tmpdir(), 'keyway-ca-'));
  const store = await openSqliteStore(join(dir, 'keyway.db'));
  const key = randomBytes(32);
  const kek: KeyEncryptionKey = { key, id: kekId(key), source: 'test' };
  const revoked: Array<{ keys: CertificateKey[]; reason: string }> = [];
  const service = new CertificateAuthorityService({
    store: store.pki,
    custodies: custodySet([new EncryptedKeyCustody(kek)], 'encrypted'),
    onRevoked: (keys, reason) => revoked.push({ keys, reason }),
  });
  const tryOpenssl = (args: readonly string[], input?: string): { status: number; output: string } => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
    return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
  };
  const openssl = (args: readonly string[], input?: string): string => {
    const r = tryOpenssl(args, input);
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${r.output}`);
    return r.output;
  };
  return {
    dir,
    store,
    kek,
    service,
    revoked,
    openssl,
    tryOpenssl,
    write: async (file, text) => {
      await writeFile(join(dir, file), text);
      return join(dir, file);
    },
    read: (file) => readFile(join(dir, file), 'utf8'),
    csr: async (name, keyArgs, subject, extra = []) => {
      openssl(['genpkey', ...keyArgs, '-out', `${name}.key`]);
      openssl(['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`, ...extra]);
      return readFile(join(dir, `${name}.csr`), 'utf8');
    },
    close: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const EC_KEY = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'] as const;
export const RSA_KEY = (bits: number): string[] => ['-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${bits}`];
