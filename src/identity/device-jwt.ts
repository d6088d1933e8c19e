/**
 * Device JWTs as Cloud IoT Core defines them (reference §1.3): RS256 or ES256 only, each bound to
 * its key type; `iat`, `exp` and `aud` (the project id) required; 10 minutes of clock skew;
 * at most 24 hours between `iat` and `exp`; `nbf` ignored.
 */
import { createPrivateKey, verify, type KeyObject } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { fieldError } from '../domain/errors.js';
import type { CredentialKey, JwtAlgorithm } from './public-key.js';

export const JWT_CLOCK_SKEW_SECONDS = 600;
export const JWT_MAX_LIFETIME_SECONDS = 86_400;
/** Tokens longer than this are refused before any decoding (an RS256 JWT is well under 1 KB). */
export const JWT_MAX_LENGTH = 8 * 1024;

export type JwtVerification =
  | { readonly ok: true; readonly key: CredentialKey; readonly issuedAt: Date; readonly expiresAt: Date }
  | { readonly ok: false; readonly reason: string };

const ALLOWED_ALGORITHMS: ReadonlySet<string> = new Set<JwtAlgorithm>(['RS256', 'ES256']);
// Three non-empty base64url segments; '=' padding is tolerated as Cloud IoT Core did.
const COMPACT_JWS = /^[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]+={0,2}\.[A-Za-z0-9_-]+={0,2}$/;

const refuse = (reason: string): JwtVerification => ({ ok: false, reason });

type ClaimCheck = { readonly issuedAt: number; readonly expiresAt: number } | { readonly reason: string };

/** Checks the time and audience claims; seconds throughout, as NumericDate is. */
function checkClaims(claims: Record<string, unknown>, audience: string, nowSeconds: number): ClaimCheck {
  const { iat, exp, aud } = claims;
  if (iat === undefined) return { reason: 'missing iat' };
  if (exp === undefined) return { reason: 'missing exp' };
  if (aud === undefined) return { reason: 'missing aud' };
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return { reason: 'iat is not a NumericDate' };
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return { reason: 'exp is not a NumericDate' };

  const audiences = Array.isArray(aud) ? aud : [aud];
  if (!audiences.some((a) => a === audience)) return { reason: 'audience mismatch' };

  if (exp <= iat) return { reason: 'exp is not after iat' };
  if (exp - iat > JWT_MAX_LIFETIME_SECONDS) return { reason: 'lifetime exceeds 24 h' };
  if (iat - JWT_CLOCK_SKEW_SECONDS > nowSeconds) return { reason: 'iat in the future' };
  if (exp + JWT_CLOCK_SKEW_SECONDS <= nowSeconds) return { reason: 'token expired' };
  return { issuedAt: iat, expiresAt: exp };
}

/**
 * Verifies a device's JWT against its usable credential keys. Never throws for a bad token; the
 * reason on refusal is for server logs only (devices learn nothing beyond "not authorised").
 */
export async function verifyDeviceJwt(
  token: string,
  keys: readonly CredentialKey[],
  audience: string,
  now: Date,
): Promise<JwtVerification> {
  if (typeof token !== 'string' || token.length === 0) return refuse('malformed token');
  if (token.length > JWT_MAX_LENGTH) return refuse('token too long');
  if (!COMPACT_JWS.test(token)) return refuse('malformed token');

  let alg: unknown;
  let claims: Record<string, unknown>;
  try {
    const header = decodeProtectedHeader(token);
    // Extensions a verifier must understand (RFC 7515 §4.1.11) or an unencoded payload (RFC 7797):
    // no device token has a reason to carry them, and this verifier implements neither.
    if (header.crit !== undefined || header.b64 !== undefined) return refuse('unsupported header parameters');
    alg = header.alg;
    claims = decodeJwt(token);
  } catch {
    return refuse('malformed token');
  }
  if (typeof alg !== 'string' || !ALLOWED_ALGORITHMS.has(alg)) return refuse('algorithm not allowed');

  // Cheap claim checks first: a token that cannot pass costs no signature verification.
  const checked = checkClaims(claims, audience, now.getTime() / 1000);
  if ('reason' in checked) return refuse(checked.reason);

  // Only keys whose type fixes this very algorithm are candidates: an RS256 header never meets
  // an EC key and vice versa, and no key is ever used as an HMAC secret.
  const candidates = keys.filter((k) => k.algorithm === alg);
  if (candidates.length === 0) return refuse(keys.length === 0 ? 'no usable credential' : `no credential for algorithm ${alg}`);

  // The JWS signature (RFC 7515 §5.2) checked by node:crypto with the credential's KeyObject, on
  // libuv's thread pool so that the event loop goes on meanwhile: going through jose's WebCrypto
  // path would convert each new key to a CryptoKey first, which costs several times the
  // verification itself in a connection storm.
  const dot = token.lastIndexOf('.');
  const signingInput = Buffer.from(token.slice(0, dot), 'latin1');
  const signature = Buffer.from(token.slice(dot + 1), 'base64url');
  for (const candidate of candidates) {
    if (!(await verifiesWith(candidate, signingInput, signature))) continue;
    return {
      ok: true,
      key: candidate,
      issuedAt: new Date(checked.issuedAt * 1000),
      expiresAt: new Date(checked.expiresAt * 1000),
    };
  }
  return refuse('signature does not verify with any credential');
}

/** RS256: RSASSA-PKCS1-v1_5 with SHA-256; ES256: ECDSA P-256 with SHA-256, r‖s (RFC 7518 §3.3, §3.4). */
function verifiesWith(candidate: CredentialKey, signingInput: Buffer, signature: Buffer): Promise<boolean> {
  if (candidate.algorithm === 'ES256' && signature.length !== 64) return Promise.resolve(false);
  const key = candidate.algorithm === 'ES256' ? { key: candidate.key, dsaEncoding: 'ieee-p1363' as const } : candidate.key;
  return new Promise((resolve) => {
    try {
      verify('sha256', signingInput, key, signature, (error, ok) => resolve(error === null && ok));
    } catch {
      resolve(false);
    }
  });
}

export interface SignDeviceJwtOptions {
  /** The project id. */
  readonly audience: string;
  /** Seconds from `iat` to `exp`; 1..86400, default 3600. */
  readonly lifetimeSeconds?: number;
  readonly now?: Date;
}

function signingAlgorithmOf(key: KeyObject): JwtAlgorithm {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048) return 'RS256';
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') return 'ES256';
  throw fieldError('privateKey', 'must be an RSA (at least 2048 bits) or P-256 private key');
}

/** Signs a device JWT the way Cloud IoT Core device samples do (header `{alg, typ: 'JWT'}`). */
export async function signDeviceJwt(privateKeyPem: string, options: SignDeviceJwtOptions): Promise<string> {
  const lifetime = options.lifetimeSeconds ?? 3600;
  if (!Number.isInteger(lifetime) || lifetime < 1 || lifetime > JWT_MAX_LIFETIME_SECONDS) {
    throw fieldError('lifetimeSeconds', `must be an integer from 1 to ${JWT_MAX_LIFETIME_SECONDS}`);
  }
  if (typeof options.audience !== 'string' || options.audience.length === 0) {
    throw fieldError('audience', 'must be the project id');
  }
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  return signJwt(privateKeyPem, { aud: options.audience, iat, exp: iat + lifetime });
}

/**
 * Signs claims `aud`, `iat`, `exp` (and `sub` when given) with an RS256/ES256 key, header
 * `{alg, typ: 'JWT'}`; shared by device and service tokens, whose callers check the options.
 */
export async function signJwt(
  privateKeyPem: string,
  claims: { readonly aud: string; readonly sub?: string; readonly iat: number; readonly exp: number },
): Promise<string> {
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch {
    throw fieldError('privateKey', 'is not a parseable private key PEM');
  }
  const jwt = new SignJWT({})
    .setProtectedHeader({ alg: signingAlgorithmOf(key), typ: 'JWT' })
    .setIssuedAt(claims.iat)
    .setExpirationTime(claims.exp)
    .setAudience(claims.aud);
  if (claims.sub !== undefined) jwt.setSubject(claims.sub);
  return jwt.sign(key);
}
