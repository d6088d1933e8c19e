/**
 * Service-account JWTs: a backend signs a short token with a private key whose public half is
 * registered on its account, and presents it wherever an API key is accepted. The rules are the
 * device JWT's (RS256/ES256 bound to the key type, never `none` or HMAC, `iat`/`exp`/`aud`
 * required, 10 minutes of skew) plus two: `sub` must be the account id and `aud` the account's
 * project, and a token may live at most 1 hour, since unlike a device's it opens the admin API
 * and every registry the account's roles reach.
 */
import { decodeJwt } from 'jose';
import { fieldError } from '../domain/errors.js';
import { JWT_MAX_LENGTH, signJwt, verifyDeviceJwt } from './device-jwt.js';
import type { CredentialKey } from './public-key.js';

/** The longest `exp - iat` a service token may have. */
export const SERVICE_JWT_MAX_LIFETIME_SECONDS = 3600;

// Three base64url segments, as verifyDeviceJwt expects; API keys (`kwk_…`) and admin tokens
// (`kwt_…`) never contain a dot, so the shape alone tells them apart.
const COMPACT_JWS = /^[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]+={0,2}$/;

export function looksLikeJwt(token: string): boolean {
  return typeof token === 'string' && token.length <= JWT_MAX_LENGTH && COMPACT_JWS.test(token);
}

/** The account a token claims to be (`aud`, `sub`), unverified: only to find the keys to verify it with. */
export function claimedServiceAccount(token: string): { readonly project: string; readonly account: string } | undefined {
  if (!looksLikeJwt(token)) return undefined;
  try {
    const { aud, sub } = decodeJwt(token);
    const project = Array.isArray(aud) && aud.length === 1 ? aud[0] : aud;
    if (typeof project !== 'string' || typeof sub !== 'string' || project === '' || sub === '') return undefined;
    return { project, account: sub };
  } catch {
    return undefined;
  }
}

export type ServiceJwtVerification =
  | { readonly ok: true; readonly key: CredentialKey; readonly issuedAt: Date; readonly expiresAt: Date }
  | { readonly ok: false; readonly reason: string };

/**
 * Verifies a service token for `account` of `project` against that account's usable keys. Never
 * throws for a bad token; the reason is for logs and the audit log only.
 */
export async function verifyServiceJwt(
  token: string,
  keys: readonly CredentialKey[],
  expected: { readonly project: string; readonly account: string },
  now: Date,
): Promise<ServiceJwtVerification> {
  if (!looksLikeJwt(token)) return { ok: false, reason: 'malformed token' };
  let claims: Record<string, unknown>;
  try {
    claims = decodeJwt(token);
  } catch {
    return { ok: false, reason: 'malformed token' };
  }
  // Cheap checks before any signature verification.
  if (claims.sub === undefined) return { ok: false, reason: 'missing sub' };
  if (claims.sub !== expected.account) return { ok: false, reason: 'subject mismatch' };
  const { iat, exp } = claims;
  if (typeof iat === 'number' && typeof exp === 'number' && exp - iat > SERVICE_JWT_MAX_LIFETIME_SECONDS) {
    return { ok: false, reason: 'lifetime exceeds 1 h' };
  }
  // Algorithm allow-list, aud, iat/exp presence and skew, and the signature: the device rules.
  return verifyDeviceJwt(token, keys, expected.project, now);
}

export interface SignServiceJwtOptions {
  readonly project: string;
  readonly account: string;
  /** Seconds from `iat` to `exp`; 1..3600, default 3600. */
  readonly lifetimeSeconds?: number;
  readonly now?: Date;
}

/** Signs a service token: header `{alg, typ: 'JWT'}`, claims `aud`, `sub`, `iat`, `exp`. */
export async function signServiceJwt(privateKeyPem: string, o: SignServiceJwtOptions): Promise<string> {
  const lifetime = o.lifetimeSeconds ?? SERVICE_JWT_MAX_LIFETIME_SECONDS;
  if (!Number.isInteger(lifetime) || lifetime < 1 || lifetime > SERVICE_JWT_MAX_LIFETIME_SECONDS) {
    throw fieldError('lifetimeSeconds', `must be an integer from 1 to ${SERVICE_JWT_MAX_LIFETIME_SECONDS}`);
  }
  if (typeof o.project !== 'string' || o.project === '') throw fieldError('project', 'must be the project id');
  if (typeof o.account !== 'string' || o.account === '') throw fieldError('account', 'must be the service account id');
  const iat = Math.floor((o.now ?? new Date()).getTime() / 1000);
  return signJwt(privateKeyPem, { aud: o.project, sub: o.account, iat, exp: iat + lifetime });
}
