import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as x509 from '@peculiar/x509';
import * as graphene from 'graphene-pk11';
import type { CryptoKey as P11CryptoKey, Crypto as P11Crypto } from 'node-webcrypto-p11';
import { KeywayError } from '../domain/errors.js';
import { signingAlgorithm } from './ca-algorithms.js';
import type { CaKeyAlgorithm, CaKeyHandle, KeyCustody } from './key-custody.js';
import { openPkcs11Custody, parsePkcs11Reference } from './pkcs11-custody.js';
import { opensslIn } from '../../test/support/openssl-ca.js';
import { createSoftHsmToken, softHsmSkip, type SoftHsmToken } from '../../test/support/softhsm.js';

const DAY_MS = 86_400_000;
/** CK_STATE of a read-only session with nobody logged in (PKCS#11 v2.40 §5.5; pkcs11js lacks it). */
const CKS_RO_PUBLIC_SESSION = 0;

/** A self-signed CA certificate and a leaf it signs, both signed in the token through @peculiar/x509. */
async function issueWith(handle: CaKeyHandle, algorithm: CaKeyAlgorithm, name: string): Promise<{ ca: string; leaf: string }> {
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + DAY_MS);
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: '01',
      name: `CN=${name}`,
      notBefore,
      notAfter,
      keys: handle.keys,
      signingAlgorithm: signingAlgorithm(algorithm),
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(handle.keys.publicKey, false, handle.crypto),
      ],
    },
    handle.crypto,
  );
  // The device key is an ordinary software key: only the CA's key lives in the token.
  const deviceKeys = (await globalThis.crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const devicePublic = new x509.PublicKey(await globalThis.crypto.subtle.exportKey('spki', deviceKeys.publicKey));
  const leaf = await x509.X509CertificateGenerator.create(
    {
      serialNumber: '02',
      subject: 'CN=device-1',
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: devicePublic,
      signingKey: handle.keys.privateKey,
      signingAlgorithm: signingAlgorithm(algorithm),
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
        await x509.AuthorityKeyIdentifierExtension.create(ca, false, handle.crypto),
      ],
    },
    handle.crypto,
  );
  return { ca: ca.toString('pem'), leaf: leaf.toString('pem') };
}

/** `openssl verify -x509_strict` of `leafPem` against `caPem`, in a throw-away directory. */
async function opensslVerify(caPem: string, leafPem: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'keyway-p11-verify-'));
  try {
    return await opensslIn(dir).verify('leaf', leafPem, caPem, [], ['-x509_strict']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function p11(key: CryptoKey): graphene.Key {
  return (key as unknown as P11CryptoKey).key;
}

function session(handle: CaKeyHandle): graphene.Session {
  return (handle.crypto as unknown as P11Crypto).session;
}

async function rejectsWith(promise: Promise<unknown>, status: KeywayError['status'], message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof KeywayError, `expected a KeywayError, got ${String(error)}`);
    assert.equal(error.status, status, error.message);
    assert.match(error.message, message);
    return true;
  });
}

describe('PKCS#11 key custody (SoftHSM2)', { skip: softHsmSkip }, () => {
  let token: SoftHsmToken;
  let other: SoftHsmToken;

  before(async () => {
    // Both tokens exist before the module is first initialized: SoftHSM lists tokens at C_Initialize.
    token = await createSoftHsmToken();
    other = await createSoftHsmToken();
  });
  after(async () => {
    await token?.remove();
    await other?.remove();
  });

  const open = (pin = token.pin, tokenLabel = token.tokenLabel): Promise<KeyCustody> =>
    openPkcs11Custody({ module: token.module, tokenLabel, pin });

  for (const algorithm of ['ECDSA_P256', 'RSA_2048'] as const) {
    test(`${algorithm}: generated in the token, signs certificates that node:crypto and openssl verify`, async () => {
      const custody = await open();
      try {
        assert.equal(custody.kind, 'pkcs11');
        const { handle, reference } = await custody.generate(algorithm, `ca ${algorithm}`);
        const ref = parsePkcs11Reference(reference);
        assert.equal(ref.token, token.tokenLabel);
        assert.equal(ref.label, `ca ${algorithm}`);
        assert.match(ref.id, /^[0-9a-f]{32}$/);
        assert.doesNotMatch(reference, new RegExp(token.pin), 'the reference carries no PIN');

        const { ca, leaf } = await issueWith(handle, algorithm, `Token CA ${algorithm}`);
        const caCert = new X509Certificate(ca);
        assert.ok(caCert.verify(caCert.publicKey), 'the CA certificate verifies under its own key');
        assert.ok(new X509Certificate(leaf).verify(caCert.publicKey), 'the leaf verifies under the CA key');
        assert.equal(caCert.publicKey.asymmetricKeyType, algorithm === 'ECDSA_P256' ? 'ec' : 'rsa');
        if (algorithm === 'RSA_2048') assert.equal(caCert.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
        assert.match(await opensslVerify(ca, leaf), /: OK$/);
      } finally {
        await custody.close();
      }
    });
  }

  test('the private key is made sensitive, never extractable, and stays so', async () => {
    const custody = await open();
    try {
      const ec = await custody.generate('ECDSA_P256', 'guarded ec');
      const rsa = await custody.generate('RSA_2048', 'guarded rsa');
      for (const { handle } of [ec, rsa]) {
        const key = p11(handle.keys.privateKey);
        const attrs = key.getAttribute({
          token: null,
          private: null,
          sensitive: null,
          extractable: null,
          alwaysSensitive: null,
          neverExtractable: null,
          sign: null,
          decrypt: null,
          unwrap: null,
          derive: null,
        });
        // CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE are set by the token itself: true only
        // for a key that was generated in it and has never been readable since.
        assert.deepEqual(attrs, {
          token: true,
          private: true,
          sensitive: true,
          extractable: false,
          alwaysSensitive: true,
          neverExtractable: true,
          sign: true,
          decrypt: false,
          unwrap: false,
          derive: false,
        });
        assert.equal(handle.keys.privateKey.extractable, false);

        // WebCrypto export is refused...
        await assert.rejects(handle.crypto.subtle.exportKey('pkcs8', handle.keys.privateKey));
        await assert.rejects(handle.crypto.subtle.exportKey('jwk', handle.keys.privateKey));
        // ...and so is it by the token when WebCrypto's own check is bypassed.
        const forced = Object.assign(Object.create(Object.getPrototypeOf(handle.keys.privateKey)), handle.keys.privateKey, {
          extractable: true,
        }) as CryptoKey;
        await assert.rejects(handle.crypto.subtle.exportKey('jwk', forced), /CKR_ATTRIBUTE_SENSITIVE/);

        // Reading the secret attributes straight from the token fails.
        const secret = handle === ec.handle ? 'value' : 'privateExponent';
        assert.throws(() => key.getAttribute(secret), /CKR_ATTRIBUTE_SENSITIVE/);
        if (handle === rsa.handle) assert.throws(() => key.getAttribute('prime1'), /CKR_ATTRIBUTE_SENSITIVE/);

        // The protections cannot be lifted, nor the key copied into an extractable one.
        assert.throws(() => key.setAttribute('extractable', true), /CKR_/);
        assert.throws(() => key.setAttribute('sensitive', false), /CKR_/);
        assert.throws(() => session(handle).copy(key, { token: false, extractable: true, sensitive: false }), /CKR_/);

        // Wrapping it under a key we hold is refused as well.
        const wrapper = session(handle).generateKey(graphene.KeyGenMechanism.AES, {
          class: graphene.ObjectClass.SECRET_KEY,
          keyType: graphene.KeyType.AES,
          token: false,
          valueLen: 32,
          wrap: true,
          encrypt: true,
          extractable: true,
          sensitive: false,
        });
        assert.throws(() => session(handle).wrapKey(graphene.MechanismEnum.AES_KEY_WRAP_PAD, wrapper, key), /CKR_KEY_UNEXTRACTABLE/);
        wrapper.destroy();
        const stillThere = key.getAttribute({ sensitive: null, extractable: null });
        assert.deepEqual(stillThere, { sensitive: true, extractable: false });
      }
      assert.notEqual(parsePkcs11Reference(ec.reference).id, parsePkcs11Reference(rsa.reference).id, 'each key gets its own random CKA_ID');
    } finally {
      await custody.close();
    }
  });

  test('a key is found again by its reference after a restart and signs again', async () => {
    const first = await open();
    const created: Array<{ algorithm: CaKeyAlgorithm; reference: string; spki: string }> = [];
    for (const algorithm of ['ECDSA_P256', 'RSA_2048'] as const) {
      const { handle, reference } = await first.generate(algorithm, `restart ${algorithm}`);
      const spki = Buffer.from(await handle.crypto.subtle.exportKey('spki', handle.keys.publicKey)).toString('base64');
      created.push({ algorithm, reference, spki });
    }
    await first.close();
    // After the last close the module is finalized: the handles are gone with it.
    await assert.rejects(first.open(created[0]!.reference, 'ECDSA_P256', 'restart ECDSA_P256'), /closed/);

    const second = await open();
    try {
      for (const { algorithm, reference, spki } of created) {
        const handle = await second.open(reference, algorithm, `restart ${algorithm}`);
        const reopened = Buffer.from(await handle.crypto.subtle.exportKey('spki', handle.keys.publicKey)).toString('base64');
        assert.equal(reopened, spki, 'the same key pair');
        const { ca, leaf } = await issueWith(handle, algorithm, `Reopened ${algorithm}`);
        const original = createPublicKey({ key: Buffer.from(spki, 'base64'), format: 'der', type: 'spki' });
        assert.ok(new X509Certificate(ca).verify(original), 'signed by the key generated before the restart');
        assert.match(await opensslVerify(ca, leaf), /: OK$/);
        assert.equal(p11(handle.keys.privateKey).getAttribute('neverExtractable'), true);
      }
    } finally {
      await second.close();
    }
  });

  test('a wrong PIN, a missing token or module, and bad references get clear errors', async () => {
    await rejectsWith(open('not-the-pin'), 'FAILED_PRECONDITION', /login to token ".+" failed: wrong PIN/);
    await rejectsWith(open(token.pin, 'no-such-token'), 'FAILED_PRECONDITION', /No PKCS#11 token labelled "no-such-token".*tokens present: .*keyway-test-/);
    await rejectsWith(
      openPkcs11Custody({ module: '/nonexistent/libpkcs11.so', tokenLabel: token.tokenLabel, pin: token.pin }),
      'FAILED_PRECONDITION',
      /Cannot load the PKCS#11 module \/nonexistent\/libpkcs11\.so/,
    );
    await rejectsWith(open(''), 'INVALID_ARGUMENT', /pki\.pkcs11\.pin/);

    // Failed opens leave nothing behind: the right PIN still opens the token.
    const custody = await open();
    try {
      // While this process is logged in, C_Login would not check a PIN: the custody does.
      await rejectsWith(open('still-not-the-pin'), 'FAILED_PRECONDITION', /wrong PIN/);

      const { reference } = await custody.generate('ECDSA_P256', 'errors');
      const ref = parsePkcs11Reference(reference);
      await rejectsWith(
        custody.open(JSON.stringify({ ...ref, id: '00'.repeat(16) }), 'ECDSA_P256', 'errors'),
        'NOT_FOUND',
        /No private key "errors" \(CKA_ID 0{32}\) in PKCS#11 token/,
      );
      await rejectsWith(
        custody.open(JSON.stringify({ ...ref, token: other.tokenLabel }), 'ECDSA_P256', 'errors'),
        'FAILED_PRECONDITION',
        /kept in PKCS#11 token ".+" but Keyway is configured for token/,
      );
      await rejectsWith(custody.open(reference, 'RSA_2048', 'errors'), 'FAILED_PRECONDITION', /is not a RSA_2048 key/);
      // A reference copied onto another CA names a key that is not that CA's.
      await rejectsWith(custody.open(reference, 'ECDSA_P256', 'another CA'), 'FAILED_PRECONDITION', /names key "errors", not the key of "another CA"/);
      await rejectsWith(custody.open('not json', 'ECDSA_P256', 'errors'), 'FAILED_PRECONDITION', /not a PKCS#11 key reference: not JSON/);
      await rejectsWith(custody.open('{"kind":"encrypted"}', 'ECDSA_P256', 'errors'), 'FAILED_PRECONDITION', /kind must be "pkcs11"/);
      await rejectsWith(custody.open(JSON.stringify({ ...ref, id: 'xyz' }), 'ECDSA_P256', 'errors'), 'FAILED_PRECONDITION', /id must be hex/);
      await rejectsWith(custody.generate('DSA_1024' as CaKeyAlgorithm, 'x'), 'INVALID_ARGUMENT', /algorithm/);
      await rejectsWith(custody.generate('ECDSA_P256', ''), 'INVALID_ARGUMENT', /label/);
    } finally {
      await custody.close();
    }
  });

  test('a key in the token that could be read out is refused as a CA key', async () => {
    const custody = await open();
    try {
      const { handle } = await custody.generate('ECDSA_P256', 'host');
      const id = Buffer.from('5eaf5eaf5eaf5eaf', 'hex');
      const common = { token: true, id, label: 'leaky', keyType: graphene.KeyType.EC };
      session(handle).generateKeyPair(
        graphene.KeyGenMechanism.EC,
        { ...common, class: graphene.ObjectClass.PUBLIC_KEY, verify: true, paramsEC: Buffer.from('06082a8648ce3d030107', 'hex') },
        { ...common, class: graphene.ObjectClass.PRIVATE_KEY, private: true, sign: true, sensitive: false, extractable: true },
      );
      const reference = JSON.stringify({ kind: 'pkcs11', token: token.tokenLabel, id: id.toString('hex'), label: 'leaky' });
      await rejectsWith(custody.open(reference, 'ECDSA_P256', 'leaky'), 'FAILED_PRECONDITION', /extractable or not sensitive/);
    } finally {
      await custody.close();
    }
  });

  test('close ends the session; the last close logs out and finalizes the module', async () => {
    const keeper = await open();
    const custody = await open();
    const kept = await keeper.generate('ECDSA_P256', 'kept');
    const { handle } = await custody.generate('ECDSA_P256', 'closing');
    await custody.close();
    await custody.close();
    await rejectsWith(custody.generate('ECDSA_P256', 'late'), 'FAILED_PRECONDITION', /closed/);
    const data = Buffer.from('x');
    await assert.rejects(handle.crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, handle.keys.privateKey, data));
    // The login is the token's, shared by the process: the other custody still signs.
    await kept.handle.crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, kept.handle.keys.privateKey, data);
    await keeper.close();

    // C_Initialize succeeds again only if the module was finalized, and a fresh session is public.
    const module = graphene.Module.load(token.module, 'probe');
    module.initialize();
    try {
      const slots = module.getSlots(true);
      const slot = Array.from({ length: slots.length }, (_, i) => slots.items(i)).find((s) => s.getToken().label === token.tokenLabel);
      assert.ok(slot, 'the token is still there');
      const probe = slot.open(graphene.SessionFlag.SERIAL_SESSION);
      assert.equal(probe.state, CKS_RO_PUBLIC_SESSION, 'not logged in');
      assert.equal(probe.find({ class: graphene.ObjectClass.PRIVATE_KEY }).length, 0, 'private keys are invisible without login');
      probe.close();
    } finally {
      module.finalize();
      module.close();
    }
  });
});
