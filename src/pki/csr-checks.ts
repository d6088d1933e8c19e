/**
 * What a certificate signing request must be before a Keyway CA signs it: a PKCS#10 request
 * whose signature verifies (proof the requester holds the key), for a P-256 or RSA ≥ 2048 key,
 * not asking to be a CA. Nothing of the request's text is echoed in an error.
 */
import { createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { fieldError } from '../domain/errors.js';
import { sha256Hex } from './certificate-facts.js';

const localCrypto = webcrypto as unknown as Crypto;

export const MAX_CSR_CHARS = 32 * 1024;
export const RSA_MIN_BITS = 2048;
/** Bounds the CPU an attacker-chosen key costs. */
export const RSA_MAX_BITS = 8192;

export interface CheckedCsr {
  readonly publicKey: x509.PublicKey;
  readonly keyType: 'ec' | 'rsa';
  readonly spkiSha256: string;
  /** The request's subject CN, when it has one. */
  readonly commonName?: string;
}

function keyTypeOf(key: KeyObject, field: string): 'ec' | 'rsa' {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    if (details.namedCurve !== 'prime256v1') {
      throw fieldError(field, `the request's EC key is on ${details.namedCurve ?? 'an unnamed curve'}; only P-256 is accepted`);
    }
    return 'ec';
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < RSA_MIN_BITS) throw fieldError(field, `the request's RSA key of ${bits} bits is too weak; at least ${RSA_MIN_BITS} bits are required`);
    if (bits > RSA_MAX_BITS) throw fieldError(field, `the request's RSA key of ${bits} bits exceeds the ${RSA_MAX_BITS}-bit maximum`);
    return 'rsa';
  }
  throw fieldError(field, `the request's ${key.asymmetricKeyType ?? 'unknown'} key is not accepted; use a P-256 or RSA (≥ ${RSA_MIN_BITS} bits) key`);
}

export async function checkCsr(pem: string, field = 'csr'): Promise<CheckedCsr> {
  if (typeof pem !== 'string' || pem.length > MAX_CSR_CHARS) throw fieldError(field, `must be a PEM certificate request of at most ${MAX_CSR_CHARS} characters`);
  if (!/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(pem)) throw fieldError(field, 'must be a "BEGIN CERTIFICATE REQUEST" PEM block');
  let csr: x509.Pkcs10CertificateRequest;
  let key: KeyObject;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
    key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch {
    throw fieldError(field, 'is not a readable PKCS#10 certificate request');
  }
  const keyType = keyTypeOf(key, field);
  let valid = false;
  try {
    valid = await csr.verify(localCrypto);
  } catch {
    valid = false;
  }
  if (!valid) throw fieldError(field, 'the request\'s signature does not verify with its own key');

  const constraints = csr.extensions.find((e): e is x509.BasicConstraintsExtension => e instanceof x509.BasicConstraintsExtension);
  if (constraints?.ca) throw fieldError(field, 'the request asks for a CA certificate; only device certificates are issued');
  const usages = csr.extensions.find((e): e is x509.KeyUsagesExtension => e instanceof x509.KeyUsagesExtension);
  if (usages && (usages.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) !== 0) {
    throw fieldError(field, 'the request asks for certificate or CRL signing; only device certificates are issued');
  }
  const commonName = csr.subjectName.getField('CN')[0];
  return {
    publicKey: csr.publicKey,
    keyType,
    spkiSha256: sha256Hex(csr.publicKey.rawData),
    ...(commonName ? { commonName } : {}),
  };
}
