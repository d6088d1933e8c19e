/**
 * Service accounts: identities for backends and operators, with role bindings, API keys, and
 * public keys for self-signed JWTs (identity/service-jwt.ts).
 * Keys are shown once and stored as hashes; authentication refuses an unknown, revoked or expired
 * key and a key of a disabled account, without saying which to the caller. Last-used times are
 * kept in memory and written behind, so a busy backend costs no write per request.
 */
import { fieldError, KeywayError } from '../domain/errors.js';
import { isProjectId, isResourceId } from '../domain/names.js';
import type { ServiceIdentityChanged } from '../bus/bus.js';
import { formatScope, registryReach, type Principal, type RegistryReach, type RoleBinding } from '../domain/roles.js';
import { apiKeyId, generateApiKey, verifyApiKey } from '../identity/api-key.js';
import { randomBytes } from 'node:crypto';
import { PUBLIC_KEY_FORMATS, type PublicKeyFormat } from '../domain/resources.js';
import { parseCredentialKey, type CredentialKey } from '../identity/public-key.js';
import { JWT_CLOCK_SKEW_SECONDS } from '../identity/device-jwt.js';
import { claimedServiceAccount, looksLikeJwt, verifyServiceJwt } from '../identity/service-jwt.js';

export { API_KEY_PREFIX } from '../identity/api-key.js';
export { looksLikeJwt } from '../identity/service-jwt.js';
export type { ApiKeyRecord, ServiceAccountRecord, ServicePublicKeyRecord } from '../store/service-account-store.js';
import type { ApiKeyRecord, ServiceAccountRecord, ServiceAccountStore, ServicePublicKeyRecord } from '../store/service-account-store.js';

export const DEFAULT_KEY_LIFETIME_MS = 90 * 24 * 3600_000;
export const MAX_KEY_LIFETIME_MS = 366 * 24 * 3600_000;
/** More keys than this per account is a leak waiting to happen; rotate instead. */
export const MAX_KEYS_PER_ACCOUNT = 10;
export const MAX_BINDINGS = 50;
/** As for device credentials: room to rotate, not to collect. */
export const MAX_PUBLIC_KEYS_PER_ACCOUNT = 3;
/**
 * How a JWT login's key appears in principals, audit entries and `ServiceIdentityChanged`:
 * `publicKeys/{id}`, so it is never mistaken for an API key id.
 */
export const publicKeyPrincipalId = (keyId: string): string => `publicKeys/${keyId}`;

export interface PublicKeyInput {
  readonly format: string;
  readonly key: string;
  readonly expiresAt?: Date;
}
export const MAX_DISPLAY_NAME = 100;
/** How often pending last-used times are written. */
export const LAST_USED_FLUSH_MS = 30_000;

export interface ServiceAccountInput {
  readonly displayName?: string;
  readonly bindings?: readonly RoleBinding[];
  readonly disabled?: boolean;
}

/** The answer to a backend's MQTT login. */
export type BackendLogin =
  | {
      readonly ok: true;
      readonly principal: { readonly project: string; readonly id: string; readonly keyId: string };
      readonly reach: RegistryReach;
      readonly expiresAt?: Date;
    }
  | { readonly ok: false; readonly reason: string };

export interface CreatedApiKey {
  readonly record: ApiKeyRecord;
  /** The whole key: returned once, never stored. */
  readonly key: string;
}

export type AuthenticationResult =
  | { readonly ok: true; readonly principal: Extract<Principal, { kind: 'serviceAccount' }>; readonly expiresAt?: Date }
  | {
      readonly ok: false;
      readonly reason: 'malformed' | 'unknown' | 'mismatch' | 'expired' | 'disabled' | 'invalid-token';
      /** Why a JWT was refused, for logs and the audit log. */
      readonly detail?: string;
    };

const notFound = (project: string, id: string): KeywayError =>
  new KeywayError('NOT_FOUND', `Service account projects/${project}/serviceAccounts/${id} not found`);

function checkIds(project: string, id: string): void {
  if (!isProjectId(project)) throw fieldError('project', `'${project}' is not a valid project id`);
  if (!isResourceId(id)) throw fieldError('id', `'${id}' is not a valid service account id`);
}

/**
 * Bindings must stay within the account's project; a binding on every project (`*`) may be
 * granted only by a caller who holds that scope itself (the bootstrap admin), so a project admin
 * cannot mint a cross-tenant identity.
 */
function checkBindings(project: string, bindings: readonly RoleBinding[], grantor: Principal): void {
  if (bindings.length > MAX_BINDINGS) throw fieldError('bindings', `at most ${MAX_BINDINGS} bindings`);
  bindings.forEach((b, i) => {
    if (b.scope.kind === 'global') {
      const grantorIsGlobalAdmin =
        grantor.kind === 'bootstrap' || grantor.bindings.some((g) => g.role === 'admin' && g.scope.kind === 'global');
      if (!grantorIsGlobalAdmin) {
        throw new KeywayError('PERMISSION_DENIED', `bindings[${i}]: only a global admin may grant a role on every project`);
      }
    } else if (b.scope.project !== project) {
      throw fieldError(`bindings[${i}].scope`, `'${formatScope(b.scope)}' is outside project '${project}'`);
    }
  });
}

function checkDisplayName(name: string | undefined): void {
  if (name !== undefined && name.length > MAX_DISPLAY_NAME) throw fieldError('displayName', `at most ${MAX_DISPLAY_NAME} characters`);
}

export class ServiceAccountService {
  readonly #store: ServiceAccountStore;
  readonly #now: () => Date;
  #pendingUse = new Map<string, Date>();
  #flushing: Promise<void> = Promise.resolve();
  readonly #timer: NodeJS.Timeout;

  /** Tells live connections that an account's rights changed (the broker ends them). */
  readonly #changed: (event: ServiceIdentityChanged) => void;

  constructor(o: {
    store: ServiceAccountStore;
    now?: () => Date;
    flushEveryMs?: number;
    bus?: { publishServiceIdentityChanged(event: ServiceIdentityChanged): void };
  }) {
    this.#store = o.store;
    const bus = o.bus;
    this.#changed = bus ? (event) => bus.publishServiceIdentityChanged(event) : () => undefined;
    this.#now = o.now ?? (() => new Date());
    this.#timer = setInterval(() => void this.flush().catch(() => undefined), o.flushEveryMs ?? LAST_USED_FLUSH_MS);
    this.#timer.unref();
  }

  async create(project: string, id: string, input: ServiceAccountInput, grantor: Principal): Promise<ServiceAccountRecord> {
    checkIds(project, id);
    checkDisplayName(input.displayName);
    const bindings = input.bindings ?? [];
    checkBindings(project, bindings, grantor);
    const account: ServiceAccountRecord = {
      project,
      id,
      displayName: input.displayName ?? '',
      bindings,
      disabled: input.disabled ?? false,
      createdAt: this.#now(),
    };
    if ((await this.#store.insertAccount(account)) === 'exists') {
      throw new KeywayError('ALREADY_EXISTS', `Service account projects/${project}/serviceAccounts/${id} already exists`);
    }
    return account;
  }

  async get(project: string, id: string): Promise<ServiceAccountRecord> {
    checkIds(project, id);
    const account = await this.#store.getAccount(project, id);
    if (!account) throw notFound(project, id);
    return account;
  }

  list(project: string): Promise<ServiceAccountRecord[]> {
    if (!isProjectId(project)) throw fieldError('project', `'${project}' is not a valid project id`);
    return this.#store.listAccounts(project);
  }

  async update(project: string, id: string, input: ServiceAccountInput, grantor: Principal): Promise<ServiceAccountRecord> {
    checkIds(project, id);
    checkDisplayName(input.displayName);
    if (input.bindings) checkBindings(project, input.bindings, grantor);
    const account = await this.#store.updateAccount(project, id, input);
    if (!account) throw notFound(project, id);
    if (input.disabled === true) this.#changed({ project, account: id, reason: 'disabled' });
    else if (input.bindings !== undefined) this.#changed({ project, account: id, reason: 'bindings-changed' });
    return account;
  }

  async delete(project: string, id: string): Promise<void> {
    checkIds(project, id);
    if (!(await this.#store.deleteAccount(project, id))) throw notFound(project, id);
    this.#changed({ project, account: id, reason: 'deleted' });
  }

  /** A new key; `lifetimeMs` defaults to 90 days and may not exceed 366. */
  async createKey(project: string, id: string, lifetimeMs: number = DEFAULT_KEY_LIFETIME_MS): Promise<CreatedApiKey> {
    await this.get(project, id);
    if (!Number.isSafeInteger(lifetimeMs) || lifetimeMs <= 0 || lifetimeMs > MAX_KEY_LIFETIME_MS) {
      throw fieldError('validFor', `must be a positive duration of at most ${MAX_KEY_LIFETIME_MS / 86_400_000} days`);
    }
    if ((await this.#store.listKeys(project, id)).length >= MAX_KEYS_PER_ACCOUNT) {
      throw new KeywayError('FAILED_PRECONDITION', `A service account holds at most ${MAX_KEYS_PER_ACCOUNT} keys: revoke one first`);
    }
    const now = this.#now();
    const generated = generateApiKey();
    const record: ApiKeyRecord = {
      keyId: generated.keyId,
      project,
      accountId: id,
      hash: generated.hash,
      createdAt: now,
      expiresAt: new Date(now.getTime() + lifetimeMs),
    };
    if ((await this.#store.insertKey(record)) === 'no-account') throw notFound(project, id);
    return { record, key: generated.key };
  }

  /** With the last-used times still waiting to be written. */
  async listKeys(project: string, id: string): Promise<ApiKeyRecord[]> {
    await this.get(project, id);
    const keys = await this.#store.listKeys(project, id);
    return keys.map((k) => {
      const pending = this.#pendingUse.get(k.keyId);
      return pending && (!k.lastUsedAt || pending > k.lastUsedAt) ? { ...k, lastUsedAt: pending } : k;
    });
  }

  async revokeKey(project: string, id: string, keyId: string): Promise<void> {
    checkIds(project, id);
    if (!(await this.#store.deleteKey(project, id, keyId))) {
      throw new KeywayError('NOT_FOUND', `Key ${keyId} of service account projects/${project}/serviceAccounts/${id} not found`);
    }
    this.#pendingUse.delete(keyId);
    this.#changed({ project, account: id, keyId, reason: 'key-revoked' });
  }

  /** Adds a public key (RS256 RSA ≥ 2048 or ES256 P-256) the account may sign JWTs with; at most 3. */
  async addPublicKey(project: string, id: string, input: PublicKeyInput): Promise<ServicePublicKeyRecord> {
    await this.get(project, id);
    if (!(PUBLIC_KEY_FORMATS as readonly string[]).includes(input.format)) {
      throw fieldError('publicKey.format', `must be one of ${PUBLIC_KEY_FORMATS.join(', ')}`);
    }
    const parsed = parseCredentialKey(input.format as PublicKeyFormat, input.key);
    const now = this.#now();
    if (input.expiresAt !== undefined && input.expiresAt.getTime() <= now.getTime()) {
      throw fieldError('expirationTime', 'is in the past');
    }
    const record: ServicePublicKeyRecord = {
      keyId: randomBytes(8).toString('hex'),
      project,
      accountId: id,
      format: input.format,
      pem: input.key,
      fingerprint: parsed.fingerprint,
      createdAt: now,
      ...(input.expiresAt !== undefined ? { expiresAt: input.expiresAt } : {}),
    };
    switch (await this.#store.insertPublicKey(record, MAX_PUBLIC_KEYS_PER_ACCOUNT)) {
      case 'created':
        return record;
      case 'no-account':
        throw notFound(project, id);
      case 'duplicate':
        throw new KeywayError('ALREADY_EXISTS', `Service account projects/${project}/serviceAccounts/${id} already holds this public key`);
      case 'full':
        throw new KeywayError('FAILED_PRECONDITION', `A service account holds at most ${MAX_PUBLIC_KEYS_PER_ACCOUNT} public keys: remove one first`);
    }
  }

  async listPublicKeys(project: string, id: string): Promise<ServicePublicKeyRecord[]> {
    await this.get(project, id);
    return this.#store.listPublicKeys(project, id);
  }

  /** Tokens signed with the key are refused from now on, and connections that used one end. */
  async removePublicKey(project: string, id: string, keyId: string): Promise<void> {
    checkIds(project, id);
    if (!(await this.#store.deletePublicKey(project, id, keyId))) {
      throw new KeywayError('NOT_FOUND', `Public key ${keyId} of service account projects/${project}/serviceAccounts/${id} not found`);
    }
    this.#changed({ project, account: id, keyId: publicKeyPrincipalId(keyId), reason: 'key-revoked' });
  }

  /**
   * The account behind a JWT, verified against that account's unexpired public keys. `expected`
   * is the account the caller named (the MQTT user name); without it, the token's own `aud` and
   * `sub` name it, and the signature, made with a key of that very account, vouches for them.
   */
  async authenticateJwt(token: string, expected?: { project: string; account: string }): Promise<AuthenticationResult> {
    const claimed = expected ?? claimedServiceAccount(token);
    if (!claimed || !isProjectId(claimed.project) || !isResourceId(claimed.account)) return { ok: false, reason: 'malformed' };
    const account = await this.#store.getAccount(claimed.project, claimed.account);
    if (!account) return { ok: false, reason: 'unknown' };
    const now = this.#now();
    const records = (await this.#store.listPublicKeys(claimed.project, claimed.account)).filter(
      (k) => k.expiresAt === undefined || k.expiresAt.getTime() > now.getTime(),
    );
    const keys = new Map<CredentialKey, ServicePublicKeyRecord>();
    for (const r of records) {
      try {
        keys.set(parseCredentialKey(r.format as PublicKeyFormat, r.pem, 'publicKey.key', r.fingerprint), r);
      } catch {
        // Checked when stored; a key that no longer parses is simply not usable.
      }
    }
    const verified = await verifyServiceJwt(token, [...keys.keys()], claimed, now);
    if (!verified.ok) return { ok: false, reason: 'invalid-token', detail: verified.reason };
    if (account.disabled) return { ok: false, reason: 'disabled' };
    const key = keys.get(verified.key);
    if (!key) return { ok: false, reason: 'invalid-token', detail: 'no such key' };
    // As for device tokens, accepted until `exp` plus the skew, and never past the key's own expiry.
    let until = verified.expiresAt.getTime() + JWT_CLOCK_SKEW_SECONDS * 1000;
    if (key.expiresAt && key.expiresAt.getTime() < until) until = key.expiresAt.getTime();
    const { project, id, bindings } = account;
    return {
      ok: true,
      principal: { kind: 'serviceAccount', project, id, keyId: publicKeyPrincipalId(key.keyId), bindings },
      expiresAt: new Date(until),
    };
  }

  /** The account behind a presented API key (`kwk_…`) or JWT (told apart by shape), or why there is none. */
  async authenticate(presented: string): Promise<AuthenticationResult> {
    if (looksLikeJwt(presented)) return this.authenticateJwt(presented);
    const keyId = apiKeyId(presented);
    if (keyId === undefined) return { ok: false, reason: 'malformed' };
    const found = await this.#store.findKey(keyId);
    if (!found) return { ok: false, reason: 'unknown' };
    if (!verifyApiKey(presented, found.key.hash)) return { ok: false, reason: 'mismatch' };
    const now = this.#now();
    if (found.key.expiresAt && found.key.expiresAt.getTime() <= now.getTime()) return { ok: false, reason: 'expired' };
    if (found.account.disabled) return { ok: false, reason: 'disabled' };
    this.#pendingUse.set(keyId, now);
    const { project, id, bindings } = found.account;
    return {
      ok: true,
      principal: { kind: 'serviceAccount', project, id, keyId, bindings },
      ...(found.key.expiresAt ? { expiresAt: found.key.expiresAt } : {}),
    };
  }

  /**
   * An MQTT backend login (the broker's BackendAuthenticator): the user name must name the key's
   * own account as `{project}/{id}`, and the account must reach at least one registry.
   */
  async authenticateBackend(username: string, key: string): Promise<BackendLogin> {
    if (looksLikeJwt(key)) {
      // The user name picks the account; the token must name the same one (aud, sub) and be signed by its key.
      const slash = username.indexOf('/');
      const expected = slash < 0 ? undefined : { project: username.slice(0, slash), account: username.slice(slash + 1) };
      const result = expected ? await this.authenticateJwt(key, expected) : ({ ok: false, reason: 'malformed' } as const);
      if (!result.ok) return { ok: false, reason: `JWT refused (${result.detail ?? result.reason})` };
      return this.#backendLogin(username, result);
    }
    const result = await this.authenticate(key);
    if (!result.ok) return { ok: false, reason: `API key refused (${result.reason})` };
    return this.#backendLogin(username, result);
  }

  #backendLogin(username: string, result: Extract<AuthenticationResult, { ok: true }>): BackendLogin {
    const { project, id, keyId, bindings } = result.principal;
    if (username !== `${project}/${id}`) return { ok: false, reason: "the user name is not the key's service account ({project}/{id})" };
    const reach = registryReach(bindings);
    if (!reach.all && reach.projects.size === 0 && reach.registries.size === 0) return { ok: false, reason: 'the service account reaches no registry' };
    return { ok: true, principal: { project, id, keyId }, reach, ...(result.expiresAt ? { expiresAt: result.expiresAt } : {}) };
  }

  /** Writes pending last-used times. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      if (this.#pendingUse.size === 0) return;
      const batch = this.#pendingUse;
      this.#pendingUse = new Map();
      await this.#store.recordKeyUse(batch);
    });
    return this.#flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
