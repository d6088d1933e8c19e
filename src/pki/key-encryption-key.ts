/**
 * The key-encryption key (KEK) that encrypts CA private keys at rest: 32 bytes from a file kept
 * outside the data directory (`pki.masterKeyFile`, `KEYWAY_MASTER_KEY_FILE`) or from the
 * `KEYWAY_MASTER_KEY` variable. A copy of the data directory (a backup, a stolen disk image)
 * then holds only ciphertext.
 */
import { createHash } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { failedPrecondition } from '../domain/errors.js';

export const KEK_BYTES = 32;

export const KEK_HINT =
  'set pki.masterKeyFile (or KEYWAY_MASTER_KEY_FILE) to a file outside the data directory, mode 0600, holding 32 random bytes ' +
  '(e.g. `openssl rand -base64 32 > /etc/keyway/master.key && chmod 600 /etc/keyway/master.key`), ' +
  'or set KEYWAY_MASTER_KEY to the base64 or hex of 32 random bytes';

export interface KeyEncryptionKey {
  readonly key: Buffer;
  /** First 8 hex digits of SHA-256(key): names the KEK in references, reveals nothing of it. */
  readonly id: string;
  /** Where it came from, for messages: a file path or the variable's name. */
  readonly source: string;
}

export interface KekSources {
  /** `pki.masterKeyFile` of the configuration (KEYWAY_MASTER_KEY_FILE sets it too). */
  readonly masterKeyFile?: string;
  /** The value of KEYWAY_MASTER_KEY. */
  readonly masterKey?: string;
  readonly dataDir: string;
}

export const kekId = (key: Buffer): string => createHash('sha256').update(key).digest('hex').slice(0, 8);

/** base64 (standard or URL-safe) or hex text of exactly 32 bytes. */
export function decodeKekText(text: string, source: string): Buffer {
  const t = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(t)) key = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) key = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
  if (key?.length !== KEK_BYTES) {
    throw failedPrecondition(`${source} must hold the base64 or hex of exactly ${KEK_BYTES} bytes; ${KEK_HINT}`);
  }
  return key;
}

async function realOrResolved(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return resolve(path);
  }
}

const inside = (dir: string, path: string): boolean => {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

async function readKekFile(path: string, dataDir: string): Promise<Buffer> {
  const file = resolve(path);
  let info;
  try {
    info = await stat(file);
  } catch (e) {
    throw failedPrecondition(`pki.masterKeyFile ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}); ${KEK_HINT}`);
  }
  if (!info.isFile()) throw failedPrecondition(`pki.masterKeyFile ${file} is not a regular file`);
  // The whole point is that a copy of the data directory does not hold the key.
  if (inside(await realOrResolved(dataDir), await realOrResolved(file))) {
    throw failedPrecondition(`pki.masterKeyFile ${file} is inside the data directory ${dataDir}; keep it elsewhere`);
  }
  if ((info.mode & 0o077) !== 0) {
    throw failedPrecondition(
      `pki.masterKeyFile ${file} is readable by group or others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`,
    );
  }
  const raw = await readFile(file);
  // Raw bytes, or their base64/hex text.
  return raw.length === KEK_BYTES ? raw : decodeKekText(raw.toString('utf8'), `pki.masterKeyFile ${file}`);
}

/** The configured KEK, or undefined when none is configured (creating a CA then fails, saying how to set one). */
export async function loadKeyEncryptionKey(sources: KekSources): Promise<KeyEncryptionKey | undefined> {
  const file = sources.masterKeyFile?.trim() || undefined;
  const text = sources.masterKey?.trim() || undefined;
  if (file && text) {
    throw failedPrecondition('both pki.masterKeyFile (KEYWAY_MASTER_KEY_FILE) and KEYWAY_MASTER_KEY are set; set only one');
  }
  if (file) {
    const key = await readKekFile(file, sources.dataDir);
    return { key, id: kekId(key), source: resolve(file) };
  }
  if (text) {
    const key = decodeKekText(text, 'KEYWAY_MASTER_KEY');
    return { key, id: kekId(key), source: 'KEYWAY_MASTER_KEY' };
  }
  return undefined;
}
