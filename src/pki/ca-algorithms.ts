/**
 * The CA key algorithms Keyway offers, in WebCrypto terms: how to generate, import and sign with
 * each. ECDSA P-256 is the default; RSA is there for devices and verifiers that lack EC.
 */
import { fieldError } from '../domain/errors.js';
import type { CaKeyAlgorithm } from './key-custody.js';

export const CA_KEY_ALGORITHMS: readonly CaKeyAlgorithm[] = ['ECDSA_P256', 'RSA_2048', 'RSA_3072', 'RSA_4096'];
export const DEFAULT_CA_KEY_ALGORITHM: CaKeyAlgorithm = 'ECDSA_P256';

/** The CLI's spellings (`ec-p256`, `rsa-3072`) beside the API's (`ECDSA_P256`, `RSA_3072`). */
const ALIASES: Readonly<Record<string, CaKeyAlgorithm>> = {
  'ec-p256': 'ECDSA_P256',
  'ecdsa-p256': 'ECDSA_P256',
  'p-256': 'ECDSA_P256',
  'rsa-2048': 'RSA_2048',
  'rsa-3072': 'RSA_3072',
  'rsa-4096': 'RSA_4096',
};

export function parseCaKeyAlgorithm(field: string, text: string | undefined): CaKeyAlgorithm {
  if (text === undefined || text === '') return DEFAULT_CA_KEY_ALGORITHM;
  if ((CA_KEY_ALGORITHMS as readonly string[]).includes(text)) return text as CaKeyAlgorithm;
  const alias = ALIASES[text.toLowerCase()];
  if (alias) return alias;
  throw fieldError(field, `must be one of ${CA_KEY_ALGORITHMS.join(', ')} (or ${Object.keys(ALIASES).filter((a) => a.startsWith('ec-') || a.startsWith('rsa-')).join(', ')})`);
}

export function isCaKeyAlgorithm(value: string): value is CaKeyAlgorithm {
  return (CA_KEY_ALGORITHMS as readonly string[]).includes(value);
}

const rsaBits = (algorithm: CaKeyAlgorithm): number | undefined =>
  algorithm === 'RSA_2048' ? 2048 : algorithm === 'RSA_3072' ? 3072 : algorithm === 'RSA_4096' ? 4096 : undefined;

const RSA_PUBLIC_EXPONENT = new Uint8Array([1, 0, 1]);

export function generateParams(algorithm: CaKeyAlgorithm): EcKeyGenParams | RsaHashedKeyGenParams {
  const bits = rsaBits(algorithm);
  return bits === undefined
    ? { name: 'ECDSA', namedCurve: 'P-256' }
    : { name: 'RSASSA-PKCS1-v1_5', modulusLength: bits, publicExponent: RSA_PUBLIC_EXPONENT, hash: 'SHA-256' };
}

export function importParams(algorithm: CaKeyAlgorithm): EcKeyImportParams | RsaHashedImportParams {
  return rsaBits(algorithm) === undefined ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
}

/** What @peculiar/x509 signs certificates and CRLs with: SHA-256 either way. */
export function signingAlgorithm(algorithm: CaKeyAlgorithm): Algorithm | EcdsaParams {
  return rsaBits(algorithm) === undefined ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' };
}

/** The API's name as the CLI prints it. */
export const cliNameOf = (algorithm: CaKeyAlgorithm): string =>
  algorithm === 'ECDSA_P256' ? 'ec-p256' : algorithm.toLowerCase().replace('_', '-');
