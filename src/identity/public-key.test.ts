import { createHash, generateKeyPairSync, webcrypto, type KeyObject } from 'node:crypto';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { KeywayError } from '../domain/errors.js';
import type { PublicKeyFormat } from '../domain/resources.js';
import { fingerprintOf, parseCredentialKey } from './public-key.js';

const spki = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString();

const rsa2048 = generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });

/** A self-signed certificate for a key pair, made the way an operator's openssl would. */
async function selfSigned(pair: { publicKey: KeyObject; privateKey: KeyObject }, algorithm: 'RS256' | 'ES256'): Promise<string> {
  const signing =
    algorithm === 'ES256'
      ? { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
      : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pair.privateKey.export({ type: 'pkcs8', format: 'der' }), signing, false, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', pair.publicKey.export({ type: 'spki', format: 'der' }), signing, true, ['verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: '01',
      name: 'CN=unused, O=Keyway Test',
      notBefore: new Date('2024-01-01T00:00:00Z'),
      notAfter: new Date('2034-01-01T00:00:00Z'),
      keys: { privateKey, publicKey },
      signingAlgorithm: signing,
    },
    webcrypto as unknown as Crypto,
  );
  return cert.toString('pem');
}

function refusal(fn: () => unknown, field = 'publicKey.key'): KeywayError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof KeywayError, `expected KeywayError, got ${String(e)}`);
    assert.equal(e.status, 'INVALID_ARGUMENT');
    assert.equal(e.fieldViolations.length, 1);
    assert.equal(e.fieldViolations[0]?.field, field);
    return e;
  }
  assert.fail('expected the key to be refused');
}

describe('parseCredentialKey', () => {
  it('accepts an RSA-2048 SPKI key as RSA_PEM with RS256', () => {
    const key = parseCredentialKey('RSA_PEM', spki(rsa2048.publicKey));
    assert.equal(key.algorithm, 'RS256');
    assert.equal(key.format, 'RSA_PEM');
    assert.equal(key.key.type, 'public');
    assert.equal(key.certificate, undefined);
    const expected = createHash('sha256').update(rsa2048.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
    assert.equal(key.fingerprint, expected);
    assert.equal(fingerprintOf(key.key), expected);
  });

  it('accepts a PKCS#1 "RSA PUBLIC KEY" block as RSA_PEM', () => {
    const pkcs1 = rsa2048.publicKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    assert.match(pkcs1, /BEGIN RSA PUBLIC KEY/);
    const key = parseCredentialKey('RSA_PEM', pkcs1);
    assert.equal(key.fingerprint, fingerprintOf(rsa2048.publicKey));
  });

  it('accepts a P-256 SPKI key as ES256_PEM, with CRLF line ends and text around it', () => {
    const pem = 'device 42\r\n' + spki(p256.publicKey).replace(/\n/g, '\r\n') + '\r\n';
    const key = parseCredentialKey('ES256_PEM', pem);
    assert.equal(key.algorithm, 'ES256');
    assert.equal(key.fingerprint, fingerprintOf(p256.publicKey));
  });

  it('reads a P-256 SPKI key into the same key and fingerprint, and refuses a point off the curve', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const der = publicKey.export({ type: 'spki', format: 'der' });
    const pemOf = (bytes: Buffer): string =>
      `-----BEGIN PUBLIC KEY-----\n${bytes.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END PUBLIC KEY-----\n`;
    const plain = parseCredentialKey('ES256_PEM', pemOf(der));
    assert.equal(plain.fingerprint, fingerprintOf(publicKey));
    assert.ok(plain.key.equals(publicKey), 'the same key');
    const offCurve = Buffer.from(der);
    offCurve[offCurve.length - 1] = (offCurve[offCurve.length - 1] as number) ^ 0x01;
    assert.throws(() => parseCredentialKey('ES256_PEM', pemOf(offCurve)), KeywayError);
  });

  it('accepts certificates for the X509 formats and reports their details', async () => {
    const rsaCert = parseCredentialKey('RSA_X509_PEM', await selfSigned(rsa2048, 'RS256'));
    assert.equal(rsaCert.algorithm, 'RS256');
    assert.equal(rsaCert.fingerprint, fingerprintOf(rsa2048.publicKey));
    assert.deepEqual(rsaCert.certificate?.notBefore, new Date('2024-01-01T00:00:00Z'));
    assert.deepEqual(rsaCert.certificate?.notAfter, new Date('2034-01-01T00:00:00Z'));
    assert.match(rsaCert.certificate?.subject ?? '', /CN=unused/);
    assert.match(rsaCert.certificate?.subject ?? '', /O=Keyway Test/);
    assert.equal(rsaCert.certificate?.issuer, rsaCert.certificate?.subject);

    const ecCert = parseCredentialKey('ES256_X509_PEM', await selfSigned(p256, 'ES256'));
    assert.equal(ecCert.algorithm, 'ES256');
    assert.equal(ecCert.fingerprint, fingerprintOf(p256.publicKey));
  });

  it('uses the given field name in violations', () => {
    refusal(() => parseCredentialKey('RSA_PEM', 'nope', 'device.credentials[2].publicKey.key'), 'device.credentials[2].publicKey.key');
  });

  describe('refuses', () => {
    it('text that is not PEM, empty text, and a PEM block with garbage inside', () => {
      assert.match(refusal(() => parseCredentialKey('RSA_PEM', 'hello')).message, /not a PEM block/);
      assert.match(refusal(() => parseCredentialKey('RSA_PEM', '   ')).message, /empty/);
      const garbage = '-----BEGIN PUBLIC KEY-----\nAAAAAAAAAAAAAAAAAAAA\n-----END PUBLIC KEY-----\n';
      assert.match(refusal(() => parseCredentialKey('RSA_PEM', garbage)).message, /not a parseable public key/);
      const badCert = '-----BEGIN CERTIFICATE-----\nAAAAAAAAAAAAAAAAAAAA\n-----END CERTIFICATE-----\n';
      assert.match(refusal(() => parseCredentialKey('RSA_X509_PEM', badCert)).message, /not a parseable X.509 certificate/);
      const mismatchedEnd = spki(p256.publicKey).replace('END PUBLIC KEY', 'END CERTIFICATE');
      assert.match(refusal(() => parseCredentialKey('ES256_PEM', mismatchedEnd)).message, /not a PEM block/);
    });

    it('oversized input before parsing it', () => {
      const huge = spki(rsa2048.publicKey) + ' '.repeat(40_000);
      assert.match(refusal(() => parseCredentialKey('RSA_PEM', huge)).message, /longer than/);
    });

    it('two PEM blocks', () => {
      const two = spki(p256.publicKey) + spki(p256.publicKey);
      assert.match(refusal(() => parseCredentialKey('ES256_PEM', two)).message, /2 PEM blocks/);
    });

    it('every private key encoding, without echoing any of it back', () => {
      const privates: Array<[PublicKeyFormat, string]> = [
        ['RSA_PEM', rsa2048.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
        ['RSA_PEM', rsa2048.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()],
        ['ES256_PEM', p256.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
        ['ES256_PEM', p256.privateKey.export({ type: 'sec1', format: 'pem' }).toString()],
        [
          'ES256_PEM',
          p256.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }).toString(),
        ],
        // A public key followed by its private key: still refused.
        ['ES256_PEM', spki(p256.publicKey) + p256.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
      ];
      for (const [format, pem] of privates) {
        const error = refusal(() => parseCredentialKey(format, pem));
        assert.match(error.message, /private key/);
        const body = pem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));
        for (const line of body) {
          assert.ok(!error.message.includes(line.slice(0, 20)), 'error must not echo key material');
          assert.ok(!error.fieldViolations[0]?.description.includes(line.slice(0, 20)));
        }
      }
    });

    it('a key type that does not match the format', async () => {
      assert.match(refusal(() => parseCredentialKey('ES256_PEM', spki(rsa2048.publicKey))).message, /RSA key.*does not match format ES256_PEM/);
      assert.match(refusal(() => parseCredentialKey('RSA_PEM', spki(p256.publicKey))).message, /P-256 key.*does not match format RSA_PEM/);
      const ecCert = await selfSigned(p256, 'ES256');
      assert.match(refusal(() => parseCredentialKey('RSA_X509_PEM', ecCert)).message, /does not match format RSA_X509_PEM/);
    });

    it('a certificate given for a bare-key format and a bare key for a certificate format', async () => {
      const rsaCert = await selfSigned(rsa2048, 'RS256');
      assert.match(refusal(() => parseCredentialKey('RSA_PEM', rsaCert)).message, /is a certificate.*RSA_X509_PEM/);
      assert.match(refusal(() => parseCredentialKey('ES256_X509_PEM', spki(p256.publicKey))).message, /bare public key.*ES256_PEM/);
    });

    it('RSA keys under 2048 bits', () => {
      const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
      assert.match(refusal(() => parseCredentialKey('RSA_PEM', spki(weak.publicKey))).message, /1024 bits is too weak/);
      const almost = generateKeyPairSync('rsa', { modulusLength: 2040 });
      assert.match(refusal(() => parseCredentialKey('RSA_PEM', spki(almost.publicKey))).message, /too weak/);
    });

    it('EC curves other than P-256', () => {
      for (const namedCurve of ['P-384', 'P-521', 'secp256k1']) {
        const other = generateKeyPairSync('ec', { namedCurve });
        assert.match(refusal(() => parseCredentialKey('ES256_PEM', spki(other.publicKey))).message, /only P-256/);
      }
    });

    it('other key types: Ed25519, Ed448, X25519, DSA, RSA-PSS', () => {
      const others = [
        generateKeyPairSync('ed25519').publicKey,
        generateKeyPairSync('ed448').publicKey,
        generateKeyPairSync('x25519').publicKey,
        generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 }).publicKey,
        generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).publicKey,
      ];
      for (const key of others) {
        for (const format of ['RSA_PEM', 'ES256_PEM'] as const) {
          assert.match(refusal(() => parseCredentialKey(format, spki(key))).message, /not supported/);
        }
      }
    });

    it('a PEM block of another kind', () => {
      const csr = '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n';
      assert.match(refusal(() => parseCredentialKey('RSA_X509_PEM', csr)).message, /"CERTIFICATE REQUEST" PEM block/);
    });
  });
});
