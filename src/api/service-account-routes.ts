/**
 * Keyway's service accounts (`/v1/projects/{project}/serviceAccounts…`): identities for backends
 * and operators, their role bindings and API keys. A key is returned once, by the call that
 * creates it; lists show its id, expiry and last use only. Public keys (`…/publicKeys`, at most 3)
 * let an account sign its own JWTs instead; they reuse the `serviceAccounts.keys.*` permissions.
 */
import { fieldError, KeywayError } from '../domain/errors.js';
import { formatScope, isRole, parseScope, ROLES, type RoleBinding } from '../domain/roles.js';
import type { ServiceAccountService } from '../registry/service-accounts.js';
import type { ApiKeyRecord, ServiceAccountRecord, ServicePublicKeyRecord } from '../registry/service-accounts.js';
import { parseMaskPaths } from './field-mask.js';
import { EmptySchema, enumOf, object, PublicKeyCredentialSchema, query, string, timestamp } from './json-schemas.js';
import { parseTimestamp, timestampToJson } from './proto-json.js';
import type { ApiRoute, RouteDeps } from './routes.js';

const ACCOUNTS = '/v1/projects/{project}/serviceAccounts';
const ACCOUNT = `${ACCOUNTS}/{account}`;
const KEYS = `${ACCOUNT}/keys`;
const PUBLIC_KEYS = `${ACCOUNT}/publicKeys`;
const operation = 'keyway.projects.serviceAccounts';
const UPDATABLE = ['displayName', 'bindings', 'disabled'] as const;

export interface ApiRoleBinding {
  readonly role: string;
  readonly scope: string;
}

export interface ApiServiceAccount {
  readonly name: string;
  readonly id: string;
  readonly displayName?: string;
  readonly bindings?: ApiRoleBinding[];
  readonly disabled?: boolean;
  readonly createTime?: string;
}

export interface ApiServiceAccountKey {
  readonly name: string;
  readonly keyId: string;
  readonly createTime: string;
  readonly expireTime?: string;
  readonly lastUseTime?: string;
  /** Only in the answer to the call that created the key. */
  readonly apiKey?: string;
}

const RoleBindingSchema = object('RoleBinding', { role: enumOf(ROLES), scope: string(512) }, ['role', 'scope']);

export interface ApiServicePublicKey {
  readonly name: string;
  readonly keyId: string;
  readonly publicKey: { readonly format: string; readonly key: string };
  /** SHA-256 hex of the SPKI DER, to match against the key a backend holds. */
  readonly fingerprint: string;
  readonly createTime: string;
  readonly expirationTime?: string;
}

const ServicePublicKeySchema = object('ServiceAccountPublicKey', {
  name: string(),
  keyId: string(32),
  publicKey: PublicKeyCredentialSchema,
  fingerprint: string(64),
  createTime: timestamp,
  expirationTime: timestamp,
});

const AddPublicKeyRequestSchema = object('AddServiceAccountPublicKeyRequest', { publicKey: PublicKeyCredentialSchema, expirationTime: timestamp }, ['publicKey']);

export function publicKeyToJson(k: ServicePublicKeyRecord): ApiServicePublicKey {
  return {
    name: `projects/${k.project}/serviceAccounts/${k.accountId}/publicKeys/${k.keyId}`,
    keyId: k.keyId,
    publicKey: { format: k.format, key: k.pem },
    fingerprint: k.fingerprint,
    createTime: timestampToJson(k.createdAt),
    ...(k.expiresAt ? { expirationTime: timestampToJson(k.expiresAt) } : {}),
  };
}

const ServiceAccountSchema = object('ServiceAccount', {
  name: string(),
  id: string(128),
  displayName: string(100),
  bindings: { type: 'array', maxItems: 50, items: RoleBindingSchema },
  disabled: { type: 'boolean' },
  createTime: timestamp,
});

const ServiceAccountKeySchema = object('ServiceAccountKey', {
  name: string(),
  keyId: string(32),
  createTime: timestamp,
  expireTime: timestamp,
  lastUseTime: timestamp,
  apiKey: string(128),
});

const CreateKeyRequestSchema = object('CreateServiceAccountKeyRequest', {
  // A protobuf Duration in seconds, e.g. "7776000s" for 90 days.
  validFor: { type: 'string', pattern: '^[0-9]{1,12}s$' },
});

const accountName = (a: { project: string; id: string }): string => `projects/${a.project}/serviceAccounts/${a.id}`;

export function serviceAccountToJson(a: ServiceAccountRecord): ApiServiceAccount {
  return {
    name: accountName(a),
    id: a.id,
    ...(a.displayName ? { displayName: a.displayName } : {}),
    ...(a.bindings.length ? { bindings: a.bindings.map((b) => ({ role: b.role, scope: formatScope(b.scope) })) } : {}),
    ...(a.disabled ? { disabled: true } : {}),
    createTime: timestampToJson(a.createdAt),
  };
}

export function keyToJson(k: ApiKeyRecord, apiKey?: string): ApiServiceAccountKey {
  return {
    name: `${accountName({ project: k.project, id: k.accountId })}/keys/${k.keyId}`,
    keyId: k.keyId,
    createTime: timestampToJson(k.createdAt),
    ...(k.expiresAt ? { expireTime: timestampToJson(k.expiresAt) } : {}),
    ...(k.lastUsedAt ? { lastUseTime: timestampToJson(k.lastUsedAt) } : {}),
    ...(apiKey !== undefined ? { apiKey } : {}),
  };
}

function bindingsFromJson(raw: readonly ApiRoleBinding[] | undefined): RoleBinding[] | undefined {
  return raw?.map((b, i) => {
    if (!isRole(b.role)) throw fieldError(`bindings[${i}].role`, `'${b.role}' is not a role: one of ${ROLES.join(', ')}`);
    return { role: b.role, scope: parseScope(b.scope, `bindings[${i}].scope`) };
  });
}

function accountsOf(deps: RouteDeps): ServiceAccountService {
  if (!deps.accounts) throw new KeywayError('UNIMPLEMENTED', 'This server has no service accounts.');
  return deps.accounts;
}

const p = (params: Readonly<Record<string, string>>, key: string): string => params[key] ?? '';

export const SERVICE_ACCOUNT_ROUTES: readonly ApiRoute[] = [
  {
    operationId: `${operation}.create`,
    permission: 'serviceAccounts.create',
    method: 'POST',
    path: ACCOUNTS,
    summary: 'Creates a service account with role bindings in its project (scope `*` only by the bootstrap admin).',
    body: { ...ServiceAccountSchema, required: ['id'] },
    response: ServiceAccountSchema,
    handle: async ({ params, body, principal }, deps) => {
      const b = body as ApiServiceAccount;
      const bindings = bindingsFromJson(b.bindings);
      return serviceAccountToJson(
        await accountsOf(deps).create(
          p(params, 'project'),
          b.id,
          { ...(b.displayName !== undefined ? { displayName: b.displayName } : {}), ...(bindings ? { bindings } : {}), ...(b.disabled !== undefined ? { disabled: b.disabled } : {}) },
          principal,
        ),
      );
    },
  },
  {
    operationId: `${operation}.list`,
    permission: 'serviceAccounts.list',
    method: 'GET',
    path: ACCOUNTS,
    summary: 'Lists the service accounts of a project.',
    response: object('ListServiceAccountsResponse', { serviceAccounts: { type: 'array', items: ServiceAccountSchema } }),
    handle: async ({ params }, deps) => {
      const accounts = await accountsOf(deps).list(p(params, 'project'));
      return accounts.length ? { serviceAccounts: accounts.map(serviceAccountToJson) } : {};
    },
  },
  {
    operationId: `${operation}.get`,
    permission: 'serviceAccounts.get',
    method: 'GET',
    path: ACCOUNT,
    summary: 'Gets a service account.',
    response: ServiceAccountSchema,
    handle: async ({ params }, deps) => serviceAccountToJson(await accountsOf(deps).get(p(params, 'project'), p(params, 'account'))),
  },
  {
    operationId: `${operation}.patch`,
    permission: 'serviceAccounts.update',
    method: 'PATCH',
    path: ACCOUNT,
    summary: `Updates the fields named in updateMask (${UPDATABLE.join(', ')}).`,
    query: { properties: { updateMask: query.string }, required: ['updateMask'] },
    body: ServiceAccountSchema,
    response: ServiceAccountSchema,
    handle: async ({ params, query: q, body, principal }, deps) => {
      const mask = parseMaskPaths(typeof q.updateMask === 'string' ? q.updateMask : undefined);
      if (mask.length === 0) throw fieldError('updateMask', 'name at least one field');
      for (const path of mask) {
        if (!(UPDATABLE as readonly string[]).includes(path)) throw fieldError('updateMask', `'${path}' cannot be updated: one of ${UPDATABLE.join(', ')}`);
      }
      const b = body as ApiServiceAccount;
      const bindings = mask.includes('bindings') ? (bindingsFromJson(b.bindings ?? []) ?? []) : undefined;
      return serviceAccountToJson(
        await accountsOf(deps).update(
          p(params, 'project'),
          p(params, 'account'),
          {
            ...(mask.includes('displayName') ? { displayName: b.displayName ?? '' } : {}),
            ...(bindings ? { bindings } : {}),
            ...(mask.includes('disabled') ? { disabled: b.disabled ?? false } : {}),
          },
          principal,
        ),
      );
    },
  },
  {
    operationId: `${operation}.delete`,
    permission: 'serviceAccounts.delete',
    method: 'DELETE',
    path: ACCOUNT,
    summary: 'Deletes a service account and all its keys.',
    response: EmptySchema,
    handle: async ({ params }, deps) => {
      await accountsOf(deps).delete(p(params, 'project'), p(params, 'account'));
      return {};
    },
  },
  {
    operationId: `${operation}.keys.create`,
    permission: 'serviceAccounts.keys.create',
    method: 'POST',
    path: KEYS,
    summary: 'Creates an API key (default lifetime 90 days, at most 366); the key is in this answer only.',
    body: CreateKeyRequestSchema,
    response: ServiceAccountKeySchema,
    handle: async ({ params, body }, deps) => {
      const validFor = (body as { validFor?: string } | undefined)?.validFor;
      const created = await accountsOf(deps).createKey(
        p(params, 'project'),
        p(params, 'account'),
        validFor === undefined ? undefined : Number(validFor.slice(0, -1)) * 1000,
      );
      return keyToJson(created.record, created.key);
    },
  },
  {
    operationId: `${operation}.keys.list`,
    permission: 'serviceAccounts.keys.list',
    method: 'GET',
    path: KEYS,
    summary: 'Lists the API keys of a service account: ids, expiry and last use, never the keys.',
    response: object('ListServiceAccountKeysResponse', { keys: { type: 'array', items: ServiceAccountKeySchema } }),
    handle: async ({ params }, deps) => {
      const keys = await accountsOf(deps).listKeys(p(params, 'project'), p(params, 'account'));
      return keys.length ? { keys: keys.map((k) => keyToJson(k)) } : {};
    },
  },
  {
    operationId: `${operation}.keys.delete`,
    permission: 'serviceAccounts.keys.delete',
    method: 'DELETE',
    path: `${KEYS}/{key}`,
    summary: 'Revokes an API key: requests and MQTT logins with it are refused from now on.',
    response: EmptySchema,
    handle: async ({ params }, deps) => {
      await accountsOf(deps).revokeKey(p(params, 'project'), p(params, 'account'), p(params, 'key'));
      return {};
    },
  },
  {
    operationId: `${operation}.publicKeys.create`,
    permission: 'serviceAccounts.keys.create',
    method: 'POST',
    path: PUBLIC_KEYS,
    summary: 'Adds a public key (RS256 RSA ≥ 2048 or ES256 P-256, at most 3 per account) that JWTs of the account may be signed with.',
    body: AddPublicKeyRequestSchema,
    response: ServicePublicKeySchema,
    handle: async ({ params, body }, deps) => {
      const b = body as { publicKey: { format: string; key: string }; expirationTime?: string };
      const expiresAt = b.expirationTime === undefined ? undefined : parseTimestamp('expirationTime', b.expirationTime);
      return publicKeyToJson(
        await accountsOf(deps).addPublicKey(p(params, 'project'), p(params, 'account'), {
          format: b.publicKey.format,
          key: b.publicKey.key,
          ...(expiresAt ? { expiresAt } : {}),
        }),
      );
    },
  },
  {
    operationId: `${operation}.publicKeys.list`,
    permission: 'serviceAccounts.keys.list',
    method: 'GET',
    path: PUBLIC_KEYS,
    summary: 'Lists the public keys of a service account.',
    response: object('ListServiceAccountPublicKeysResponse', { publicKeys: { type: 'array', items: ServicePublicKeySchema } }),
    handle: async ({ params }, deps) => {
      const keys = await accountsOf(deps).listPublicKeys(p(params, 'project'), p(params, 'account'));
      return keys.length ? { publicKeys: keys.map(publicKeyToJson) } : {};
    },
  },
  {
    operationId: `${operation}.publicKeys.delete`,
    permission: 'serviceAccounts.keys.delete',
    method: 'DELETE',
    path: `${PUBLIC_KEYS}/{key}`,
    summary: 'Removes a public key: tokens it signed are refused and MQTT connections that used one end.',
    response: EmptySchema,
    handle: async ({ params }, deps) => {
      await accountsOf(deps).removePublicKey(p(params, 'project'), p(params, 'account'), p(params, 'key'));
      return {};
    },
  },
];
