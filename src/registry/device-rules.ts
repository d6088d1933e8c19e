/**
 * Validation of device fields (reference §3.2–3.3, DESIGN security invariants): credentials are
 * parsed and strength-checked by identity/ before they are stored, metadata is bounded.
 */
import { fieldError } from '../domain/errors.js';
import { LIMITS, PUBLIC_KEY_FORMATS, type PublicKeyFormat } from '../domain/resources.js';
import { parseCredentialKey } from '../identity/public-key.js';
import type { StoredCredential } from '../store/store.js';
import { checkEnum } from './registry-rules.js';

const METADATA_KEY = new RegExp(`^[a-zA-Z][a-zA-Z0-9-_.+~%]{0,${LIMITS.metadataKeyMaxChars - 1}}$`);

/**
 * Parses every credential (at most 3, no key twice) and returns them with their fingerprints.
 * The PEM text is stored as given; the fingerprint identifies the key whatever its wrapping.
 */
export function checkCredentials(credentials: unknown, field = 'device.credentials'): StoredCredential[] {
  if (!Array.isArray(credentials)) throw fieldError(field, 'must be a list');
  if (credentials.length > LIMITS.credentialsPerDevice)
    throw fieldError(field, `at most ${LIMITS.credentialsPerDevice} credentials are allowed per device`);
  const seen = new Map<string, number>();
  return credentials.map((credential: unknown, i) => {
    const at = `${field}[${i}]`;
    if (typeof credential !== 'object' || credential === null) throw fieldError(at, 'must be an object');
    const { publicKey, expirationTime } = credential as Record<string, unknown>;
    if (typeof publicKey !== 'object' || publicKey === null) throw fieldError(`${at}.publicKey`, 'is required');
    const { format, key } = publicKey as Record<string, unknown>;
    const checkedFormat: PublicKeyFormat = checkEnum(PUBLIC_KEY_FORMATS, format, `${at}.publicKey.format`);
    if (typeof key !== 'string') throw fieldError(`${at}.publicKey.key`, 'must be PEM text');
    const parsed = parseCredentialKey(checkedFormat, key, `${at}.publicKey.key`);
    const first = seen.get(parsed.fingerprint);
    if (first !== undefined) throw fieldError(`${at}.publicKey.key`, `is the same key as ${field}[${first}]`);
    seen.set(parsed.fingerprint, i);
    if (expirationTime !== undefined && !(expirationTime instanceof Date && Number.isFinite(expirationTime.getTime())))
      throw fieldError(`${at}.expirationTime`, 'must be a valid timestamp');
    return {
      publicKey: { format: checkedFormat, key },
      fingerprint: parsed.fingerprint,
      ...(expirationTime instanceof Date ? { expirationTime } : {}),
    };
  });
}

/** Credentials that may still authenticate at `now`: no expiration time, or one still ahead. */
export const isUsable = (credential: { readonly expirationTime?: Date }, now: Date): boolean =>
  credential.expirationTime === undefined || credential.expirationTime.getTime() > now.getTime();

export function checkMetadata(metadata: unknown, field = 'device.metadata'): Record<string, string> {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))
    throw fieldError(field, 'must be a map of strings');
  const entries = Object.entries(metadata);
  if (entries.length > LIMITS.metadataPairs)
    throw fieldError(field, `at most ${LIMITS.metadataPairs} key-value pairs are allowed`);
  let total = 0;
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (!METADATA_KEY.test(key))
      throw fieldError(
        field,
        `key '${key.slice(0, LIMITS.metadataKeyMaxChars)}' must match [a-zA-Z][a-zA-Z0-9-_.+~%]* and be at most ${LIMITS.metadataKeyMaxChars} characters`,
      );
    if (typeof value !== 'string') throw fieldError(field, `value of '${key}' must be a string`);
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > LIMITS.metadataValueBytes)
      throw fieldError(field, `value of '${key}' is ${bytes} bytes; at most ${LIMITS.metadataValueBytes} are allowed`);
    total += bytes + Buffer.byteLength(key, 'utf8');
    out[key] = value;
  }
  if (total >= LIMITS.metadataTotalBytes)
    throw fieldError(field, `totals ${total} bytes; it must stay under ${LIMITS.metadataTotalBytes}`);
  return out;
}

export function checkBlocked(blocked: unknown, field = 'device.blocked'): boolean {
  if (typeof blocked !== 'boolean') throw fieldError(field, 'must be true or false');
  return blocked;
}
