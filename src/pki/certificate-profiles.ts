/**
 * The certificates Keyway's CAs issue, one profile each (RFC 5280):
 * - root CA: self-signed, basicConstraints cA with pathLen 1 (root → intermediate → device);
 * - intermediate CA: signed by the root, pathLen 0 (it signs device certificates only);
 * - device: cA false, digitalSignature (+ keyEncipherment for RSA), extendedKeyUsage clientAuth.
 * CA certificates carry keyCertSign + cRLSign, critical. Every certificate carries a
 * SubjectKeyIdentifier; issued ones an AuthorityKeyIdentifier naming the issuer's key.
 */
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { signingAlgorithm } from './ca-algorithms.js';
import { randomSerial, subjectKeyIdOf } from './certificate-facts.js';
import type { CaKeyAlgorithm, CaKeyHandle } from './key-custody.js';

/** Hashing for key identifiers happens here, never in a token. */
const localCrypto = webcrypto as unknown as Crypto;

const OID_CN = '2.5.4.3';
const OID_OU = '2.5.4.11';
const OID_O = '2.5.4.10';

/** A Name built attribute by attribute, so no value is ever parsed as DN syntax (a device id may hold '+'). */
export function distinguishedName(parts: { cn: string; ou?: string; o?: string }): x509.Name {
  return new x509.Name([
    { [OID_CN]: [parts.cn] },
    ...(parts.ou ? [{ [OID_OU]: [parts.ou] }] : []),
    ...(parts.o ? [{ [OID_O]: [parts.o] }] : []),
  ]);
}

/** The SubjectPublicKeyInfo of a custody's key, exported with that custody's own crypto. */
export async function publicKeyOf(handle: CaKeyHandle): Promise<x509.PublicKey> {
  return new x509.PublicKey(await handle.crypto.subtle.exportKey('spki', handle.keys.publicKey));
}

export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface Issuer {
  readonly certificate: x509.X509Certificate;
  readonly handle: CaKeyHandle;
  readonly algorithm: CaKeyAlgorithm;
}

function caExtensions(pathLength: number): x509.Extension[] {
  return [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
  ];
}

export async function createRootCertificate(
  handle: CaKeyHandle,
  algorithm: CaKeyAlgorithm,
  subject: x509.Name,
  validity: Validity,
): Promise<x509.X509Certificate> {
  const publicKey = await publicKeyOf(handle);
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject,
      issuer: subject,
      ...validity,
      publicKey,
      signingKey: handle.keys.privateKey,
      signingAlgorithm: signingAlgorithm(algorithm),
      extensions: [...caExtensions(1), await x509.SubjectKeyIdentifierExtension.create(publicKey, false, localCrypto)],
    },
    handle.crypto,
  );
}

async function issue(
  issuer: Issuer,
  subject: x509.Name,
  publicKey: x509.PublicKey,
  validity: Validity,
  extensions: x509.Extension[],
): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject,
      issuer: issuer.certificate.subjectName,
      ...validity,
      publicKey,
      signingKey: issuer.handle.keys.privateKey,
      signingAlgorithm: signingAlgorithm(issuer.algorithm),
      extensions: [
        ...extensions,
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, localCrypto),
        new x509.AuthorityKeyIdentifierExtension(subjectKeyIdOf(issuer.certificate), false),
      ],
    },
    issuer.handle.crypto,
  );
}

export function createIntermediateCertificate(
  issuer: Issuer,
  subject: x509.Name,
  publicKey: x509.PublicKey,
  validity: Validity,
): Promise<x509.X509Certificate> {
  return issue(issuer, subject, publicKey, validity, caExtensions(0));
}

/**
 * What a Keyway device certificate's subject holds, in the names provisioning templates use: the
 * CN (the device id) only, whatever the CSR asked for, and the certificate's serial.
 */
export const DEVICE_CERTIFICATE_FIELDS: readonly string[] = ['CommonName', 'SerialNumber'];

export function createDeviceCertificate(
  issuer: Issuer,
  commonName: string,
  publicKey: x509.PublicKey,
  keyType: 'ec' | 'rsa',
  validity: Validity,
): Promise<x509.X509Certificate> {
  const usage = x509.KeyUsageFlags.digitalSignature | (keyType === 'rsa' ? x509.KeyUsageFlags.keyEncipherment : 0);
  return issue(issuer, distinguishedName({ cn: commonName }), publicKey, validity, [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(usage, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
  ]);
}
