/**
 * A device key pair and a PKCS#10 request for it, made where the device's key is to live (the
 * CLI's `certs issue --device`, for development): only the request travels to the CA.
 */
import { createPrivateKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { distinguishedName } from './certificate-profiles.js';

const crypto = webcrypto as unknown as Crypto;

export type DeviceKeyType = 'ec-p256' | 'rsa-2048';

export interface DeviceKeyAndCsr {
  /** PKCS#8 PEM: the caller writes it with mode 0600. */
  readonly privateKeyPem: string;
  readonly csrPem: string;
}

export async function deviceKeyAndCsr(deviceId: string, type: DeviceKeyType = 'ec-p256'): Promise<DeviceKeyAndCsr> {
  const algorithm =
    type === 'ec-p256'
      ? ({ name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const)
      : ({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } as const);
  const keys = (await crypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    { name: distinguishedName({ cn: deviceId }), keys, signingAlgorithm: algorithm },
    crypto,
  );
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  try {
    const privateKeyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
    return { privateKeyPem, csrPem: `${csr.toString('pem')}\n` };
  } finally {
    pkcs8.fill(0);
  }
}
