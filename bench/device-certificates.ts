/**
 * The PKI of the `storm-x509` scenario, made once per run before anything is measured: a root,
 * one batch intermediate under it, and a P-256 key and client certificate for every device,
 * signed by the intermediate with Keyway's own certificate profiles (src/pki), so the devices
 * carry what `keyway certs issue` would give them. Kept in memory only, like the JWT devices' keys.
 */
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import {
  createDeviceCertificate, createIntermediateCertificate, createRootCertificate, distinguishedName, type Issuer,
} from '../src/pki/certificate-profiles.js';
import type { CaKeyHandle } from '../src/pki/key-custody.js';

const crypto = webcrypto as unknown as Crypto;
const ECDSA = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const DAY_MS = 86_400_000;

export interface DeviceCertificate {
  /** The device's private key, PKCS#8 PEM. */
  readonly keyPem: string;
  /** Leaf and then the batch intermediate, PEM: what the device presents in the handshake. */
  readonly chainPem: string;
}

export interface BenchPki {
  readonly rootPem: string;
  readonly intermediatePem: string;
  /** Index i belongs to device `dev{i}`. */
  readonly devices: readonly DeviceCertificate[];
}

async function caHandle(): Promise<CaKeyHandle> {
  const keys = (await crypto.subtle.generateKey(ECDSA, false, ['sign', 'verify'])) as CryptoKeyPair;
  return { keys, crypto };
}

/** A device key made by node:crypto (as the JWT devices' keys are) and imported for x509. */
function deviceKey(): { keyPem: string; publicKey: x509.PublicKey } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: new x509.PublicKey(publicKey.export({ type: 'spki', format: 'der' })),
  };
}

export async function makeBenchPki(count: number, now = new Date()): Promise<BenchPki> {
  // Valid from an hour ago, so clock skew between the generator and the brokers cannot matter.
  const validity = { notBefore: new Date(now.getTime() - 3_600_000), notAfter: new Date(now.getTime() + 2 * DAY_MS) };
  const rootHandle = await caHandle();
  const rootCert = await createRootCertificate(rootHandle, 'ECDSA_P256', distinguishedName({ cn: 'Keyway Bench Root', o: 'Keyway bench' }), validity);
  const root: Issuer = { certificate: rootCert, handle: rootHandle, algorithm: 'ECDSA_P256' };
  const batchHandle = await caHandle();
  const batchPublic = new x509.PublicKey(await crypto.subtle.exportKey('spki', batchHandle.keys.publicKey));
  const batchCert = await createIntermediateCertificate(root, distinguishedName({ cn: 'Keyway Bench Batch 1', o: 'Keyway bench' }), batchPublic, validity);
  const batch: Issuer = { certificate: batchCert, handle: batchHandle, algorithm: 'ECDSA_P256' };
  const intermediatePem = batchCert.toString('pem');

  const devices: DeviceCertificate[] = new Array(count);
  let next = 0;
  // WebCrypto signs on libuv's thread pool: a few in flight keep both cores busy.
  await Promise.all(Array.from({ length: Math.min(8, count) }, async () => {
    while (next < count) {
      const i = next++;
      const { keyPem, publicKey } = deviceKey();
      const leaf = await createDeviceCertificate(batch, `dev${i}`, publicKey, 'ec', validity);
      devices[i] = { keyPem, chainPem: `${leaf.toString('pem')}\n${intermediatePem}\n` };
    }
  }));
  return { rootPem: `${rootCert.toString('pem')}\n`, intermediatePem, devices };
}
