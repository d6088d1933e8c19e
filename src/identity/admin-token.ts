/**
 * Admin API bearer tokens: 256 random bits, shown once, stored only as a SHA-256 hash and
 * compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const TOKEN_PREFIX = 'kwt_';
const TOKEN_SHAPE = /^kwt_[A-Za-z0-9_-]{43}$/;
const HASH_SHAPE = /^sha256:[0-9a-f]{64}$/;

export function generateAdminToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function hashAdminToken(token: string): string {
  return 'sha256:' + createHash('sha256').update(token, 'utf8').digest('hex');
}

/** True only when `presented` is a well-formed token whose hash is `storedHash`. */
export function verifyAdminToken(presented: string, storedHash: string): boolean {
  if (typeof presented !== 'string' || typeof storedHash !== 'string') return false;
  if (!TOKEN_SHAPE.test(presented) || !HASH_SHAPE.test(storedHash)) return false;
  const expected = Buffer.from(storedHash.slice('sha256:'.length), 'hex');
  const actual = createHash('sha256').update(presented, 'utf8').digest();
  return timingSafeEqual(actual, expected);
}
