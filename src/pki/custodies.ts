/**
 * Which custody keeps which CA key. Every CA records the kind of custody its key went to; new
 * keys go to the PKCS#11 token when one is configured, otherwise they are encrypted under the
 * key-encryption key. The PKCS#11 binding is loaded only when a token is configured, so a
 * deployment without one never loads native PKCS#11 code.
 */
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { failedPrecondition } from '../domain/errors.js';
import { EncryptedKeyCustody } from './encrypted-custody.js';
import { loadKeyEncryptionKey } from './key-encryption-key.js';
import type { KeyCustody } from './key-custody.js';

export interface Pkcs11Settings {
  /** Path of the PKCS#11 module (shared library). */
  readonly module: string;
  readonly tokenLabel: string;
  /** A file holding the user PIN (mode 0600); KEYWAY_PKCS11_PIN otherwise. */
  readonly pinFile?: string;
}

export interface CustodyOptions {
  readonly dataDir: string;
  /** `pki.masterKeyFile`. */
  readonly masterKeyFile?: string;
  /** KEYWAY_MASTER_KEY, read from the environment at start, never kept in the configuration. */
  readonly masterKey?: string;
  readonly pkcs11?: Pkcs11Settings;
  /** KEYWAY_PKCS11_PIN, likewise. */
  readonly pkcs11Pin?: string;
}

export interface CaKeyCustodies {
  /** Where new CA keys go. */
  forNewKeys(): KeyCustody;
  /** The custody that keeps keys of `kind`; FAILED_PRECONDITION when it is not configured. */
  ofKind(kind: string): KeyCustody;
  close(): Promise<void>;
}

/** Custodies from ready instances; new keys go to `newKeys` (tests, and openCaKeyCustodies). */
export function custodySet(custodies: readonly KeyCustody[], newKeys: KeyCustody['kind']): CaKeyCustodies {
  const byKind = new Map(custodies.map((c) => [c.kind as string, c]));
  const pick = (kind: string): KeyCustody => {
    const custody = byKind.get(kind);
    if (custody) return custody;
    if (kind === 'pkcs11') {
      throw failedPrecondition(
        'this CA key is kept in a PKCS#11 token, but none is configured: set pki.pkcs11 (or KEYWAY_PKCS11_MODULE and KEYWAY_PKCS11_TOKEN_LABEL)',
      );
    }
    throw failedPrecondition(`no custody of kind '${kind}' is configured`);
  };
  return {
    forNewKeys: () => pick(newKeys),
    ofKind: pick,
    close: async () => {
      for (const c of custodies) await c.close();
    },
  };
}

async function readPin(settings: Pkcs11Settings, fromEnv: string | undefined): Promise<string> {
  if (settings.pinFile) {
    const file = resolve(settings.pinFile);
    let mode: number;
    try {
      mode = (await stat(file)).mode;
    } catch (e) {
      throw failedPrecondition(`pki.pkcs11.pinFile ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if ((mode & 0o077) !== 0) {
      throw failedPrecondition(`pki.pkcs11.pinFile ${file} is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
    }
    const pin = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
    if (pin === '') throw failedPrecondition(`pki.pkcs11.pinFile ${file} is empty`);
    return pin;
  }
  if (fromEnv) return fromEnv;
  throw failedPrecondition('a PKCS#11 token is configured without a PIN: set pki.pkcs11.pinFile (KEYWAY_PKCS11_PIN_FILE) or KEYWAY_PKCS11_PIN');
}

/** Builds the custodies the configuration asks for; a misconfigured KEK or token fails here, at start. */
export async function openCaKeyCustodies(o: CustodyOptions): Promise<CaKeyCustodies> {
  const kek = await loadKeyEncryptionKey({
    dataDir: o.dataDir,
    ...(o.masterKeyFile !== undefined ? { masterKeyFile: o.masterKeyFile } : {}),
    ...(o.masterKey !== undefined ? { masterKey: o.masterKey } : {}),
  });
  // Always present: keys encrypted before a token was configured must stay usable.
  const encrypted = new EncryptedKeyCustody(kek);
  if (!o.pkcs11) return custodySet([encrypted], 'encrypted');
  const pin = await readPin(o.pkcs11, o.pkcs11Pin);
  // Loaded only here: the binding is native code that deployments without a token never need.
  const { openPkcs11Custody } = await import('./pkcs11-custody.js');
  const token = await openPkcs11Custody({ module: o.pkcs11.module, tokenLabel: o.pkcs11.tokenLabel, pin });
  return custodySet([encrypted, token], 'pkcs11');
}
