/**
 * Keyway's own certificate authorities as resources:
 * `projects/{project}/locations/{location}/authorities/{authority}`, with the words the API, the
 * store and the PKI share (types, states, revocation reasons).
 */
import { fieldError } from './errors.js';
import { checkResourceId, parseLocation, type LocationName } from './names.js';

export interface AuthorityName extends LocationName {
  readonly authority: string;
}

export const formatAuthority = (n: AuthorityName): string =>
  `projects/${n.project}/locations/${n.location}/authorities/${n.authority}`;

export function parseAuthority(name: string, field = 'name'): AuthorityName {
  const parts = name.split('/');
  if (parts.length !== 6 || parts[0] !== 'projects' || parts[2] !== 'locations' || parts[4] !== 'authorities') {
    throw fieldError(field, `'${name}' is not a resource name of the form projects/{project}/locations/{location}/authorities/{authority}`);
  }
  const loc = parseLocation(`projects/${parts[1] ?? ''}/locations/${parts[3] ?? ''}`, field);
  return { ...loc, authority: checkResourceId(field, parts[5] ?? '') };
}

/** The subject fields a CA's device certificates always carry; checks provisioning templates. */
export interface IssuedFields {
  readonly fields: readonly string[];
  /** For the error, e.g. "Keyway's CA int-line-1". */
  readonly issuer: string;
}

export const AUTHORITY_TYPES = ['ROOT', 'INTERMEDIATE'] as const;
export type AuthorityType = (typeof AUTHORITY_TYPES)[number];

export const AUTHORITY_STATES = ['ACTIVE', 'REVOKED'] as const;
export type AuthorityState = (typeof AUTHORITY_STATES)[number];

/** RFC 5280 CRLReason values an operator may give (certificateHold is left out: revocation is permanent). */
export const REVOCATION_REASONS = [
  'UNSPECIFIED',
  'KEY_COMPROMISE',
  'CA_COMPROMISE',
  'AFFILIATION_CHANGED',
  'SUPERSEDED',
  'CESSATION_OF_OPERATION',
  'PRIVILEGE_WITHDRAWN',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

export function checkRevocationReason(field: string, reason: string | undefined): RevocationReason {
  if (reason === undefined || reason === '') return 'UNSPECIFIED';
  if (!(REVOCATION_REASONS as readonly string[]).includes(reason)) {
    throw fieldError(field, `must be one of ${REVOCATION_REASONS.join(', ')}`);
  }
  return reason as RevocationReason;
}
