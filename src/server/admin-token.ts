import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { generateAdminToken, hashAdminToken, verifyAdminToken } from '../identity/admin-token.js';

const SETTING = 'admin_token_hash';
export const ADMIN_TOKEN_FILE = 'admin-token';

interface SettingsStore {
  getSetting(key: string): Promise<string | undefined>;
  putSetting(key: string, value: string): Promise<void>;
}

export interface AdminTokenCheck {
  /** Constant-time check of a presented bearer token against the stored hash. */
  readonly verify: (token: string) => boolean;
  /** Where the token was written, when this start created it. */
  readonly createdAt?: string;
}

/**
 * The bootstrap admin token: created on first start, written once to `<dataDir>/admin-token`
 * (0600, never overwritten) for the operator and the CLI; the server keeps only its hash.
 */
export async function ensureAdminToken(store: SettingsStore, dataDir: string): Promise<AdminTokenCheck> {
  let hash = await store.getSetting(SETTING);
  let createdAt: string | undefined;
  if (hash === undefined) {
    const token = generateAdminToken();
    const path = join(dataDir, ADMIN_TOKEN_FILE);
    // 'wx' refuses to overwrite a token file left by another installation sharing the directory.
    const file = await open(path, 'wx', 0o600);
    try {
      await file.writeFile(`${token}\n`);
    } finally {
      await file.close();
    }
    hash = hashAdminToken(token);
    await store.putSetting(SETTING, hash);
    createdAt = path;
  }
  const stored = hash;
  return { verify: (token) => verifyAdminToken(token, stored), ...(createdAt ? { createdAt } : {}) };
}
