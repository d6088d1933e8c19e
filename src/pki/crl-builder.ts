/**
 * X.509 v2 CRLs (RFC 5280 §5) signed by a Keyway CA: its revoked certificates and revoked child
 * CAs, with a CRL number and the CA's key identifier, valid for seven days.
 */
import * as x509 from '@peculiar/x509';
import type { RevocationReason } from '../domain/authorities.js';
import { signingAlgorithm } from './ca-algorithms.js';
import { subjectKeyIdOf } from './certificate-facts.js';
import type { Issuer } from './certificate-profiles.js';

export const CRL_VALIDITY_DAYS = 7;
const DAY_MS = 86_400_000;
const CRL_NUMBER_OID = '2.5.29.20';

export interface CrlEntry {
  readonly serialNumber: string;
  readonly revocationDate: Date;
  readonly reason: RevocationReason;
}

const REASONS: Readonly<Record<RevocationReason, x509.X509CrlReason>> = {
  UNSPECIFIED: x509.X509CrlReason.unspecified,
  KEY_COMPROMISE: x509.X509CrlReason.keyCompromise,
  CA_COMPROMISE: x509.X509CrlReason.cACompromise,
  AFFILIATION_CHANGED: x509.X509CrlReason.affiliationChanged,
  SUPERSEDED: x509.X509CrlReason.superseded,
  CESSATION_OF_OPERATION: x509.X509CrlReason.cessationOfOperation,
  PRIVILEGE_WITHDRAWN: x509.X509CrlReason.privilegeWithdrawn,
};

/** DER INTEGER of a non-negative number (the CRLNumber extension's value). */
export function derInteger(n: number): ArrayBuffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`not a CRL number: ${n}`);
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return Uint8Array.from(Buffer.concat([Buffer.from([0x02, bytes.length]), bytes])).buffer;
}

export async function buildCrl(issuer: Issuer, crlNumber: number, entries: readonly CrlEntry[], now: Date): Promise<x509.X509Crl> {
  return x509.X509CrlGenerator.create(
    {
      issuer: issuer.certificate.subjectName,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + CRL_VALIDITY_DAYS * DAY_MS),
      signingAlgorithm: signingAlgorithm(issuer.algorithm),
      signingKey: issuer.handle.keys.privateKey,
      entries: entries.map((e) => ({
        serialNumber: e.serialNumber.length % 2 ? `0${e.serialNumber}` : e.serialNumber,
        revocationDate: e.revocationDate,
        reason: REASONS[e.reason],
      })),
      extensions: [
        new x509.AuthorityKeyIdentifierExtension(subjectKeyIdOf(issuer.certificate), false),
        new x509.Extension(CRL_NUMBER_OID, false, derInteger(crlNumber)),
      ],
    },
    issuer.handle.crypto,
  );
}
