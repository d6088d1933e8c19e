/**
 * Bounds on what flows to devices (reference §1.7–1.8, §1.11) and on numeric request fields.
 */
import { fieldError } from '../domain/errors.js';
import { LIMITS } from '../domain/resources.js';

export function checkBytes(data: unknown, maxBytes: number, field: string): Buffer {
  if (!Buffer.isBuffer(data)) throw fieldError(field, 'must be bytes');
  if (data.length > maxBytes) throw fieldError(field, `is ${data.length} bytes; at most ${maxBytes} are allowed`);
  return data;
}

export const checkConfigData = (data: unknown, field = 'binaryData'): Buffer =>
  checkBytes(data, LIMITS.configBytes, field);

export const checkCommandData = (data: unknown, field = 'binaryData'): Buffer =>
  checkBytes(data, LIMITS.commandBytes, field);

/**
 * A command subfolder becomes part of an MQTT topic: wildcards and NUL would change what the
 * topic means, a leading '/' would create an empty level. Absent or empty means no subfolder.
 */
export function checkSubfolder(subfolder: unknown, field = 'subfolder'): string | undefined {
  if (subfolder === undefined || subfolder === '') return undefined;
  if (typeof subfolder !== 'string') throw fieldError(field, 'must be a string');
  if (subfolder.length > LIMITS.subfolderBytes)
    throw fieldError(field, `must be at most ${LIMITS.subfolderBytes} characters`);
  if (/[+#\0]/.test(subfolder)) throw fieldError(field, "must not contain '+', '#' or NUL");
  if (subfolder.startsWith('/')) throw fieldError(field, "must not start with '/'");
  return subfolder;
}

/** `versionToUpdate`: 0 means unconditional, otherwise the version the caller believes is current. */
export function checkVersionToUpdate(version: unknown, field = 'versionToUpdate'): number {
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0)
    throw fieldError(field, 'must be a non-negative integer');
  return version;
}

/** `numVersions` / `numStates`: 0 or absent means all that are kept. */
export function checkCount(count: unknown, field: string): number | undefined {
  if (count === undefined || count === 0) return undefined;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0)
    throw fieldError(field, 'must be a non-negative integer');
  return count;
}
