/**
 * The admin API's certificate authority resources on the wire: JSON shapes, their schemas and
 * the conversions from what the PKI service returns.
 */
import { AUTHORITY_STATES, AUTHORITY_TYPES, formatAuthority, REVOCATION_REASONS } from '../domain/authorities.js';
import type { IssuedCertificate, StoredAuthority, StoredCertificate } from '../pki/certificate-authority-service.js';
import { enumOf, object, string, timestamp, type JsonSchema } from './json-schemas.js';
import { timestampToJson } from './proto-json.js';

export interface ApiCertificateAuthority {
  readonly name: string;
  readonly id: string;
  readonly type: 'ROOT' | 'INTERMEDIATE';
  /** The issuing CA's resource name (intermediates). */
  readonly parent?: string;
  readonly batch?: string;
  readonly state: 'ACTIVE' | 'REVOKED';
  readonly keyAlgorithm: string;
  /** ENCRYPTED (AES-256-GCM under the KEK) or PKCS11 (in a token). */
  readonly keyCustody: string;
  readonly certificate: string;
  readonly serialNumber: string;
  readonly fingerprint: string;
  readonly subject: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly createTime: string;
  readonly revokeTime?: string;
  readonly revokeReason?: string;
}

export interface ApiListCertificateAuthoritiesResponse {
  readonly authorities?: readonly ApiCertificateAuthority[];
}

export interface ApiCreateCertificateAuthorityRequest {
  readonly id: string;
  readonly type: 'ROOT' | 'INTERMEDIATE';
  readonly parent?: string;
  readonly batch?: string;
  readonly keyAlgorithm?: string;
  readonly validityDays?: number;
  readonly commonName?: string;
}

export interface ApiIssueCertificateRequest {
  readonly csr: string;
  readonly deviceId?: string;
  readonly validityDays?: number;
}

export interface ApiIssuedCertificate {
  readonly certificate: string;
  readonly serialNumber: string;
  readonly fingerprint: string;
  /** Issuer certificates, nearest first, ending with the root. */
  readonly chain: readonly string[];
  readonly subject: string;
  readonly notBefore: string;
  readonly notAfter: string;
}

export interface ApiCertificateRecord {
  readonly authority: string;
  readonly serialNumber: string;
  readonly fingerprint: string;
  readonly subject: string;
  readonly deviceId?: string;
  readonly certificate: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly createTime: string;
  readonly revokeTime?: string;
  readonly revokeReason?: string;
}

const days: JsonSchema = { type: 'integer', minimum: 1, maximum: 36_500 };

export const CertificateAuthoritySchema = object('CertificateAuthority', {
  name: string(1024),
  id: string(255),
  type: enumOf(AUTHORITY_TYPES),
  parent: string(1024),
  batch: string(64),
  state: enumOf(AUTHORITY_STATES),
  keyAlgorithm: string(32),
  keyCustody: string(32),
  certificate: string(64 * 1024),
  serialNumber: string(64),
  fingerprint: string(64),
  subject: string(4096),
  notBefore: timestamp,
  notAfter: timestamp,
  createTime: timestamp,
  revokeTime: timestamp,
  revokeReason: enumOf(REVOCATION_REASONS),
});

export const ListCertificateAuthoritiesResponseSchema = object('ListCertificateAuthoritiesResponse', {
  authorities: { type: 'array', items: CertificateAuthoritySchema },
});

export const CreateCertificateAuthorityRequestSchema = object(
  'CreateCertificateAuthorityRequest',
  {
    id: string(255),
    type: enumOf(AUTHORITY_TYPES),
    parent: string(1024),
    batch: string(256),
    keyAlgorithm: string(32),
    validityDays: days,
    commonName: string(256),
  },
  ['id', 'type'],
);

export const RevokeRequestSchema = object('RevokeCertificateAuthorityRequest', {
  reason: enumOf(REVOCATION_REASONS),
});

export const IssueCertificateRequestSchema = object(
  'IssueCertificateRequest',
  { csr: string(32 * 1024), deviceId: string(255), validityDays: days },
  ['csr'],
);

export const IssuedCertificateSchema = object('IssuedCertificate', {
  certificate: string(64 * 1024),
  serialNumber: string(64),
  fingerprint: string(64),
  chain: { type: 'array', items: string(64 * 1024) },
  subject: string(4096),
  notBefore: timestamp,
  notAfter: timestamp,
});

export const RevokeCertificateRequestSchema = object(
  'RevokeCertificateRequest',
  { serialNumber: string(130), reason: enumOf(REVOCATION_REASONS) },
  ['serialNumber'],
);

export const CertificateRecordSchema = object('CertificateRecord', {
  authority: string(1024),
  serialNumber: string(64),
  fingerprint: string(64),
  subject: string(4096),
  deviceId: string(255),
  certificate: string(64 * 1024),
  notBefore: timestamp,
  notAfter: timestamp,
  createTime: timestamp,
  revokeTime: timestamp,
  revokeReason: enumOf(REVOCATION_REASONS),
});

export function authorityToJson(a: StoredAuthority): ApiCertificateAuthority {
  return {
    name: formatAuthority(a.name),
    id: a.name.authority,
    type: a.type,
    ...(a.parent !== undefined ? { parent: formatAuthority({ ...a.name, authority: a.parent }) } : {}),
    ...(a.batch !== undefined ? { batch: a.batch } : {}),
    state: a.state,
    keyAlgorithm: a.keyAlgorithm,
    keyCustody: a.custodyKind.toUpperCase(),
    certificate: a.certificatePem,
    serialNumber: a.serialNumber,
    fingerprint: a.derSha256,
    subject: a.subject,
    notBefore: timestampToJson(a.notBefore),
    notAfter: timestampToJson(a.notAfter),
    createTime: timestampToJson(a.createTime),
    ...(a.revokeTime ? { revokeTime: timestampToJson(a.revokeTime) } : {}),
    ...(a.revokeReason ? { revokeReason: a.revokeReason } : {}),
  };
}

export function issuedToJson(c: IssuedCertificate): ApiIssuedCertificate {
  return {
    certificate: c.certificatePem,
    serialNumber: c.serialNumber,
    fingerprint: c.fingerprint,
    chain: [...c.chain],
    subject: c.subject,
    notBefore: timestampToJson(c.notBefore),
    notAfter: timestampToJson(c.notAfter),
  };
}

export function certificateRecordToJson(c: StoredCertificate): ApiCertificateRecord {
  return {
    authority: formatAuthority(c.authority),
    serialNumber: c.serialNumber,
    fingerprint: c.derSha256,
    subject: c.subject,
    ...(c.deviceId !== undefined ? { deviceId: c.deviceId } : {}),
    certificate: c.certificatePem,
    notBefore: timestampToJson(c.notBefore),
    notAfter: timestampToJson(c.notAfter),
    createTime: timestampToJson(c.createTime),
    ...(c.revokeTime ? { revokeTime: timestampToJson(c.revokeTime) } : {}),
    ...(c.revokeReason ? { revokeReason: c.revokeReason } : {}),
  };
}
