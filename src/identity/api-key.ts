/**
 * Service-account API keys: `kwk_{key id}_{secret}`, the key id 16 hex digits (shown in lists,
 * used to find the stored hash), the secret 256 random bits. Shown once, stored only as a SHA-256
 * hash of the whole key (the secret is random, so no salt is needed) and compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const KEY_SHAPE = /^kwk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const HASH_SHAPE = /^sha256:[0-9a-f]{64}$/;
export const API_KEY_PREFIX = 'kwk_';
export const KEY_ID_SHAPE = /^[0-9a-f]{16}$/;

export interface GeneratedApiKey {
  readonly keyId: string;
  /** The whole key, for the caller's eyes only. */
  readonly key: string;
  readonly hash: string;
}

export function generateApiKey(): GeneratedApiKey {
  const keyId = randomBytes(8).toString('hex');
  const key = `${API_KEY_PREFIX}${keyId}_${randomBytes(32).toString('base64url')}`;
  return { keyId, key, hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return 'sha256:' + createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The key id of a well-formed key, or undefined. */
export function apiKeyId(presented: string): string | undefined {
  return typeof presented === 'string' ? KEY_SHAPE.exec(presented)?.[1] : undefined;
}

/** True only when `presented` is a well-formed key whose hash is `storedHash`. */
export function verifyApiKey(presented: string, storedHash: string): boolean {
  if (apiKeyId(presented) === undefined || typeof storedHash !== 'string' || !HASH_SHAPE.test(storedHash)) return false;
  const expected = Buffer.from(storedHash.slice('sha256:'.length), 'hex');
  const actual = createHash('sha256').update(presented, 'utf8').digest();
  return timingSafeEqual(actual, expected);
}
