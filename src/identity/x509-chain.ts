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
import { X509Certificate, type KeyObject, type X509Certificate as NodeX509 } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { certificateKey, normalizeSerial, serialKey, type CertificateKey } from '../domain/certificate-keys.js';
import { BoundedLru } from './bounded-lru.js';
import { sha256Hex } from './x509-certificate.js';
import { DerError, readCertificateStructure, readSpkiKeyFacts, type CertificateStructure, type KeyFacts } from './x509-der.js';

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
  /** The key's type and size (from the DER where it can be read there, else the KeyObject). */
  readonly keyFacts: KeyFacts;
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

/** Issuer names as text, by their DER (read as latin1, one char a byte). */
const issuerNames = new BoundedLru<string, string>(512);

/**
 * Certificates OpenSSL already parsed in a TLS handshake, by the DER Buffer handed out for them
 * (peerCertificateDer), with a copy of those bytes: verification uses that parse instead of
 * parsing the same bytes again, as long as the bytes are still the same.
 */
const parsedInHandshake = new WeakMap<Uint8Array, { readonly node: NodeX509; readonly der: Buffer }>();

/**
 * The DER of a certificate node:crypto parsed (a TLS peer's, from getPeerX509Certificate), to
 * pass to verifyClientChain: it reuses `cert` rather than parsing the DER again.
 */
export function peerCertificateDer(cert: NodeX509): Buffer {
  const der = cert.raw;
  parsedInHandshake.set(der, { node: cert, der: Buffer.from(der) });
  return der;
}

/**
 * One certificate of a chain. OpenSSL (node's X509Certificate) parses it in full and gives the
 * serial, validity, key and signature checks; x509-der reads the extensions and the names and
 * key info as encoded. The names as text are only needed for messages and logs, and are made
 * when first asked for.
 */
class ParsedChainCertificate implements ChainCertificate {
  #subject: string | undefined;
  #issuer: string | undefined;

  constructor(
    readonly der: Buffer,
    readonly fingerprint: string,
    readonly node: NodeX509,
    readonly publicKey: KeyObject,
    readonly serial: string,
    readonly notBefore: Date,
    readonly notAfter: Date,
    readonly spkiSha256: string,
    structure: CertificateStructure,
    readonly unknownCritical: readonly string[],
  ) {
    this.keyFacts = readSpkiKeyFacts(structure.spkiDer) ?? publicKey;
    this.subjectDer = structure.subjectDer;
    this.issuerDer = structure.issuerDer;
    this.isCa = structure.isCa;
    if (structure.pathLength !== undefined) this.pathLength = structure.pathLength;
    if (structure.keyUsage !== undefined) this.keyUsage = structure.keyUsage;
    if (structure.extendedKeyUsage !== undefined) this.extendedKeyUsage = structure.extendedKeyUsage;
    if (structure.subjectKeyId !== undefined) this.subjectKeyId = structure.subjectKeyId;
    if (structure.authorityKeyId !== undefined) this.authorityKeyId = structure.authorityKeyId;
  }

  readonly keyFacts: KeyFacts;
  readonly subjectDer: Buffer;
  readonly issuerDer: Buffer;
  readonly isCa: boolean;
  readonly pathLength?: number;
  readonly keyUsage?: number;
  readonly extendedKeyUsage?: readonly string[];
  readonly subjectKeyId?: string;
  readonly authorityKeyId?: string;

  get subject(): string {
    return (this.#subject ??= new x509.Name(new Uint8Array(this.subjectDer)).toString());
  }

  get issuer(): string {
    // The issuer is one of a fleet's few CAs: its name's text is kept, not made per connection.
    if (this.#issuer === undefined) {
      const key = this.issuerDer.toString('latin1');
      this.#issuer = issuerNames.get(key);
      if (this.#issuer === undefined) {
        this.#issuer = new x509.Name(new Uint8Array(this.issuerDer)).toString();
        issuerNames.set(key, this.#issuer);
      }
    }
    return this.#issuer;
  }

  toJSON(): Record<string, unknown> {
    return { fingerprint: this.fingerprint, subject: this.subject, issuer: this.issuer, serial: this.serial };
  }
}

/** Parses one DER or PEM certificate with what path building needs; throws an Error saying why not. */
export function parseChainCertificate(input: Uint8Array | string): ChainCertificate {
  const known = typeof input === 'string' ? undefined : parsedInHandshake.get(input);
  const raw = typeof input === 'string' ? Buffer.from(x509.PemConverter.decodeFirst(input)) : Buffer.from(input);
  if (raw.length === 0 || raw.length > MAX_CERTIFICATE_BYTES) throw new Error(`certificate of ${raw.length} bytes is out of bounds`);
  return parseBounded(raw, sha256Hex(raw), known?.der.equals(raw) ? known.node : undefined);
}

function parseBounded(der: Buffer, fingerprint: string, parsed?: NodeX509): ChainCertificate {
  let node: NodeX509;
  let structure: CertificateStructure;
  try {
    node = parsed ?? new X509Certificate(der);
    structure = readCertificateStructure(der);
  } catch (e) {
    throw new Error(`is not a parseable X.509 certificate${e instanceof DerError ? ` (${e.message})` : ''}`);
  }
  // The same refusals as parseCertificateDer (x509-certificate.ts), which registration uses.
  if (!node.raw.equals(der)) throw new Error('has trailing data after the certificate');
  if (structure.version !== 3) throw new Error('is not an X.509 version 3 certificate');
  const notBefore = new Date(node.validFrom);
  const notAfter = new Date(node.validTo);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) throw new Error('has an unreadable validity period');
  let publicKey: KeyObject;
  try {
    publicKey = node.publicKey;
  } catch {
    throw new Error('holds a public key of a type that is not supported; use RSA or P-256');
  }
  return new ParsedChainCertificate(
    der,
    fingerprint,
    node,
    publicKey,
    normalizeSerial(node.serialNumber),
    notBefore,
    notAfter,
    // The SubjectPublicKeyInfo as the certificate encodes it: what a CRL's issuer is known by.
    sha256Hex(structure.spkiDer),
    structure,
    structure.criticalExtensions.filter((oid) => !UNDERSTOOD_EXTENSIONS.has(oid)),
  );
}

/**
 * Issuers (registry CAs, presented intermediates) are the same few certificates on every
 * connection of a fleet: each is parsed once, kept by the SHA-256 of its DER. A parsed
 * certificate is a fact about those bytes; its validity is still checked at every use.
 */
const ISSUER_CACHE_SIZE = 512;
const issuerCache = new BoundedLru<string, ChainCertificate>(ISSUER_CACHE_SIZE);
/** Anchors arrive as the registry's PEM text; the same text is the same certificate. */
const anchorPemCache = new BoundedLru<string, ChainCertificate>(ISSUER_CACHE_SIZE);

function parseIssuer(der: Buffer): ChainCertificate {
  if (der.length === 0 || der.length > MAX_CERTIFICATE_BYTES) throw new Error(`certificate of ${der.length} bytes is out of bounds`);
  const fingerprint = sha256Hex(der);
  const hit = issuerCache.get(fingerprint);
  if (hit) return hit;
  const parsed = parseBounded(Buffer.from(der), fingerprint);
  issuerCache.set(fingerprint, parsed);
  return parsed;
}

function parseAnchor(input: Uint8Array | string): ChainCertificate {
  if (typeof input !== 'string') return parseIssuer(Buffer.from(input.buffer, input.byteOffset, input.byteLength));
  const hit = anchorPemCache.get(input);
  if (hit) return hit;
  const parsed = parseIssuer(Buffer.from(x509.PemConverter.decodeFirst(input)));
  anchorPemCache.set(input, parsed);
  return parsed;
}

/**
 * Signatures that verified, by the pair of DER hashes: the same bytes verify the same way
 * forever, so an intermediate is checked against its CA once, not on every connection. Only
 * successes are kept; a failure is checked again (and fails again) each time.
 */
const verifiedSignatures = new BoundedLru<string, true>(4096);

const normalName = (s: string): string => s.toLowerCase().replace(/\s+/g, ' ').trim();

/** Whether `issuer`'s subject is `cert`'s issuer: the same encoding, or the same text ignoring case and spacing. */
function namesIssuer(cert: ChainCertificate, issuer: ChainCertificate): boolean {
  return cert.issuerDer.equals(issuer.subjectDer) || normalName(cert.issuer) === normalName(issuer.subject);
}

function signedBy(cert: ChainCertificate, issuer: ChainCertificate): boolean {
  const pair = `${cert.fingerprint}/${issuer.fingerprint}`;
  if (verifiedSignatures.get(pair)) return true;
  let ok: boolean;
  try {
    ok = cert.node.verify(issuer.publicKey);
  } catch {
    ok = false;
  }
  if (ok) verifiedSignatures.set(pair, true);
  return ok;
}

/** Why the key may not sign or be a device's key, or undefined when it may. */
function keyProblem(key: KeyFacts): string | undefined {
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
function issuerKeyProblem(key: KeyFacts): string | undefined {
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
  const weak = keyProblem(leaf.keyFacts);
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
  const key = issuerKeyProblem(issuer.keyFacts);
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
      // The leaf is the device's own and parsed afresh; what is above it is a fleet's few CAs.
      parsed.push(i === 0 ? parseChainCertificate(der) : parseIssuer(Buffer.from(der.buffer, der.byteOffset, der.byteLength)));
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
