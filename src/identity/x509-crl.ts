/**
 * Certificate revocation lists from outside CAs, uploaded to a registry: parsed from PEM or
 * base64 DER, their signature checked against a CA certificate, their entries read as
 * normalized serials. Only complete CRLs are accepted: a delta CRL lists changes, not the whole
 * set, and would wrongly un-revoke everything it does not repeat.
 */
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { normalizeSerial } from '../domain/certificate-keys.js';
import { fieldError } from '../domain/errors.js';
import { rfc4514, type ParsedCertificate } from './x509-certificate.js';

/** Largest DER CRL accepted; the admin API's 1 MiB body bounds it further (base64 in JSON). */
export const MAX_CRL_BYTES = 1024 * 1024;
const CRL_NUMBER_OID = '2.5.29.20';
const DELTA_CRL_INDICATOR_OID = '2.5.29.27';

export interface ParsedCrl {
  readonly crl: x509.X509Crl;
  /** RFC 4514. */
  readonly issuer: string;
  readonly crlNumber: bigint | undefined;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly entries: readonly { readonly serial: string; readonly revocationTime: Date }[];
}

/** OpenSSL writes "X509 CRL" (RFC 7468), some libraries plain "CRL". */
const PEM_CRL = /^-----BEGIN (X509 CRL|CRL)-----\r?\n([A-Za-z0-9+/=\s]+)-----END \1-----$/;

/** A CRL as PEM ("BEGIN X509 CRL") or base64 DER; INVALID_ARGUMENT on `field` otherwise. */
export function parseCrl(text: unknown, field = 'crl'): ParsedCrl {
  if (typeof text !== 'string' || text.trim() === '') throw fieldError(field, 'must be a PEM ("BEGIN X509 CRL") or base64 DER CRL');
  const trimmed = text.trim();
  let base64: string;
  if (trimmed.startsWith('-----')) {
    const m = PEM_CRL.exec(trimmed);
    if (!m) throw fieldError(field, 'must hold exactly one "BEGIN X509 CRL" PEM block');
    base64 = m[2] ?? '';
  } else {
    if (!/^[A-Za-z0-9+/=\s]+$/.test(trimmed)) throw fieldError(field, 'is neither PEM nor base64');
    base64 = trimmed;
  }
  const der = Buffer.from(base64.replace(/\s+/g, ''), 'base64');
  if (der.length === 0) throw fieldError(field, 'is empty');
  if (der.length > MAX_CRL_BYTES) throw fieldError(field, `is larger than ${MAX_CRL_BYTES} bytes`);
  let crl: x509.X509Crl;
  let entries: ParsedCrl['entries'];
  try {
    crl = new x509.X509Crl(new Uint8Array(der));
    entries = crl.entries.map((e) => ({ serial: normalizeSerial(e.serialNumber), revocationTime: e.revocationDate }));
  } catch {
    throw fieldError(field, 'is not a parseable X.509 CRL');
  }
  if (!Buffer.from(crl.rawData).equals(der)) throw fieldError(field, 'has trailing data after the CRL');
  if (crl.getExtension(DELTA_CRL_INDICATOR_OID))
    throw fieldError(field, 'is a delta CRL; upload the complete CRL of the issuer');
  const numberExt = crl.getExtension(CRL_NUMBER_OID);
  let crlNumber: bigint | undefined;
  if (numberExt) {
    crlNumber = derInteger(Buffer.from(numberExt.value));
    if (crlNumber === undefined) throw fieldError(field, 'has an unreadable CRL number');
  }
  return {
    crl,
    issuer: rfc4514(crl.issuerName),
    crlNumber,
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate,
    entries,
  };
}

/** A non-negative DER INTEGER of at most 20 octets (RFC 5280 §5.2.3), or undefined. */
function derInteger(der: Buffer): bigint | undefined {
  if (der[0] !== 0x02) return undefined;
  const length = der[1];
  if (length === undefined || length === 0 || length > 21 || der.length !== 2 + length) return undefined;
  const body = der.subarray(2);
  if ((body[0] ?? 0) & 0x80) return undefined;
  return BigInt(`0x${body.toString('hex')}`);
}

/** True when `ca` signed the CRL: its subject is the CRL's issuer and the signature verifies. */
export async function crlSignedBy(crl: ParsedCrl, ca: ParsedCertificate): Promise<boolean> {
  if (!Buffer.from(crl.crl.issuerName.toArrayBuffer()).equals(Buffer.from(ca.peculiar.subjectName.toArrayBuffer()))) return false;
  try {
    return await crl.crl.verify({ publicKey: ca.peculiar }, webcrypto as unknown as Crypto);
  } catch {
    return false;
  }
}
