/**
 * The client certificate chain a TLS peer presented, as DER, leaf first. The listener asks for a
 * client certificate but does not verify it (the registry does, against the CAs of the device's
 * registry); the handshake itself proved that the peer holds the leaf's private key.
 */
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { peerCertificateDer } from '../identity/x509-chain.js';

/** More certificates than any real device chain carries; the rest is not looked at. */
export const MAX_CHAIN_CERTIFICATES = 8;

/**
 * The presented chain, leaf first, in the order sent, without duplicates; empty when the peer
 * sent no certificate. getPeerX509Certificate hands over OpenSSL's own parse of each
 * certificate (the leaf's, linked to the others sent through `issuerCertificate`), which the
 * verifier then reuses (peerCertificateDer); getPeerCertificate(true) would convert every
 * certificate into an object of strings and digests nobody reads. The list is OpenSSL's, so
 * it ends; it is still bounded.
 *
 * Node 20's getPeerX509Certificate takes the certificates it links out of the connection's
 * peer chain: a second call sees the leaf alone (and so would getPeerCertificate). The chain is
 * therefore read once per socket and kept with it.
 */
export function presentedChain(socket: TLSSocket): Buffer[] {
  let chain = chains.get(socket);
  if (chain === undefined) {
    chain = readChain(socket);
    chains.set(socket, chain);
  }
  return [...chain];
}

const chains = new WeakMap<TLSSocket, readonly Buffer[]>();

function readChain(socket: TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  let cert: X509Certificate | undefined = socket.getPeerX509Certificate();
  while (cert && chain.length < MAX_CHAIN_CERTIFICATES) {
    const der = peerCertificateDer(cert);
    if (!chain.some((seen) => seen.equals(der))) chain.push(der);
    cert = cert.issuerCertificate;
  }
  return chain;
}
