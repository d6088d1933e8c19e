/**
 * Verification of a TLS client's certificate chain against a registry's CA certificates
 * (reference aws §1, gcp §3.6): the path from the leaf through presented intermediates to one
 * of the anchors, each certificate valid now, every issuer a CA allowed to sign certificates,
 * the leaf a client certificate with a strong key. Every refusal says precisely why.
 *
 * The chain arrives from an untrusted peer: counts and sizes are bounded before any parsing,
 * and a signature is only checked against a candidate whose name matches, so a peer cannot make
 * us run more than a handful of verifications.
 */
import type { KeyObject, X509Certificate as NodeX509 } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { certificateKey, serialKey, type CertificateKey } from '../domain/certificate-keys.js';
import { isKeywayError } from '../domain/errors.js';
import { parseCertificateDer, type ParsedCertificate } from './x509-certificate.js';

/** Certificates a client may present (leaf included); TLS stacks send 1–4. */
export const MAX_PRESENTED_CERTIFICATES = 10;
/** Largest DER certificate accepted, well above an RSA-8192 certificate with extensions. */
export const MAX_CERTIFICATE_BYTES = 16 * 1024;
/** Issuers above the leaf (intermediates plus the anchor) a path may have. */
export const MAX_ISSUERS = 5;
const RSA_MIN_BITS = 2048;
const RSA_MAX_BITS = 8192;

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';
const ANY_EKU_OID = '2.5.29.37.0';
/** Extensions this verifier understands; any other marked critical refuses the certificate (RFC 5280 §4.2). */
const UNDERSTOOD_EXTENSIONS = new Set([
  '2.5.29.19', // basicConstraints
  '2.5.29.15', // keyUsage
  '2.5.29.37', // extendedKeyUsage
  '2.5.29.17', // subjectAltName
  '2.5.29.14', // subjectKeyIdentifier
  '2.5.29.35', // authorityKeyIdentifier
  '2.5.29.32', // certificatePolicies (no policy is required of device chains)
  '2.5.29.31', // cRLDistributionPoints
  '1.3.6.1.5.5.7.1.1', // authorityInfoAccess
]);

/** A parsed certificate with what chain building, revocation and logging need. */
export interface ChainCertificate {
  readonly der: Buffer;
  /** SHA-256 (hex) of the DER. */
  readonly fingerprint: string;
  readonly subject: string;
  readonly issuer: string;
  /** Normalized hex (domain/certificate-keys). */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SHA-256 (hex) of the SubjectPublicKeyInfo DER as it appears in the certificate. */
  readonly spkiSha256: string;
  /** basicConstraints cA. */
  readonly isCa: boolean;
  readonly pathLength?: number;
  /** KeyUsageFlags bits; absent when the extension is. */
  readonly keyUsage?: number;
  readonly extendedKeyUsage?: readonly string[];
  readonly subjectKeyId?: string;
  readonly authorityKeyId?: string;
  /** OIDs of critical extensions this verifier does not understand. */
  readonly unknownCritical: readonly string[];
  readonly publicKey: KeyObject;
  readonly subjectDer: Buffer;
  readonly issuerDer: Buffer;
  readonly node: NodeX509;
}

export type ChainVerdict =
  | {
      readonly ok: true;
      /** Leaf → … → anchor. */
      readonly chain: readonly ChainCertificate[];
      /** Index of the anchor in the `anchors` argument. */
      readonly anchorIndex: number;
      readonly revocationKeys: readonly CertificateKey[];
      /** The earliest notAfter of the chain. */
      readonly notAfter: Date;
      readonly leafFingerprint: string;
    }
  | {
      readonly ok: false;
      readonly reason: string;
      /** The leaf when it could be parsed, for the log. */
      readonly leaf?: ChainCertificate;
    };

const iso = (d: Date): string => d.toISOString();

/** Parses one DER or PEM certificate (x509-certificate.ts) with what path building needs; throws an Error saying why not. */
export function parseChainCertificate(input: Uint8Array | string): ChainCertificate {
  const raw = typeof input === 'string' ? Buffer.from(x509.PemConverter.decodeFirst(input)) : Buffer.from(input);
  if (raw.length === 0 || raw.length > MAX_CERTIFICATE_BYTES) throw new Error(`certificate of ${raw.length} bytes is out of bounds`);
  let parsed: ParsedCertificate;
  try {
    parsed = parseCertificateDer(raw);
  } catch (e) {
    if (isKeywayError(e)) throw new Error(e.fieldViolations[0]?.description ?? 'is not a parseable X.509 certificate');
    throw e;
  }
  const cert = parsed.peculiar;
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
  const unknownCritical = cert.extensions.filter((e) => e.critical && !UNDERSTOOD_EXTENSIONS.has(e.type)).map((e) => e.type);
  return {
    der: parsed.der,
    fingerprint: parsed.sha256,
    subject: cert.subject,
    issuer: cert.issuer,
    serial: parsed.serial,
    notBefore: parsed.notBefore,
    notAfter: parsed.notAfter,
    spkiSha256: parsed.spkiSha256,
    isCa: parsed.isCa,
    ...(bc?.pathLength !== undefined ? { pathLength: bc.pathLength } : {}),
    ...(ku ? { keyUsage: ku.usages } : {}),
    ...(eku ? { extendedKeyUsage: eku.usages.map(String) } : {}),
    ...(ski ? { subjectKeyId: ski.keyId.toLowerCase() } : {}),
    ...(aki?.keyId ? { authorityKeyId: aki.keyId.toLowerCase() } : {}),
    unknownCritical,
    publicKey: parsed.publicKey,
    subjectDer: Buffer.from(cert.subjectName.toArrayBuffer()),
    issuerDer: Buffer.from(cert.issuerName.toArrayBuffer()),
    node: parsed.node,
  };
}

/** Anchors are the same few certificates on every connection of a registry: parse each once. */
const anchorCache = new Map<string, ChainCertificate>();
const ANCHOR_CACHE_SIZE = 512;

function parseAnchor(input: Uint8Array | string): ChainCertificate {
  const key = typeof input === 'string' ? input : Buffer.from(input).toString('base64');
  const cached = anchorCache.get(key);
  if (cached) return cached;
  const parsed = parseChainCertificate(input);
  if (anchorCache.size >= ANCHOR_CACHE_SIZE) anchorCache.delete(anchorCache.keys().next().value as string);
  anchorCache.set(key, parsed);
  return parsed;
}

const normalName = (s: string): string => s.toLowerCase().replace(/\s+/g, ' ').trim();

/** Whether `issuer`'s subject is `cert`'s issuer: the same encoding, or the same text ignoring case and spacing. */
function namesIssuer(cert: ChainCertificate, issuer: ChainCertificate): boolean {
  return cert.issuerDer.equals(issuer.subjectDer) || normalName(cert.issuer) === normalName(issuer.subject);
}

function signedBy(cert: ChainCertificate, issuer: ChainCertificate): boolean {
  try {
    return cert.node.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** Why the key may not sign or be a device's key, or undefined when it may. */
function keyProblem(key: KeyObject): string | undefined {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < RSA_MIN_BITS) return `RSA key of ${bits} bits is too weak; at least ${RSA_MIN_BITS} bits are required`;
    if (bits > RSA_MAX_BITS) return `RSA key of ${bits} bits is larger than the ${RSA_MAX_BITS}-bit maximum`;
    return undefined;
  }
  if (key.asymmetricKeyType === 'ec') {
    return details.namedCurve === 'prime256v1' ? undefined : `EC key on curve ${details.namedCurve ?? 'unknown'} is not accepted; only P-256 is`;
  }
  return `${key.asymmetricKeyType ?? 'unknown'} keys are not accepted; use RSA (≥ ${RSA_MIN_BITS} bits) or P-256`;
}

/** CA keys may also be on P-384 or P-521, which roots commonly use. */
function issuerKeyProblem(key: KeyObject): string | undefined {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType === 'ec' && (curve === 'secp384r1' || curve === 'secp521r1')) return undefined;
  return keyProblem(key);
}

function validityProblem(cert: ChainCertificate, now: Date): string | undefined {
  if (now.getTime() < cert.notBefore.getTime()) return `certificate "${cert.subject}" is not valid before ${iso(cert.notBefore)}`;
  if (now.getTime() > cert.notAfter.getTime()) return `certificate "${cert.subject}" expired at ${iso(cert.notAfter)}`;
  return undefined;
}

/** Refusals of the leaf itself, before any path is built. */
function leafProblem(leaf: ChainCertificate, now: Date): string | undefined {
  if (leaf.isCa) return `leaf is a CA certificate ("${leaf.subject}"); a device must present an end-entity certificate`;
  if (leaf.keyUsage !== undefined && (leaf.keyUsage & x509.KeyUsageFlags.keyCertSign) !== 0)
    return `leaf "${leaf.subject}" has key usage keyCertSign, which only CA certificates may have`;
  if (leaf.unknownCritical.length > 0) return `leaf "${leaf.subject}" has unsupported critical extension(s) ${leaf.unknownCritical.join(', ')}`;
  if (leaf.extendedKeyUsage !== undefined && !leaf.extendedKeyUsage.some((u) => u === CLIENT_AUTH_OID || u === ANY_EKU_OID))
    return `leaf "${leaf.subject}" has an extended key usage without clientAuth`;
  const weak = keyProblem(leaf.publicKey);
  if (weak) return `leaf "${leaf.subject}": ${weak}`;
  return validityProblem(leaf, now);
}

/** Refusals of a certificate as the issuer at `position` (1 = the leaf's issuer) of a path. */
function issuerProblem(issuer: ChainCertificate, position: number, now: Date): string | undefined {
  if (!issuer.isCa) return `issuer "${issuer.subject}" is not a CA certificate (basicConstraints cA is not set)`;
  if (issuer.keyUsage !== undefined && (issuer.keyUsage & x509.KeyUsageFlags.keyCertSign) === 0)
    return `issuer "${issuer.subject}" has a key usage that does not allow signing certificates`;
  // Intermediates between this issuer and the leaf: position - 1 (RFC 5280 §4.2.1.9).
  if (issuer.pathLength !== undefined && position - 1 > issuer.pathLength)
    return `issuer "${issuer.subject}" allows ${issuer.pathLength} intermediate CA(s) below it, the path has ${position - 1}`;
  if (issuer.unknownCritical.length > 0)
    return `issuer "${issuer.subject}" has unsupported critical extension(s) ${issuer.unknownCritical.join(', ')}`;
  const key = issuerKeyProblem(issuer.publicKey);
  if (key) return `issuer "${issuer.subject}": ${key}`;
  return validityProblem(issuer, now);
}

/** Candidates with a matching key identifier first: a hint only, the signature decides. */
function byKeyIdHint<T extends { cert: ChainCertificate }>(child: ChainCertificate, candidates: T[]): T[] {
  if (child.authorityKeyId === undefined) return candidates;
  const matches = (c: T): number => (c.cert.subjectKeyId === child.authorityKeyId ? 0 : 1);
  return [...candidates].sort((a, b) => matches(a) - matches(b));
}

/**
 * Verifies `presented` (DER, leaf first, as the TLS handshake delivered it) against `anchors`
 * (the registry's CA certificates, DER or PEM) at `now`.
 */
export function verifyClientChain(
  presented: readonly Uint8Array[],
  anchors: readonly (Uint8Array | string)[],
  now: Date,
): ChainVerdict {
  if (presented.length === 0) return { ok: false, reason: 'no client certificate was presented' };
  if (presented.length > MAX_PRESENTED_CERTIFICATES)
    return { ok: false, reason: `${presented.length} certificates presented; at most ${MAX_PRESENTED_CERTIFICATES} are accepted` };
  const parsed: ChainCertificate[] = [];
  for (const [i, der] of presented.entries()) {
    try {
      parsed.push(parseChainCertificate(der));
    } catch (e) {
      const leaf = parsed[0];
      return { ok: false, reason: `presented certificate ${i}: ${(e as Error).message}`, ...(leaf ? { leaf } : {}) };
    }
  }
  const leaf = parsed[0]!;
  const refuse = (reason: string): ChainVerdict => ({ ok: false, reason, leaf });
  const problem = leafProblem(leaf, now);
  if (problem) return refuse(problem);

  const trusted: { cert: ChainCertificate; index: number }[] = [];
  for (const [index, a] of anchors.entries()) {
    try {
      trusted.push({ cert: parseAnchor(a), index });
    } catch {
      // A registry CA that no longer parses cannot anchor anything; the others still may.
    }
  }
  if (trusted.length === 0) return refuse("the registry has no CA certificates");
  const intermediates = parsed.slice(1).map((cert) => ({ cert, index: -1 }));

  // Depth-first search for a path; the refusal reported is the one that got furthest.
  let best: { depth: number; reason: string } | undefined;
  const fail = (depth: number, reason: string): void => {
    if (best === undefined || depth > best.depth) best = { depth, reason };
  };
  const extend = (path: ChainCertificate[]): { chain: ChainCertificate[]; anchorIndex: number } | undefined => {
    const child = path[path.length - 1]!;
    const position = path.length;
    if (position > MAX_ISSUERS) {
      fail(position, `no path to a registry CA within ${MAX_ISSUERS} issuers`);
      return undefined;
    }
    let named = false;
    const candidates = [...byKeyIdHint(child, trusted), ...byKeyIdHint(child, intermediates)];
    for (const { cert, index } of candidates) {
      if (index < 0 && path.some((p) => p.fingerprint === cert.fingerprint)) continue;
      if (!namesIssuer(child, cert)) continue;
      named = true;
      if (!signedBy(child, cert)) {
        fail(position, `the signature of "${child.subject}" does not verify with the key of "${cert.subject}"`);
        continue;
      }
      const refused = issuerProblem(cert, position, now);
      if (refused) {
        fail(position, refused);
        continue;
      }
      if (index >= 0) return { chain: [...path, cert], anchorIndex: index };
      const found = extend([...path, cert]);
      if (found) return found;
    }
    if (!named) fail(position - 1, `issuer "${child.issuer}" of "${child.subject}" is not among the registry's CAs`);
    return undefined;
  };
  const found = extend([leaf]);
  if (!found) return refuse(best?.reason ?? `issuer "${leaf.issuer}" is not among the registry's CAs`);

  const { chain, anchorIndex } = found;
  const keys: CertificateKey[] = [];
  chain.forEach((cert, i) => {
    keys.push(certificateKey(cert.fingerprint));
    const issuer = chain[i + 1] ?? (cert.subjectDer.equals(cert.issuerDer) ? cert : undefined);
    if (issuer) keys.push(serialKey(issuer.spkiSha256, cert.serial));
  });
  const notAfter = new Date(Math.min(...chain.map((c) => c.notAfter.getTime())));
  return { ok: true, chain, anchorIndex, revocationKeys: keys, notAfter, leafFingerprint: leaf.fingerprint };
}
