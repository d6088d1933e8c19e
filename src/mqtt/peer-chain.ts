/**
 * The client certificate chain a TLS peer presented, as DER, leaf first. The listener asks for a
 * client certificate but does not verify it (the registry does, against the CAs of the device's
 * registry); the handshake itself proved that the peer holds the leaf's private key.
 */
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

/** More certificates than any real device chain carries; the rest is not looked at. */
export const MAX_CHAIN_CERTIFICATES = 8;

/**
 * The presented chain, leaf first, without duplicates; empty when the peer sent no certificate.
 * Node links each certificate to its issuer (`issuerCertificate`), a self-signed one to itself;
 * the walk stops at a repeat, so a loop cannot make it run on.
 */
export function presentedChain(socket: TLSSocket): Buffer[] {
  // Without a peer certificate Node returns an empty object, hence the optional fields.
  const leaf = socket.getPeerCertificate(true) as Partial<DetailedPeerCertificate> | undefined;
  const chain: Buffer[] = [];
  const seen = new Set<string>();
  let cert: Partial<DetailedPeerCertificate> | undefined = leaf;
  while (cert && Buffer.isBuffer(cert.raw) && chain.length < MAX_CHAIN_CERTIFICATES) {
    const id = cert.fingerprint256 ?? '';
    if (seen.has(id)) break;
    seen.add(id);
    chain.push(cert.raw);
    cert = cert.issuerCertificate as DetailedPeerCertificate | undefined;
  }
  return chain;
}
