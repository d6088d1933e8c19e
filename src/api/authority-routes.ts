/**
 * Admin API routes of Keyway's certificate authorities (Keyway extension):
 * `/v1/projects/{project}/locations/{location}/authorities[/{authority}[:verb|/crl]]`.
 * Appended to ADMIN_ROUTES in routes.ts.
 */
import { parseAuthority, type AuthorityName } from '../domain/authorities.js';
import { KeywayError } from '../domain/errors.js';
import { parseLocation, type LocationName } from '../domain/names.js';
import type { CertificateAuthorities } from '../pki/certificate-authority-service.js';
import {
  authorityToJson,
  certificateRecordToJson,
  CertificateAuthoritySchema,
  CertificateRecordSchema,
  CreateCertificateAuthorityRequestSchema,
  issuedToJson,
  IssueCertificateRequestSchema,
  IssuedCertificateSchema,
  ListCertificateAuthoritiesResponseSchema,
  RevokeCertificateRequestSchema,
  RevokeRequestSchema,
  type ApiCreateCertificateAuthorityRequest,
  type ApiIssueCertificateRequest,
  type ApiListCertificateAuthoritiesResponse,
} from './authority-wire.js';
import { fieldError } from '../domain/errors.js';
import { RawBody } from './raw-body.js';
import type { ApiRoute, RouteDeps, RouteRequest } from './routes.js';

const LOCATION = '/v1/projects/{project}/locations/{location}';
const AUTHORITIES = `${LOCATION}/authorities`;
const AUTHORITY = `${AUTHORITIES}/{authority}`;
const operation = 'keyway.projects.locations.authorities';

const locationOf = (p: RouteRequest['params']): LocationName =>
  parseLocation(`projects/${p.project}/locations/${p.location}`, 'parent');
const authorityOf = (p: RouteRequest['params']): AuthorityName =>
  parseAuthority(`projects/${p.project}/locations/${p.location}/authorities/${p.authority}`, 'name');

function authorities(deps: RouteDeps): CertificateAuthorities {
  if (!deps.authorities) throw new KeywayError('UNIMPLEMENTED', 'This server has no certificate authority service.');
  return deps.authorities;
}

/** The parent as an id, or as a full name in the same project and location. */
function parentId(location: LocationName, parent: string | undefined): string {
  if (parent === undefined || parent === '') throw fieldError('parent', 'is required for an INTERMEDIATE (the root CA\'s id)');
  if (!parent.includes('/')) return parent;
  const name = parseAuthority(parent, 'parent');
  if (name.project !== location.project || name.location !== location.location) {
    throw fieldError('parent', 'must be a CA of the same project and location');
  }
  return name.authority;
}

const crlFormat = { type: 'string', enum: ['pem', 'der'] };

export const AUTHORITY_ROUTES: readonly ApiRoute[] = [
  {
    operationId: `${operation}.create`,
    permission: 'authorities.create',
    method: 'POST',
    path: AUTHORITIES,
    summary: 'Creates a root CA, or an intermediate CA signed by a root for one manufacturing batch.',
    body: CreateCertificateAuthorityRequestSchema,
    response: CertificateAuthoritySchema,
    handle: async ({ params, body }, deps) => {
      const b = body as ApiCreateCertificateAuthorityRequest;
      const location = locationOf(params);
      const common = {
        ...(b.keyAlgorithm !== undefined ? { keyAlgorithm: b.keyAlgorithm } : {}),
        ...(b.validityDays !== undefined ? { validityDays: b.validityDays } : {}),
        ...(b.commonName !== undefined ? { commonName: b.commonName } : {}),
      };
      if (b.type === 'ROOT') {
        if (b.parent !== undefined || b.batch !== undefined) throw fieldError(b.parent !== undefined ? 'parent' : 'batch', 'a ROOT has none');
        return authorityToJson(await authorities(deps).createRoot(location, b.id, common));
      }
      if (b.batch === undefined) throw fieldError('batch', 'is required for an INTERMEDIATE');
      return authorityToJson(
        await authorities(deps).createIntermediate(location, b.id, { ...common, parent: parentId(location, b.parent), batch: b.batch }),
      );
    },
  },
  {
    operationId: `${operation}.list`,
    permission: 'authorities.list',
    method: 'GET',
    path: AUTHORITIES,
    summary: 'Lists the certificate authorities of a project and location.',
    response: ListCertificateAuthoritiesResponseSchema,
    handle: async ({ params }, deps): Promise<ApiListCertificateAuthoritiesResponse> => {
      const all = await authorities(deps).list(locationOf(params));
      return all.length ? { authorities: all.map(authorityToJson) } : {};
    },
  },
  {
    operationId: `${operation}.get`,
    permission: 'authorities.get',
    method: 'GET',
    path: AUTHORITY,
    summary: 'Gets a certificate authority, with its certificate.',
    response: CertificateAuthoritySchema,
    handle: async ({ params }, deps) => authorityToJson(await authorities(deps).describe(authorityOf(params))),
  },
  {
    operationId: `${operation}.revoke`,
    permission: 'authorities.revoke',
    method: 'POST',
    path: `${AUTHORITY}:revoke`,
    summary: 'Revokes a CA: it issues nothing more, and every certificate under it is refused at once.',
    body: RevokeRequestSchema,
    response: CertificateAuthoritySchema,
    handle: async ({ params, body }, deps) =>
      authorityToJson(await authorities(deps).revoke(authorityOf(params), (body as { reason?: string }).reason)),
  },
  {
    operationId: `${operation}.issueCertificate`,
    permission: 'authorities.issueCertificate',
    method: 'POST',
    path: `${AUTHORITY}:issueCertificate`,
    summary: 'Issues a device certificate (clientAuth) from a PKCS#10 CSR; only an active intermediate issues.',
    body: IssueCertificateRequestSchema,
    response: IssuedCertificateSchema,
    handle: async ({ params, body }, deps) => {
      const b = body as ApiIssueCertificateRequest;
      const issued = await authorities(deps).issueFromCsr(authorityOf(params), b.csr, {
        ...(b.deviceId !== undefined ? { deviceId: b.deviceId } : {}),
        ...(b.validityDays !== undefined ? { validityDays: b.validityDays } : {}),
      });
      return issuedToJson(issued);
    },
  },
  {
    operationId: `${operation}.revokeCertificate`,
    permission: 'authorities.revokeCertificate',
    method: 'POST',
    path: `${AUTHORITY}:revokeCertificate`,
    summary: 'Revokes one certificate the CA issued, by its serial number (hex).',
    body: RevokeCertificateRequestSchema,
    response: CertificateRecordSchema,
    handle: async ({ params, body }, deps) => {
      const b = body as { serialNumber: string; reason?: string };
      return certificateRecordToJson(await authorities(deps).revokeCertificate(authorityOf(params), b.serialNumber, b.reason));
    },
  },
  {
    operationId: `${operation}.crl`,
    permission: 'authorities.getCrl',
    method: 'GET',
    path: `${AUTHORITY}/crl`,
    summary: 'The CA\'s current CRL: PEM by default, DER (application/pkix-crl) with format=der.',
    query: { properties: { format: crlFormat } },
    response: { type: 'string' },
    handle: async ({ params, query }, deps) => {
      const crl = await authorities(deps).crl(authorityOf(params));
      return query.format === 'der' ? new RawBody('application/pkix-crl', crl.der) : new RawBody('application/x-pem-file', crl.pem);
    },
  },
];
