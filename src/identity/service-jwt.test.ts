/** Service-account JWTs: each rule is tried by a token built to break it. */
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { parseCredentialKey } from './public-key.js';
import { claimedServiceAccount, looksLikeJwt, SERVICE_JWT_MAX_LIFETIME_SECONDS, signServiceJwt, verifyServiceJwt } from './service-jwt.js';

const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ecPublicPem = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const ecPrivatePem = ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaPrivatePem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const keys = [parseCredentialKey('ES256_PEM', ecPublicPem), parseCredentialKey('RSA_PEM', rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString())];
const ME = { project: 'acme', account: 'ingest' };
const NOW = new Date('2030-01-01T00:00:00Z');
const at = (seconds: number) => new Date(NOW.getTime() + seconds * 1000);

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const unsigned = (header: object, claims: object) => `${b64(header)}.${b64(claims)}`;
const claims = (extra: object = {}) => ({ aud: 'acme', sub: 'ingest', iat: NOW.getTime() / 1000, exp: NOW.getTime() / 1000 + 600, ...extra });

async function refused(token: string, reason: RegExp, now = NOW): Promise<void> {
  const r = await verifyServiceJwt(token, keys, ME, now);
  assert.equal(r.ok, false, `refused: ${reason}`);
  if (!r.ok) assert.match(r.reason, reason);
}

describe('service-account JWTs', () => {
  test('ES256 and RS256 tokens signed for the account verify, until exp plus the 10 minutes of skew', async () => {
    for (const pem of [ecPrivatePem, rsaPrivatePem]) {
      const token = await signServiceJwt(pem, { ...ME, lifetimeSeconds: 1800, now: NOW });
      assert.ok(looksLikeJwt(token));
      assert.deepEqual(claimedServiceAccount(token), ME);
      const r = await verifyServiceJwt(token, keys, ME, at(60));
      assert.ok(r.ok);
      assert.equal(r.expiresAt.getTime(), at(1800).getTime());
      assert.equal((await verifyServiceJwt(token, keys, ME, at(1800 + 599))).ok, true, 'within the skew');
      await refused(token, /expired/, at(1800 + 600));
    }
  });

  test('refuses the wrong audience and the wrong subject', async () => {
    await refused(await signServiceJwt(ecPrivatePem, { project: 'globex', account: 'ingest', now: NOW }), /audience/);
    await refused(await signServiceJwt(ecPrivatePem, { project: 'acme', account: 'other', now: NOW }), /subject/);
    // A token with no sub at all.
    const { SignJWT } = await import('jose');
    const noSub = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuedAt(NOW.getTime() / 1000).setExpirationTime(NOW.getTime() / 1000 + 60).setAudience('acme').sign(ec.privateKey);
    await refused(noSub, /missing sub/);
  });

  test('refuses a lifetime over 1 hour, and iat/exp missing', async () => {
    const { SignJWT } = await import('jose');
    const long = await new SignJWT({ sub: 'ingest' })
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuedAt(NOW.getTime() / 1000)
      .setExpirationTime(NOW.getTime() / 1000 + SERVICE_JWT_MAX_LIFETIME_SECONDS + 1)
      .setAudience('acme')
      .sign(ec.privateKey);
    await refused(long, /lifetime exceeds 1 h/);
    const noIat = await new SignJWT({ sub: 'ingest' }).setProtectedHeader({ alg: 'ES256' }).setExpirationTime(NOW.getTime() / 1000 + 60).setAudience('acme').sign(ec.privateKey);
    await refused(noIat, /missing iat/);
    await assert.rejects(signServiceJwt(ecPrivatePem, { ...ME, lifetimeSeconds: 3601 }), /lifetimeSeconds/);
  });

  test("refuses alg none, and HS256 with the account's public key as the HMAC secret", async () => {
    await refused(`${unsigned({ alg: 'none', typ: 'JWT' }, claims())}.`, /malformed|algorithm/);
    await refused(`${unsigned({ alg: 'none', typ: 'JWT' }, claims())}.AAAA`, /algorithm not allowed/);
    const input = unsigned({ alg: 'HS256', typ: 'JWT' }, claims());
    const mac = createHmac('sha256', ecPublicPem).update(input).digest('base64url');
    await refused(`${input}.${mac}`, /algorithm not allowed/);
  });

  test('refuses a token signed by a key the account does not hold, and an ES256 header over an RSA signature', async () => {
    const stranger = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await refused(await signServiceJwt(stranger, { ...ME, now: NOW }), /signature/);
    const rs = await signServiceJwt(rsaPrivatePem, { ...ME, now: NOW });
    const [, payload, sig] = rs.split('.');
    await refused(`${b64({ alg: 'ES256', typ: 'JWT' })}.${payload ?? ''}.${sig ?? ''}`, /signature/);
  });

  test('tells API keys, admin tokens and JWTs apart by shape', () => {
    assert.equal(looksLikeJwt('kwk_0123456789abcdef_' + 'a'.repeat(43)), false);
    assert.equal(looksLikeJwt('kwt_' + 'a'.repeat(43)), false);
    assert.equal(looksLikeJwt('a.b.c'), true);
    assert.equal(claimedServiceAccount('a.b.c'), undefined);
  });
});
