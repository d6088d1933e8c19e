import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeProtectedHeader, SignJWT } from 'jose';
import { KeywayError } from '../domain/errors.js';
import {
  JWT_CLOCK_SKEW_SECONDS,
  JWT_MAX_LIFETIME_SECONDS,
  signDeviceJwt,
  verifyDeviceJwt,
  type JwtVerification,
} from './device-jwt.js';
import { parseCredentialKey, type CredentialKey } from './public-key.js';

const AUD = 'my-project';
const NOW = new Date('2030-06-01T12:00:00Z');
const NOW_S = NOW.getTime() / 1000;

const pem = (key: KeyObject, type: 'spki' | 'pkcs8'): string => key.export({ type, format: 'pem' }).toString();

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const otherEc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsaKey = parseCredentialKey('RSA_PEM', pem(rsa.publicKey, 'spki'));
const ecKey = parseCredentialKey('ES256_PEM', pem(ec.publicKey, 'spki'));
const otherEcKey = parseCredentialKey('ES256_PEM', pem(otherEc.publicKey, 'spki'));

const b64url = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Builds a compact JWS by hand so tests can produce anything an attacker could. */
function handmade(header: unknown, payload: unknown, signer: (input: string) => Buffer, pad = false): string {
  const padded = (s: string): string => (pad ? s + '='.repeat((4 - (s.length % 4)) % 4) : s);
  const input = `${padded(b64url(header))}.${padded(b64url(payload))}`;
  return `${input}.${padded(signer(input).toString('base64url'))}`;
}

const es256Signer = (key: KeyObject) => (input: string) => sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
const rs256Signer = (key: KeyObject) => (input: string) => sign('sha256', Buffer.from(input), key);

const claims = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  iat: NOW_S - 60,
  exp: NOW_S + 3600,
  aud: AUD,
  ...overrides,
});

const esToken = (payload: Record<string, unknown>, key: KeyObject = ec.privateKey): string =>
  handmade({ alg: 'ES256', typ: 'JWT' }, payload, es256Signer(key));

function assertRefused(result: JwtVerification, reason: string | RegExp): void {
  assert.equal(result.ok, false, 'token must be refused');
  if (!result.ok) {
    if (typeof reason === 'string') assert.equal(result.reason, reason);
    else assert.match(result.reason, reason);
  }
}

function assertAccepted(result: JwtVerification, key: CredentialKey): void {
  assert.equal(result.ok, true, result.ok ? '' : `refused: ${result.reason}`);
  if (result.ok) assert.equal(result.key, key);
}

describe('verifyDeviceJwt', () => {
  it('accepts ES256 and RS256 tokens signed by a registered key, with their times', async () => {
    const es = await verifyDeviceJwt(esToken(claims()), [ecKey], AUD, NOW);
    assertAccepted(es, ecKey);
    if (es.ok) {
      assert.equal(es.issuedAt.getTime(), (NOW_S - 60) * 1000);
      assert.equal(es.expiresAt.getTime(), (NOW_S + 3600) * 1000);
    }
    const rs = handmade({ alg: 'RS256', typ: 'JWT' }, claims(), rs256Signer(rsa.privateKey));
    assertAccepted(await verifyDeviceJwt(rs, [rsaKey], AUD, NOW), rsaKey);
  });

  it('tries every candidate key and reports the one that verified', async () => {
    const keys = [rsaKey, otherEcKey, ecKey];
    assertAccepted(await verifyDeviceJwt(esToken(claims()), keys, AUD, NOW), ecKey);
    assertAccepted(await verifyDeviceJwt(esToken(claims(), otherEc.privateKey), keys, AUD, NOW), otherEcKey);
  });

  it('accepts tokens made by signDeviceJwt for both key types', async () => {
    const es = await signDeviceJwt(pem(ec.privateKey, 'pkcs8'), { audience: AUD, now: NOW });
    assertAccepted(await verifyDeviceJwt(es, [ecKey], AUD, NOW), ecKey);
    const rs = await signDeviceJwt(pem(rsa.privateKey, 'pkcs8'), { audience: AUD, now: NOW, lifetimeSeconds: 600 });
    assertAccepted(await verifyDeviceJwt(rs, [rsaKey], AUD, NOW), rsaKey);
  });

  it('accepts padded base64url segments and spaces in the JSON, as Cloud IoT Core did', async () => {
    const header = '{ "alg": "ES256", "typ": "JWT" }';
    const payload = `{ "iat": ${NOW_S - 1}, "exp": ${NOW_S + 60},  "aud": "${AUD}" }`;
    const token = handmade(header, payload, es256Signer(ec.privateKey), true);
    assert.match(token, /=/);
    assertAccepted(await verifyDeviceJwt(token, [ecKey], AUD, NOW), ecKey);
  });

  it('accepts an audience array that contains the project', async () => {
    assertAccepted(await verifyDeviceJwt(esToken(claims({ aud: ['other', AUD] })), [ecKey], AUD, NOW), ecKey);
  });

  it('ignores nbf, even in the future', async () => {
    assertAccepted(await verifyDeviceJwt(esToken(claims({ nbf: NOW_S + 7200 })), [ecKey], AUD, NOW), ecKey);
  });

  describe('algorithm rules', () => {
    it('refuses alg none, signed or not', async () => {
      const unsigned = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims())}.`;
      assertRefused(await verifyDeviceJwt(unsigned, [ecKey, rsaKey], AUD, NOW), 'malformed token');
      const withSig = handmade({ alg: 'none' }, claims(), () => Buffer.from('x'));
      assertRefused(await verifyDeviceJwt(withSig, [ecKey, rsaKey], AUD, NOW), 'algorithm not allowed');
      const lowercase = handmade({ alg: 'es256' }, claims(), es256Signer(ec.privateKey));
      assertRefused(await verifyDeviceJwt(lowercase, [ecKey], AUD, NOW), 'algorithm not allowed');
    });

    it('refuses critical header extensions and unencoded payloads, even when correctly signed', async () => {
      const crit = handmade({ alg: 'ES256', crit: ['exp'] }, claims(), es256Signer(ec.privateKey));
      assertRefused(await verifyDeviceJwt(crit, [ecKey], AUD, NOW), 'unsupported header parameters');
      const b64 = handmade({ alg: 'ES256', b64: true }, claims(), es256Signer(ec.privateKey));
      assertRefused(await verifyDeviceJwt(b64, [ecKey], AUD, NOW), 'unsupported header parameters');
    });

    it('refuses an ES256 signature of the wrong length or in DER form', async () => {
      const der = handmade({ alg: 'ES256' }, claims(), (input) => sign('sha256', Buffer.from(input), ec.privateKey));
      assertRefused(await verifyDeviceJwt(der, [ecKey], AUD, NOW), 'signature does not verify with any credential');
    });

    it('refuses HS256 signed with the public key PEM as the HMAC secret', async () => {
      for (const [key, pub] of [
        [rsaKey, pem(rsa.publicKey, 'spki')],
        [ecKey, pem(ec.publicKey, 'spki')],
      ] as const) {
        const forged = handmade({ alg: 'HS256', typ: 'JWT' }, claims(), (input) => createHmac('sha256', pub).update(input).digest());
        assertRefused(await verifyDeviceJwt(forged, [key], AUD, NOW), 'algorithm not allowed');
      }
      // The same with jose's own HMAC signer, in case its encoding differs from ours.
      const viaJose = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).sign(Buffer.from(pem(rsa.publicKey, 'spki')));
      assertRefused(await verifyDeviceJwt(viaJose, [rsaKey], AUD, NOW), 'algorithm not allowed');
    });

    it('refuses other asymmetric algorithms (PS256, ES384, EdDSA)', async () => {
      for (const alg of ['PS256', 'ES384', 'EdDSA', 'RS512']) {
        const token = handmade({ alg }, claims(), rs256Signer(rsa.privateKey));
        assertRefused(await verifyDeviceJwt(token, [rsaKey, ecKey], AUD, NOW), 'algorithm not allowed');
      }
    });

    it('refuses an RS256 token against an ES256 key and vice versa (algorithm confusion)', async () => {
      const rs = handmade({ alg: 'RS256' }, claims(), rs256Signer(rsa.privateKey));
      assertRefused(await verifyDeviceJwt(rs, [ecKey], AUD, NOW), /no credential for algorithm RS256/);
      assertRefused(await verifyDeviceJwt(esToken(claims()), [rsaKey], AUD, NOW), /no credential for algorithm ES256/);
      // Header says ES256 but an RSA key signed it: the EC key cannot verify it.
      const lying = handmade({ alg: 'ES256' }, claims(), rs256Signer(rsa.privateKey));
      assertRefused(await verifyDeviceJwt(lying, [ecKey, rsaKey], AUD, NOW), 'signature does not verify with any credential');
      // A DER-encoded ECDSA signature is not a JOSE signature.
      const der = handmade({ alg: 'ES256' }, claims(), (input) => sign('sha256', Buffer.from(input), ec.privateKey));
      assertRefused(await verifyDeviceJwt(der, [ecKey], AUD, NOW), 'signature does not verify with any credential');
    });

    it('refuses a token signed by a key the device does not have', async () => {
      assertRefused(await verifyDeviceJwt(esToken(claims(), otherEc.privateKey), [ecKey], AUD, NOW), 'signature does not verify with any credential');
      assertRefused(await verifyDeviceJwt(esToken(claims()), [], AUD, NOW), 'no usable credential');
    });

    it('refuses a token whose payload was altered after signing', async () => {
      const [h, , s] = esToken(claims()).split('.');
      const tampered = `${h}.${b64url(claims({ exp: NOW_S + 80_000 }))}.${s}`;
      assertRefused(await verifyDeviceJwt(tampered, [ecKey], AUD, NOW), 'signature does not verify with any credential');
    });
  });

  describe('claim rules', () => {
    const verifyClaims = (payload: Record<string, unknown>) => verifyDeviceJwt(esToken(payload), [ecKey], AUD, NOW);

    it('requires iat, exp and aud', async () => {
      const { iat: _i, ...noIat } = claims();
      const { exp: _e, ...noExp } = claims();
      const { aud: _a, ...noAud } = claims();
      assertRefused(await verifyClaims(noIat), 'missing iat');
      assertRefused(await verifyClaims(noExp), 'missing exp');
      assertRefused(await verifyClaims(noAud), 'missing aud');
      assertRefused(await verifyClaims(claims({ iat: String(NOW_S) })), /iat is not a NumericDate/);
      assertRefused(await verifyClaims(claims({ exp: null })), /exp is not a NumericDate/);
    });

    it('refuses a wrong audience', async () => {
      assertRefused(await verifyClaims(claims({ aud: 'another-project' })), 'audience mismatch');
      assertRefused(await verifyClaims(claims({ aud: ['a', 'b'] })), 'audience mismatch');
      assertRefused(await verifyClaims(claims({ aud: [] })), 'audience mismatch');
      assertRefused(await verifyClaims(claims({ aud: { AUD } })), 'audience mismatch');
    });

    it('accepts an expired token within the skew and refuses it beyond', async () => {
      const within = claims({ iat: NOW_S - 4000, exp: NOW_S - JWT_CLOCK_SKEW_SECONDS + 1 });
      assertAccepted(await verifyClaims(within), ecKey);
      const atEdge = claims({ iat: NOW_S - 4000, exp: NOW_S - JWT_CLOCK_SKEW_SECONDS });
      assertRefused(await verifyClaims(atEdge), 'token expired');
      const beyond = claims({ iat: NOW_S - 8000, exp: NOW_S - 3600 });
      assertRefused(await verifyClaims(beyond), 'token expired');
    });

    it('accepts iat slightly in the future and refuses it beyond the skew', async () => {
      const within = claims({ iat: NOW_S + JWT_CLOCK_SKEW_SECONDS, exp: NOW_S + 3600 });
      assertAccepted(await verifyClaims(within), ecKey);
      const beyond = claims({ iat: NOW_S + JWT_CLOCK_SKEW_SECONDS + 1, exp: NOW_S + 3600 });
      assertRefused(await verifyClaims(beyond), 'iat in the future');
    });

    it('refuses a lifetime over 24 h and accepts exactly 24 h', async () => {
      const day = claims({ iat: NOW_S - 10, exp: NOW_S - 10 + JWT_MAX_LIFETIME_SECONDS });
      assertAccepted(await verifyClaims(day), ecKey);
      const longer = claims({ iat: NOW_S - 10, exp: NOW_S - 10 + JWT_MAX_LIFETIME_SECONDS + 1 });
      assertRefused(await verifyClaims(longer), 'lifetime exceeds 24 h');
      const forever = claims({ exp: 32503680000 });
      assertRefused(await verifyClaims(forever), 'lifetime exceeds 24 h');
    });

    it('refuses exp not after iat', async () => {
      assertRefused(await verifyClaims(claims({ iat: NOW_S, exp: NOW_S })), 'exp is not after iat');
      assertRefused(await verifyClaims(claims({ iat: NOW_S, exp: NOW_S - 5 })), 'exp is not after iat');
    });
  });

  describe('malformed input', () => {
    it('refuses garbage without throwing', async () => {
      const garbage = ['', 'garbage', 'a.b', 'a.b.c.d', '...', 'eyJhbGciOiJFUzI1NiJ9.!!!.abc', `${b64url('not json')}.${b64url(claims())}.AAAA`];
      for (const token of garbage) {
        assertRefused(await verifyDeviceJwt(token, [ecKey], AUD, NOW), /malformed token|algorithm not allowed/);
      }
      assertRefused(await verifyDeviceJwt(undefined as unknown as string, [ecKey], AUD, NOW), 'malformed token');
      const arrayPayload = handmade({ alg: 'ES256' }, [1, 2], es256Signer(ec.privateKey));
      assertRefused(await verifyDeviceJwt(arrayPayload, [ecKey], AUD, NOW), 'malformed token');
    });

    it('refuses an oversized token before decoding it', async () => {
      const big = esToken(claims({ pad: 'x'.repeat(9000) }));
      assertRefused(await verifyDeviceJwt(big, [ecKey], AUD, NOW), 'token too long');
    });
  });
});

describe('signDeviceJwt', () => {
  it('derives the algorithm from the key and sets typ, iat, exp and aud', async () => {
    const es = await signDeviceJwt(pem(ec.privateKey, 'pkcs8'), { audience: AUD, now: NOW, lifetimeSeconds: 1200 });
    assert.deepEqual(decodeProtectedHeader(es), { alg: 'ES256', typ: 'JWT' });
    const payload = JSON.parse(Buffer.from(es.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
    assert.deepEqual(payload, { iat: NOW_S, exp: NOW_S + 1200, aud: AUD });
    const rs = await signDeviceJwt(pem(rsa.privateKey, 'pkcs8'), { audience: AUD });
    assert.equal(decodeProtectedHeader(rs).alg, 'RS256');
  });

  it('also takes PKCS#1 and SEC1 private keys', async () => {
    const rs = await signDeviceJwt(rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(), { audience: AUD, now: NOW });
    assertAccepted(await verifyDeviceJwt(rs, [rsaKey], AUD, NOW), rsaKey);
    const es = await signDeviceJwt(ec.privateKey.export({ type: 'sec1', format: 'pem' }).toString(), { audience: AUD, now: NOW });
    assertAccepted(await verifyDeviceJwt(es, [ecKey], AUD, NOW), ecKey);
  });

  it('refuses unsupported keys and lifetimes', async () => {
    const refusedWith = async (promise: Promise<unknown>, field: string): Promise<void> => {
      await assert.rejects(promise, (e: unknown) => e instanceof KeywayError && e.status === 'INVALID_ARGUMENT' && e.fieldViolations[0]?.field === field);
    };
    const ed = pem(generateKeyPairSync('ed25519').privateKey, 'pkcs8');
    await refusedWith(signDeviceJwt(ed, { audience: AUD }), 'privateKey');
    const p384 = pem(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey, 'pkcs8');
    await refusedWith(signDeviceJwt(p384, { audience: AUD }), 'privateKey');
    await refusedWith(signDeviceJwt('not a key', { audience: AUD }), 'privateKey');
    await refusedWith(signDeviceJwt(pem(ec.privateKey, 'pkcs8'), { audience: AUD, lifetimeSeconds: JWT_MAX_LIFETIME_SECONDS + 1 }), 'lifetimeSeconds');
    await refusedWith(signDeviceJwt(pem(ec.privateKey, 'pkcs8'), { audience: AUD, lifetimeSeconds: 0 }), 'lifetimeSeconds');
    await refusedWith(signDeviceJwt(pem(ec.privateKey, 'pkcs8'), { audience: '' }), 'audience');
  });
});
