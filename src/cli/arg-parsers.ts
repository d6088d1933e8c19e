/**
 * Parsers for the CLI's structured flag values, with gcloud's spellings:
 * `--public-key path=FILE,type=es256[,expiration-time=RFC3339]`, `--metadata k=v,k2=v2`,
 * `--event-notification-config topic=T[,subfolder=S]`, `--lifetime 60m`.
 */
import type { GatewayAuthMethod, GatewayType, LogLevel, PublicKeyFormat } from '../domain/resources.js';
import { UsageError } from './io.js';

/** Splits `k=v,k2=v2` into pairs; values may contain '=' but not ','. */
export function parseKeyValues(flag: string, text: string): Array<[string, string]> {
  return text
    .split(',')
    .filter((part) => part.trim() !== '')
    .map((part) => {
      const eq = part.indexOf('=');
      if (eq <= 0) throw new UsageError(`${flag}: expected KEY=VALUE, got '${part}'`);
      return [part.slice(0, eq).trim(), part.slice(eq + 1)];
    });
}

export type PublicKeyType = 'es256' | 'es256-pem' | 'es256-x509-pem' | 'rs256' | 'rsa-pem' | 'rsa-x509-pem';
export const PUBLIC_KEY_TYPES: readonly PublicKeyType[] = ['es256', 'es256-pem', 'es256-x509-pem', 'rs256', 'rsa-pem', 'rsa-x509-pem'];

export interface PublicKeySpec {
  readonly path: string;
  readonly type: PublicKeyType;
  /** RFC 3339, passed to the API as given. */
  readonly expirationTime?: string;
}

export function parsePublicKeySpec(text: string): PublicKeySpec {
  const fields = new Map<string, string>();
  for (const [k, v] of parseKeyValues('--public-key', text)) {
    if (!['path', 'type', 'expiration-time'].includes(k)) {
      throw new UsageError(`--public-key: unknown key '${k}' (expected path, type, expiration-time)`);
    }
    if (fields.has(k)) throw new UsageError(`--public-key: '${k}' given twice`);
    fields.set(k, v);
  }
  const path = fields.get('path');
  const type = fields.get('type');
  if (!path) throw new UsageError('--public-key: path=FILE is required');
  if (!type) throw new UsageError(`--public-key: type is required (one of ${PUBLIC_KEY_TYPES.join(', ')})`);
  if (!(PUBLIC_KEY_TYPES as readonly string[]).includes(type)) {
    throw new UsageError(`--public-key: type '${type}' is not one of ${PUBLIC_KEY_TYPES.join(', ')}`);
  }
  const expirationTime = fields.get('expiration-time');
  return { path, type: type as PublicKeyType, ...(expirationTime ? { expirationTime } : {}) };
}

/**
 * The credential format of a key file. `es256` and `rs256` name the algorithm only, so the file
 * decides between a bare public key and a certificate; the other types are exact.
 */
export function publicKeyFormat(type: PublicKeyType, pem: string): PublicKeyFormat {
  const certificate = pem.includes('-----BEGIN CERTIFICATE-----');
  switch (type) {
    case 'es256':
      return certificate ? 'ES256_X509_PEM' : 'ES256_PEM';
    case 'rs256':
      return certificate ? 'RSA_X509_PEM' : 'RSA_PEM';
    case 'es256-pem':
      return 'ES256_PEM';
    case 'es256-x509-pem':
      return 'ES256_X509_PEM';
    case 'rsa-pem':
      return 'RSA_PEM';
    case 'rsa-x509-pem':
      return 'RSA_X509_PEM';
  }
}

/** `--metadata k=v,k2=v2`, repeatable; a later key wins. */
export function parseMetadata(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) for (const [k, val] of parseKeyValues('--metadata', v)) out[k] = val;
  return out;
}

export interface EventNotificationSpec {
  readonly pubsubTopicName: string;
  readonly subfolderMatches?: string;
}

/** `--event-notification-config topic=T[,subfolder=S]`. */
export function parseEventNotificationConfig(text: string): EventNotificationSpec {
  const fields = new Map(parseKeyValues('--event-notification-config', text));
  for (const k of fields.keys()) {
    if (k !== 'topic' && k !== 'subfolder') {
      throw new UsageError(`--event-notification-config: unknown key '${k}' (expected topic, subfolder)`);
    }
  }
  const topic = fields.get('topic');
  if (!topic) throw new UsageError('--event-notification-config: topic=TOPIC is required');
  const subfolder = fields.get('subfolder');
  return { pubsubTopicName: topic, ...(subfolder ? { subfolderMatches: subfolder } : {}) };
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600 };

/** `90s`, `60m`, `24h` or bare seconds, to seconds. */
export function parseDuration(flag: string, text: string): number {
  const m = /^(\d{1,6})([smh]?)$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: '${text}' is not a duration such as 90s, 60m or 24h`);
  const seconds = Number(m[1]) * (UNIT_SECONDS[m[2] || 's'] ?? 1);
  if (seconds < 1) throw new UsageError(`${flag}: must be at least 1s`);
  return seconds;
}

export function parseCount(flag: string, text: string): number {
  if (!/^\d{1,9}$/.test(text)) throw new UsageError(`${flag}: '${text}' is not a non-negative integer`);
  return Number(text);
}

export function parsePort(flag: string, text: string): number {
  const n = parseCount(flag, text);
  if (n > 65535) throw new UsageError(`${flag}: '${text}' is not a TCP port`);
  return n;
}

/** Case-insensitive choice of an API enum by a friendlier CLI spelling (`association-only`). */
function choice<T extends string>(flag: string, text: string, values: readonly T[]): T {
  const wanted = text.trim().toUpperCase().replace(/-/g, '_');
  const found = values.find((v) => v === wanted);
  if (!found) {
    throw new UsageError(`${flag}: '${text}' is not one of ${values.map((v) => v.toLowerCase().replace(/_/g, '-')).join(', ')}`);
  }
  return found;
}

export const parseLogLevel = (text: string): LogLevel =>
  choice<LogLevel>('--log-level', text, ['NONE', 'ERROR', 'INFO', 'DEBUG']);
export const parseDeviceType = (text: string): GatewayType =>
  choice<GatewayType>('--device-type', text, ['GATEWAY', 'NON_GATEWAY']);
export const parseAuthMethod = (text: string): GatewayAuthMethod =>
  choice<GatewayAuthMethod>('--auth-method', text, ['ASSOCIATION_ONLY', 'DEVICE_AUTH_TOKEN_ONLY', 'ASSOCIATION_AND_DEVICE_AUTH_TOKEN']);
