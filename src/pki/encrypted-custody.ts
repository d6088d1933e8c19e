/**
 * CA keys encrypted at rest: the PKCS#8 private key sealed with AES-256-GCM under the
 * key-encryption key. The reference the store keeps is JSON text holding only ciphertext, the
 * IV, the tag and the KEK's id; the CA's label is authenticated as additional data, so a
 * reference copied to another CA's row does not open. The clear key exists only in memory,
 * briefly, to be imported as a non-extractable WebCrypto key.
 */
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, randomBytes, webcrypto } from 'node:crypto';
import { failedPrecondition } from '../domain/errors.js';
import { generateParams, importParams, isCaKeyAlgorithm } from './ca-algorithms.js';
import { KEK_HINT, type KeyEncryptionKey } from './key-encryption-key.js';
import type { CaKeyAlgorithm, CaKeyHandle, KeyCustody } from './key-custody.js';

const crypto = webcrypto as unknown as Crypto;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const FORMAT = 'keyway-encrypted-key/v1';

/** The stored reference. */
interface SealedKey {
  readonly format: typeof FORMAT;
  readonly algorithm: CaKeyAlgorithm;
  /** kekId() of the KEK it was sealed under. */
  readonly kek: string;
  readonly iv: string;
  readonly tag: string;
  readonly ciphertext: string;
}

const aad = (algorithm: CaKeyAlgorithm, label: string): Buffer => Buffer.from(`${FORMAT}\0${algorithm}\0${label}`, 'utf8');

function parseReference(reference: string, label: string): SealedKey {
  const bad = (why: string): never => {
    throw failedPrecondition(`the stored key of ${label} is not a valid encrypted key reference (${why})`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(reference);
  } catch {
    return bad('not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null) return bad('not an object');
  const r = parsed as Record<string, unknown>;
  if (r.format !== FORMAT) return bad('unknown format');
  for (const k of ['algorithm', 'kek', 'iv', 'tag', 'ciphertext'] as const) if (typeof r[k] !== 'string') bad(`${k} missing`);
  if (!isCaKeyAlgorithm(r.algorithm as string)) bad('unknown algorithm');
  return r as unknown as SealedKey;
}

export class EncryptedKeyCustody implements KeyCustody {
  readonly kind = 'encrypted' as const;

  constructor(private readonly kek: KeyEncryptionKey | undefined) {}

  async generate(algorithm: CaKeyAlgorithm, label: string): Promise<{ handle: CaKeyHandle; reference: string }> {
    const kek = this.#kek('create a CA');
    const pair = (await crypto.subtle.generateKey(generateParams(algorithm), true, ['sign', 'verify'])) as CryptoKeyPair;
    const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
    try {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', kek.key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad(algorithm, label));
      const ciphertext = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
      const sealed: SealedKey = {
        format: FORMAT,
        algorithm,
        kek: kek.id,
        iv: iv.toString('base64'),
        tag: cipher.getAuthTag().toString('base64'),
        ciphertext: ciphertext.toString('base64'),
      };
      return { handle: await toHandle(pkcs8, algorithm), reference: JSON.stringify(sealed) };
    } finally {
      pkcs8.fill(0);
    }
  }

  async open(reference: string, algorithm: CaKeyAlgorithm, label: string): Promise<CaKeyHandle> {
    const kek = this.#kek(`use the key of ${label}`);
    const sealed = parseReference(reference, label);
    if (sealed.algorithm !== algorithm) {
      throw failedPrecondition(`the stored key of ${label} is ${sealed.algorithm}, not ${algorithm}`);
    }
    if (sealed.kek !== kek.id) {
      throw failedPrecondition(
        `the key of ${label} was encrypted under key-encryption key ${sealed.kek}, but the configured one (${kek.source}) is ${kek.id}; configure the KEK it was created with`,
      );
    }
    let pkcs8: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', kek.key, Buffer.from(sealed.iv, 'base64'), { authTagLength: TAG_BYTES });
      decipher.setAAD(aad(algorithm, label));
      decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
      pkcs8 = Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]);
    } catch {
      throw failedPrecondition(
        `the stored key of ${label} does not decrypt: it was altered, or it belongs to another CA`,
      );
    }
    try {
      return await toHandle(pkcs8, algorithm);
    } finally {
      pkcs8.fill(0);
    }
  }

  async close(): Promise<void> {
    // Nothing held open: keys are imported per use.
  }

  #kek(purpose: string): KeyEncryptionKey {
    if (!this.kek) throw failedPrecondition(`a key-encryption key is needed to ${purpose}: ${KEK_HINT}`);
    return this.kek;
  }
}

/** Non-extractable private key, its public key derived from it. */
async function toHandle(pkcs8: Buffer, algorithm: CaKeyAlgorithm): Promise<CaKeyHandle> {
  const params = importParams(algorithm);
  const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8 as unknown as BufferSource, params, false, ['sign']);
  const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'der' });
  const publicKey = await crypto.subtle.importKey('spki', spki, params, true, ['verify']);
  return { keys: { privateKey, publicKey }, crypto };
}
