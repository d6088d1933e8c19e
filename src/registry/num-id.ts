/**
 * Numeric device ids: random, so they reveal neither fleet size nor creation order, at least
 * 10^15 so they always have 16 digits, and below 2^53 so every JSON parser reads them exactly.
 */
import { randomBytes } from 'node:crypto';

export const NUM_ID_MIN = 1e15;
export const NUM_ID_LIMIT = 2 ** 53;

export function randomNumId(): string {
  for (;;) {
    const bytes = randomBytes(7);
    // 5 + 48 = 53 uniformly random bits; values below the minimum are drawn again (about 1 in 9).
    const n = ((bytes[0] ?? 0) & 0x1f) * 2 ** 48 + bytes.readUIntBE(1, 6);
    if (n >= NUM_ID_MIN) return String(n);
  }
}
