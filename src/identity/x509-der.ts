/**
 * A strict, minimal DER reader for the parts of an X.509 certificate that node:crypto does not
 * expose: the TBSCertificate's version, names and SubjectPublicKeyInfo as encoded, and the
 * extensions path validation needs (basicConstraints, keyUsage, extendedKeyUsage, key
 * identifiers, criticality). It exists because @peculiar/x509 builds a full object model of
 * every certificate, which cost more than everything else of a device's connection together.
 * OpenSSL (node's X509Certificate) still parses every certificate in full; this reader only
 * walks the structure and throws on anything that is not well-formed DER where it looks.
 */

export class DerError extends Error {}

interface Tlv {
  readonly tag: number;
  /** Start of the whole TLV (its tag byte). */
  readonly start: number;
  /** Start of the contents. */
  readonly body: number;
  /** End of the contents (exclusive), which is also the end of the TLV. */
  readonly end: number;
}

const fail = (what: string): never => {
  throw new DerError(what);
};

/** The TLV at `at`, which must end by `limit`. Definite, minimal lengths only (DER); single-byte tags. */
function readTlv(der: Uint8Array, at: number, limit: number): Tlv {
  if (at + 2 > limit) fail('truncated');
  const tag = der[at]!;
  if ((tag & 0x1f) === 0x1f) fail('multi-byte tags are not expected in a certificate');
  let length = der[at + 1]!;
  let body = at + 2;
  if (length >= 0x80) {
    const n = length & 0x7f;
    if (n === 0) fail('indefinite lengths are not DER');
    if (n > 3) fail('length out of bounds');
    if (body + n > limit) fail('truncated');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[body + i]!;
    if (der[body] === 0 || length < 0x80) fail('non-minimal length');
    body += n;
  }
  const end = body + length;
  if (end > limit) fail('truncated');
  return { tag, start: at, body, end };
}

/** The TLVs inside a constructed TLV, each of which must fit exactly. */
function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.body; at < parent.end; ) {
    const t = readTlv(der, at, parent.end);
    out.push(t);
    at = t.end;
  }
  return out;
}

const expect = (t: Tlv | undefined, tag: number, what: string): Tlv => (t !== undefined && t.tag === tag ? t : fail(`expected ${what}`));

const SEQUENCE = 0x30;
const BOOLEAN = 0x01;
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const OCTET_STRING = 0x04;
const OID = 0x06;

/** Dotted text of an OBJECT IDENTIFIER's contents. */
function oidText(der: Uint8Array, t: Tlv): string {
  if (t.end === t.body) fail('empty object identifier');
  const arcs: number[] = [];
  let value = 0;
  for (let i = t.body; i < t.end; i++) {
    const b = der[i]!;
    if (value === 0 && b === 0x80) fail('non-minimal object identifier arc');
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) fail('object identifier arc out of bounds');
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
    } else if (i === t.end - 1) fail('truncated object identifier');
  }
  return arcs.join('.');
}

function booleanValue(der: Uint8Array, t: Tlv): boolean {
  if (t.end - t.body !== 1) fail('malformed BOOLEAN');
  const b = der[t.body]!;
  if (b !== 0 && b !== 0xff) fail('BOOLEAN is not DER');
  return b === 0xff;
}

/** A small non-negative INTEGER (pathLenConstraint). */
function smallInteger(der: Uint8Array, t: Tlv): number {
  const n = t.end - t.body;
  if (n === 0 || n > 4) fail('INTEGER out of bounds');
  if (der[t.body]! & 0x80) fail('negative INTEGER');
  if (n > 1 && der[t.body] === 0 && (der[t.body + 1]! & 0x80) === 0) fail('non-minimal INTEGER');
  let v = 0;
  for (let i = t.body; i < t.end; i++) v = v * 256 + der[i]!;
  return v;
}

const hex = (der: Uint8Array, from: number, to: number): string => Buffer.from(der.buffer, der.byteOffset + from, to - from).toString('hex');

/** One extension as the certificate carries it. */
export interface DerExtension {
  readonly oid: string;
  readonly critical: boolean;
  /** The extnValue OCTET STRING's contents (the extension's own DER). */
  readonly value: Tlv;
}

/** What path validation needs of a certificate, read from its DER. */
export interface CertificateStructure {
  /** 1 for v1 (no version field), 3 for v3, … */
  readonly version: number;
  /** The issuer and subject Name TLVs, as encoded. */
  readonly issuerDer: Buffer;
  readonly subjectDer: Buffer;
  /** The SubjectPublicKeyInfo TLV, as encoded. */
  readonly spkiDer: Buffer;
  readonly isCa: boolean;
  readonly pathLength?: number;
  /** KeyUsageFlags bits (bit n of the BIT STRING is 1 << n, as @peculiar/x509 numbers them). */
  readonly keyUsage?: number;
  readonly extendedKeyUsage?: readonly string[];
  /** Lowercase hex. */
  readonly subjectKeyId?: string;
  readonly authorityKeyId?: string;
  /** OIDs of every critical extension. */
  readonly criticalExtensions: readonly string[];
}

const BASIC_CONSTRAINTS = '2.5.29.19';
const KEY_USAGE = '2.5.29.15';
const EXTENDED_KEY_USAGE = '2.5.29.37';
const SUBJECT_KEY_ID = '2.5.29.14';
const AUTHORITY_KEY_ID = '2.5.29.35';

/** Reads a certificate's structure; throws DerError saying what is malformed. */
export function readCertificateStructure(input: Uint8Array): CertificateStructure {
  const der = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const cert = expect(readTlv(der, 0, der.length), SEQUENCE, 'a Certificate SEQUENCE');
  if (cert.end !== der.length) fail('trailing data after the certificate');
  const [tbs, sigAlg, sig, ...extra] = children(der, cert);
  expect(tbs, SEQUENCE, 'a TBSCertificate');
  expect(sigAlg, SEQUENCE, 'a signature AlgorithmIdentifier');
  expect(sig, BIT_STRING, 'a signature BIT STRING');
  if (extra.length > 0) fail('unexpected fields after the signature');

  const fields = children(der, tbs!);
  let i = 0;
  let version = 1;
  if (fields[i]?.tag === 0xa0) {
    const [v, ...more] = children(der, fields[i]!);
    if (more.length > 0) fail('malformed version');
    version = smallInteger(der, expect(v, INTEGER, 'a version INTEGER')) + 1;
    i++;
  }
  expect(fields[i++], INTEGER, 'a serial number');
  expect(fields[i++], SEQUENCE, 'a signature AlgorithmIdentifier in the TBSCertificate');
  const issuer = expect(fields[i++], SEQUENCE, 'an issuer Name');
  expect(fields[i++], SEQUENCE, 'a validity');
  const subject = expect(fields[i++], SEQUENCE, 'a subject Name');
  const spki = expect(fields[i++], SEQUENCE, 'a SubjectPublicKeyInfo');
  if (fields[i]?.tag === 0x81) i++; // issuerUniqueID
  if (fields[i]?.tag === 0x82) i++; // subjectUniqueID
  const extensions: DerExtension[] = [];
  if (fields[i]?.tag === 0xa3) {
    const [list, ...more] = children(der, fields[i]!);
    if (more.length > 0) fail('malformed extensions');
    for (const ext of children(der, expect(list, SEQUENCE, 'a SEQUENCE of extensions'))) {
      const parts = children(der, expect(ext, SEQUENCE, 'an Extension'));
      const oid = oidText(der, expect(parts[0], OID, 'an extension OID'));
      let critical = false;
      let k = 1;
      if (parts[k]?.tag === BOOLEAN) {
        // An explicit FALSE is not DER, but common in older certificates; OpenSSL accepts it too.
        critical = booleanValue(der, parts[k]!);
        k++;
      }
      const octets = expect(parts[k++], OCTET_STRING, 'an extension value');
      if (parts.length !== k) fail('malformed Extension');
      if (extensions.some((e) => e.oid === oid)) fail(`extension ${oid} appears more than once`);
      // The extension's own DER fills the OCTET STRING exactly.
      const value = readTlv(der, octets.body, octets.end);
      if (value.end !== octets.end) fail(`extension ${oid} has trailing data`);
      extensions.push({ oid, critical, value });
    }
    i++;
  }
  if (i !== fields.length) fail('unexpected fields in the TBSCertificate');
  if (extensions.length > 0 && version !== 3) fail('extensions in a certificate older than version 3');

  const find = (oid: string): Tlv | undefined => extensions.find((e) => e.oid === oid)?.value;
  const out: {
    -readonly [K in keyof CertificateStructure]: CertificateStructure[K];
  } = {
    version,
    issuerDer: der.subarray(issuer.start, issuer.end),
    subjectDer: der.subarray(subject.start, subject.end),
    spkiDer: der.subarray(spki.start, spki.end),
    isCa: false,
    criticalExtensions: extensions.filter((e) => e.critical).map((e) => e.oid),
  };

  const bc = find(BASIC_CONSTRAINTS);
  if (bc) {
    const parts = children(der, expect(bc, SEQUENCE, 'basicConstraints'));
    let k = 0;
    if (parts[k]?.tag === BOOLEAN) {
      out.isCa = booleanValue(der, parts[k]!);
      k++;
    }
    if (parts[k]?.tag === INTEGER) out.pathLength = smallInteger(der, parts[k++]!);
    if (parts.length !== k) fail('malformed basicConstraints');
  }

  const ku = find(KEY_USAGE);
  if (ku) {
    expect(ku, BIT_STRING, 'keyUsage BIT STRING');
    const n = ku.end - ku.body;
    if (n < 1 || n > 3) fail('malformed keyUsage');
    const unused = der[ku.body]!;
    if (unused > 7 || (n === 1 && unused !== 0)) fail('malformed keyUsage');
    let bits = 0;
    for (let b = 0; b < (n - 1) * 8 - unused; b++) {
      const byte = der[ku.body + 1 + (b >> 3)]!;
      if (byte & (0x80 >> (b & 7))) bits |= 1 << b;
    }
    out.keyUsage = bits;
  }

  const eku = find(EXTENDED_KEY_USAGE);
  if (eku) {
    const purposes = children(der, expect(eku, SEQUENCE, 'extendedKeyUsage')).map((p) => oidText(der, expect(p, OID, 'a key purpose OID')));
    if (purposes.length === 0) fail('empty extendedKeyUsage');
    out.extendedKeyUsage = purposes;
  }

  const ski = find(SUBJECT_KEY_ID);
  if (ski) {
    expect(ski, OCTET_STRING, 'subjectKeyIdentifier');
    out.subjectKeyId = hex(der, ski.body, ski.end);
  }

  const aki = find(AUTHORITY_KEY_ID);
  if (aki) {
    const parts = children(der, expect(aki, SEQUENCE, 'authorityKeyIdentifier'));
    const keyId = parts.find((p) => p.tag === 0x80);
    if (keyId) out.authorityKeyId = hex(der, keyId.body, keyId.end);
  }
  return out;
}

/** A public key's type and size, as node:crypto's KeyObject names them. */
export interface KeyFacts {
  readonly asymmetricKeyType?: string;
  readonly asymmetricKeyDetails?: { readonly namedCurve?: string; readonly modulusLength?: number };
}

const EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
const NAMED_CURVES: Readonly<Record<string, string>> = {
  '1.2.840.10045.3.1.7': 'prime256v1',
  '1.3.132.0.34': 'secp384r1',
  '1.3.132.0.35': 'secp521r1',
  '1.3.132.0.10': 'secp256k1',
};

/**
 * The key type and curve or modulus size of a SubjectPublicKeyInfo, for EC keys on a named
 * curve and RSA keys; undefined for anything else (ask the KeyObject then). Reading these from
 * the DER spares OpenSSL 3 converting every device's key to its legacy form to report them.
 */
export function readSpkiKeyFacts(spki: Uint8Array): KeyFacts | undefined {
  const der = Buffer.isBuffer(spki) ? spki : Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength);
  try {
    const outer = expect(readTlv(der, 0, der.length), SEQUENCE, 'a SubjectPublicKeyInfo');
    const [alg, key, ...extra] = children(der, outer);
    if (extra.length > 0) return undefined;
    const [algOid, params, ...more] = children(der, expect(alg, SEQUENCE, 'an AlgorithmIdentifier'));
    if (more.length > 0) return undefined;
    const algorithm = oidText(der, expect(algOid, OID, 'an algorithm OID'));
    const bits = expect(key, BIT_STRING, 'a public key BIT STRING');
    if (bits.end - bits.body < 2 || der[bits.body] !== 0) return undefined;
    if (algorithm === EC_PUBLIC_KEY) {
      if (params?.tag !== OID) return undefined; // explicit curve parameters: not a named curve
      const namedCurve = NAMED_CURVES[oidText(der, params)];
      return namedCurve === undefined ? undefined : { asymmetricKeyType: 'ec', asymmetricKeyDetails: { namedCurve } };
    }
    if (algorithm === RSA_ENCRYPTION) {
      if (params === undefined || params.tag !== 0x05 || params.end !== params.body) return undefined;
      const rsaKey = expect(readTlv(der, bits.body + 1, bits.end), SEQUENCE, 'an RSAPublicKey');
      if (rsaKey.end !== bits.end) return undefined;
      const [n, e, ...rest] = children(der, rsaKey);
      expect(n, INTEGER, 'a modulus');
      expect(e, INTEGER, 'an exponent');
      if (rest.length > 0) return undefined;
      let from = n!.body;
      while (from < n!.end && der[from] === 0) from++;
      if (from === n!.end) return undefined;
      const modulusLength = (n!.end - from - 1) * 8 + (32 - Math.clz32(der[from]!));
      return { asymmetricKeyType: 'rsa', asymmetricKeyDetails: { modulusLength } };
    }
    return undefined;
  } catch (e) {
    if (e instanceof DerError) return undefined;
    throw e;
  }
}
