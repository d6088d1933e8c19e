/**
 * Operator-provided server certificate chains, checked before they are served: a chain whose
 * leaf does not match its key, whose certificates are out of order, or that has expired would
 * only show up as failed handshakes on devices, so it is refused with a clear message instead.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { failedPrecondition } from '../domain/errors.js';

export type ServerKeyType = 'ec' | 'rsa';

/** One checked chain: PEM as served, and what the operator may want to know of it. */
export interface ServerChain {
  readonly certPem: string;
  readonly keyPem: string;
  readonly keyType: ServerKeyType;
  readonly subject: string;
  readonly notAfter: Date;
  readonly fingerprint256: string;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Checks `certPem` (leaf first, then each issuer) against `keyPem` at `now`; `source` names the
 * files in error messages. Throws FAILED_PRECONDITION for any problem.
 */
export function checkServerChain(certPem: string, keyPem: string, now: Date, source: string): ServerChain {
  const blocks = certPem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw failedPrecondition(`${source}: no PEM certificate found`);
  const chain = blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (e) {
      throw failedPrecondition(`${source}: certificate ${i + 1} of the chain does not parse: ${(e as Error).message}`);
    }
  });
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    // The key's text never goes into a message.
    throw failedPrecondition(`${source}: the key file does not hold a readable (unencrypted PEM) private key`);
  }
  const keyType = key.asymmetricKeyType;
  if (keyType !== 'ec' && keyType !== 'rsa') throw failedPrecondition(`${source}: the key is ${String(keyType)}; ECDSA or RSA keys only`);
  if (keyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw failedPrecondition(`${source}: the RSA key has fewer than 2048 bits`);
  }
  const leaf = chain[0] as X509Certificate;
  if (!leaf.checkPrivateKey(key)) throw failedPrecondition(`${source}: the first certificate (${leaf.subject}) does not belong to the key`);
  if (leaf.ca) throw failedPrecondition(`${source}: the first certificate (${leaf.subject}) is a CA certificate, not a server certificate`);
  chain.forEach((cert, i) => {
    const notBefore = new Date(cert.validFrom);
    const notAfter = new Date(cert.validTo);
    if (notAfter.getTime() <= now.getTime()) throw failedPrecondition(`${source}: certificate ${i + 1} (${cert.subject}) expired on ${notAfter.toISOString()}`);
    if (notBefore.getTime() > now.getTime()) {
      throw failedPrecondition(`${source}: certificate ${i + 1} (${cert.subject}) is not valid before ${notBefore.toISOString()}`);
    }
    const issuer = chain[i + 1];
    if (issuer && !(cert.checkIssued(issuer) && cert.verify(issuer.publicKey))) {
      throw failedPrecondition(
        `${source}: certificate ${i + 2} (${issuer.subject}) did not issue certificate ${i + 1} (${cert.subject}); list the leaf first, then each issuer`,
      );
    }
  });
  return {
    certPem: blocks.join('\n') + '\n',
    keyPem,
    keyType,
    subject: leaf.subject,
    notAfter: new Date(leaf.validTo),
    fingerprint256: leaf.fingerprint256,
  };
}

/** At most one chain per key type: OpenSSL picks among them by key type only. */
export function checkServerChainSet(chains: readonly ServerChain[]): void {
  if (chains.length === 0) throw failedPrecondition('no server certificate configured');
  for (const type of ['ec', 'rsa'] as const) {
    if (chains.filter((c) => c.keyType === type).length > 1) {
      throw failedPrecondition(`more than one ${type === 'ec' ? 'ECDSA' : 'RSA'} server certificate configured; at most one of each`);
    }
  }
}
