/**
 * Custody of CA private keys: where a key lives and how it is used to sign. A key is either
 * encrypted at rest under a key-encryption key (AES-256-GCM) and opened in memory only to sign,
 * or generated inside a PKCS#11 token and never leaves it. Either way the caller gets WebCrypto
 * keys of a WebCrypto implementation, which is what @peculiar/x509 signs with.
 */

export type CaKeyAlgorithm = 'ECDSA_P256' | 'RSA_2048' | 'RSA_3072' | 'RSA_4096';

/** A CA key ready to sign: `keys.privateKey` may be non-extractable (a PKCS#11 token's). */
export interface CaKeyHandle {
  readonly keys: CryptoKeyPair;
  /** The WebCrypto implementation the keys belong to; pass it to the x509 generators. */
  readonly crypto: Crypto;
}

export interface KeyCustody {
  readonly kind: 'encrypted' | 'pkcs11';
  /**
   * Makes a new key pair kept by this custody. `reference` is what the store keeps to open it
   * again: opaque text, never the private key in clear.
   */
  generate(algorithm: CaKeyAlgorithm, label: string): Promise<{ readonly handle: CaKeyHandle; readonly reference: string }>;
  /**
   * Opens a key from its stored reference; throws a clear error when it cannot (wrong KEK, token
   * missing). `label` is the one given to `generate`: a custody may bind the reference to it (the
   * encrypted custody authenticates it as AAD) so that a reference moved to another CA fails.
   */
  open(reference: string, algorithm: CaKeyAlgorithm, label: string): Promise<CaKeyHandle>;
  close(): Promise<void>;
}
