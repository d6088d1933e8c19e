/**
 * A typed client of the admin API over node:https (TLS 1.2+), used by the CLI and by
 * end-to-end tests. Plain HTTP is allowed to loopback addresses only.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { FieldViolation } from '../domain/errors.js';
import {
  parseDevice,
  parseLocation,
  parseRegistry,
  type DeviceName,
  type LocationName,
  type RegistryName,
} from '../domain/names.js';
import type {
  ApiDevice,
  ApiDeviceConfig,
  ApiDeviceInput,
  ApiDeviceRegistry,
  ApiDeviceRegistryInput,
  ApiUploadCrlResponse,
  ApiDeviceState,
  ApiErrorEnvelope,
  ApiListDeviceConfigVersionsResponse,
  ApiListDeviceRegistriesResponse,
  ApiListDevicesResponse,
  ApiListDeviceStatesResponse,
  ApiDeviceCertificate,
  ApiListDeviceCertificatesResponse,
} from './wire-types.js';
import type {
  ApiCertificateAuthority,
  ApiCertificateRecord,
  ApiCreateCertificateAuthorityRequest,
  ApiIssuedCertificate,
  ApiListCertificateAuthoritiesResponse,
} from './authority-wire.js';
import type { ApiListAuditEntriesResponse, ApiVerifyAuditResponse } from './audit-routes.js';
import type { ApiEffectivePolicy, ApiPolicy, ApiPolicyAttachment, ApiPolicyDecision, ApiPolicyVersion } from './policy-routes.js';
import type { PolicyLintFinding } from '../policy/index.js';
import type { ApiServiceAccount, ApiServiceAccountKey, ApiServicePublicKey } from './service-account-routes.js';

export type { ApiServiceAccount, ApiServiceAccountKey, ApiServicePublicKey } from './service-account-routes.js';
/** The writable fields of a service account. */
export type ApiServiceAccountInput = Pick<ApiServiceAccount, 'displayName' | 'bindings' | 'disabled'>;

export interface AdminClientOptions {
  /** e.g. `https://localhost:9443`. */
  readonly baseUrl: string;
  /** The admin token, sent as `Authorization: Bearer …`. */
  readonly token: string;
  /** PEM certificate(s) to trust instead of the system store (the development CA). */
  readonly ca?: string;
  readonly timeoutMs?: number;
}

/** The API answered with an error envelope (or something else that was not 2xx). */
export class ApiClientError extends Error {
  override readonly name = 'ApiClientError';
  constructor(
    readonly httpStatus: number,
    /** The google.rpc status name, e.g. `INVALID_ARGUMENT`. */
    readonly status: string,
    message: string,
    readonly fieldViolations: readonly FieldViolation[] = [],
  ) {
    super(message);
  }
}

export type ConnectionFailure = 'unreachable' | 'tls' | 'timeout';

/** No answer from the API (at `url`, its base URL): nothing listening, a name that does not resolve, an untrusted certificate. */
export class ApiConnectionError extends Error {
  override readonly name = 'ApiConnectionError';
  constructor(
    readonly kind: ConnectionFailure,
    readonly url: string,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

export interface PageOptions {
  readonly pageSize?: number;
  readonly pageToken?: string;
}

export interface ListDevicesOptions extends PageOptions {
  readonly deviceIds?: readonly string[];
  readonly deviceNumIds?: readonly string[];
  /** Device fields to return beside id, name and numId (snake_case or lowerCamelCase). */
  readonly fieldMask?: readonly string[];
  /**
   * At most one: only gateways or only non-gateways, the devices bound to a gateway, or the
   * gateways a device is bound to (ids or numeric ids). The server refuses more than one.
   */
  readonly gatewayListOptions?: {
    readonly gatewayType?: 'GATEWAY' | 'NON_GATEWAY';
    readonly associationsGatewayId?: string;
    readonly associationsDeviceId?: string;
  };
}

export interface AuditListOptions extends PageOptions {
  readonly start?: string;
  readonly end?: string;
  readonly device?: string;
  readonly actor?: string;
  readonly outcome?: string;
  readonly kind?: string;
}

type Name<T> = T | string;

const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS|ERR_SSL|EPROTO/;

const seg = encodeURIComponent;
const locationPath = (n: LocationName): string => `projects/${seg(n.project)}/locations/${seg(n.location)}`;
const registryPath = (n: RegistryName): string => `${locationPath(n)}/registries/${seg(n.registry)}`;
const devicePath = (n: DeviceName): string => `${registryPath(n)}/devices/${seg(n.device)}`;

const asLocation = (n: Name<LocationName>): LocationName => (typeof n === 'string' ? parseLocation(n) : n);
const asRegistry = (n: Name<RegistryName>): RegistryName => (typeof n === 'string' ? parseRegistry(n) : n);
const asDevice = (n: Name<DeviceName>): DeviceName => (typeof n === 'string' ? parseDevice(n) : n);

/** Every item of a paged list, following page tokens. */
async function allPages<P extends { readonly nextPageToken?: string }, T>(
  fetchPage: (pageToken: string | undefined) => Promise<P>,
  itemsOf: (page: P) => readonly T[] | undefined,
): Promise<T[]> {
  const all: T[] = [];
  let pageToken: string | undefined;
  do {
    const page = await fetchPage(pageToken);
    all.push(...(itemsOf(page) ?? []));
    pageToken = page.nextPageToken;
  } while (pageToken);
  return all;
}

function queryString(params: Record<string, string | number | readonly string[] | undefined>): string {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value as readonly string[]) q.append(key, v);
    else q.append(key, String(value));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

function errorFromResponse(httpStatus: number, text: string): ApiClientError {
  try {
    const { error } = JSON.parse(text) as ApiErrorEnvelope;
    const violations = (error.details ?? []).flatMap((d) => d.fieldViolations ?? []);
    return new ApiClientError(httpStatus, error.status, error.message, violations);
  } catch {
    return new ApiClientError(httpStatus, 'UNKNOWN', `HTTP ${httpStatus} without an error envelope`);
  }
}

export class AdminClient {
  readonly #base: URL;
  readonly #token: string;
  readonly #ca: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: AdminClientOptions) {
    let base: URL;
    try {
      base = new URL(options.baseUrl);
    } catch {
      throw new Error(`'${options.baseUrl}' is not a URL`);
    }
    if (base.protocol !== 'https:' && !(base.protocol === 'http:' && LOOPBACK.has(base.hostname))) {
      throw new Error(`the admin API URL must be https:// (plain http:// only to localhost), not '${options.baseUrl}'`);
    }
    this.#base = base;
    this.#token = options.token;
    this.#ca = options.ca;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  get baseUrl(): string {
    return this.#base.toString();
  }

  // -- Registries ------------------------------------------------------------------------------

  createRegistry(parent: Name<LocationName>, registry: ApiDeviceRegistryInput & { readonly id: string }): Promise<ApiDeviceRegistry> {
    return this.#call('POST', `/v1/${locationPath(asLocation(parent))}/registries`, registry);
  }

  getRegistry(name: Name<RegistryName>): Promise<ApiDeviceRegistry> {
    return this.#call('GET', `/v1/${registryPath(asRegistry(name))}`);
  }

  listRegistries(parent: Name<LocationName>, page: PageOptions = {}): Promise<ApiListDeviceRegistriesResponse> {
    const q = queryString({ pageSize: page.pageSize, pageToken: page.pageToken });
    return this.#call('GET', `/v1/${locationPath(asLocation(parent))}/registries${q}`);
  }

  /** Every registry of the location, following page tokens. */
  listAllRegistries(parent: Name<LocationName>): Promise<ApiDeviceRegistry[]> {
    return allPages(
      (pageToken) => this.listRegistries(parent, { pageSize: 500, ...(pageToken ? { pageToken } : {}) }),
      (page) => page.deviceRegistries,
    );
  }

  patchRegistry(name: Name<RegistryName>, registry: ApiDeviceRegistryInput, updateMask: readonly string[]): Promise<ApiDeviceRegistry> {
    return this.#call('PATCH', `/v1/${registryPath(asRegistry(name))}${queryString({ updateMask: updateMask.join(',') })}`, registry);
  }

  /** Keyway extension: a CRL (PEM or base64 DER) from one of the registry's CAs. */
  uploadRegistryCrl(name: Name<RegistryName>, crl: string): Promise<ApiUploadCrlResponse> {
    return this.#call('POST', `/v1/${registryPath(asRegistry(name))}:uploadCrl`, { crl });
  }

  async deleteRegistry(name: Name<RegistryName>): Promise<void> {
    await this.#call('DELETE', `/v1/${registryPath(asRegistry(name))}`);
  }

  // -- Devices ---------------------------------------------------------------------------------

  createDevice(parent: Name<RegistryName>, device: ApiDeviceInput & { readonly id: string }): Promise<ApiDevice> {
    return this.#call('POST', `/v1/${registryPath(asRegistry(parent))}/devices`, device);
  }

  /** `name.device` may be the id or the numeric id. */
  getDevice(name: Name<DeviceName>, fieldMask?: readonly string[]): Promise<ApiDevice> {
    const q = queryString({ fieldMask: fieldMask?.length ? fieldMask.join(',') : undefined });
    return this.#call('GET', `/v1/${devicePath(asDevice(name))}${q}`);
  }

  listDevices(parent: Name<RegistryName>, options: ListDevicesOptions = {}): Promise<ApiListDevicesResponse> {
    const q = queryString({
      deviceIds: options.deviceIds,
      deviceNumIds: options.deviceNumIds,
      fieldMask: options.fieldMask?.length ? options.fieldMask.join(',') : undefined,
      'gatewayListOptions.gatewayType': options.gatewayListOptions?.gatewayType,
      'gatewayListOptions.associationsGatewayId': options.gatewayListOptions?.associationsGatewayId,
      'gatewayListOptions.associationsDeviceId': options.gatewayListOptions?.associationsDeviceId,
      pageSize: options.pageSize,
      pageToken: options.pageToken,
    });
    return this.#call('GET', `/v1/${registryPath(asRegistry(parent))}/devices${q}`);
  }

  /** Every matching device of the registry, following page tokens. */
  listAllDevices(parent: Name<RegistryName>, options: Omit<ListDevicesOptions, 'pageToken'> = {}): Promise<ApiDevice[]> {
    return allPages(
      (pageToken) => this.listDevices(parent, { pageSize: 500, ...options, ...(pageToken ? { pageToken } : {}) }),
      (page) => page.devices,
    );
  }

  patchDevice(name: Name<DeviceName>, device: ApiDeviceInput, updateMask: readonly string[]): Promise<ApiDevice> {
    return this.#call('PATCH', `/v1/${devicePath(asDevice(name))}${queryString({ updateMask: updateMask.join(',') })}`, device);
  }

  async deleteDevice(name: Name<DeviceName>): Promise<void> {
    await this.#call('DELETE', `/v1/${devicePath(asDevice(name))}`);
  }

  /** `versionToUpdate` 0 or absent updates unconditionally. */
  modifyCloudToDeviceConfig(name: Name<DeviceName>, binaryData: Buffer, versionToUpdate?: number | string): Promise<ApiDeviceConfig> {
    return this.#call('POST', `/v1/${devicePath(asDevice(name))}:modifyCloudToDeviceConfig`, {
      binaryData: binaryData.toString('base64'),
      ...(versionToUpdate !== undefined ? { versionToUpdate: String(versionToUpdate) } : {}),
    });
  }

  async sendCommandToDevice(name: Name<DeviceName>, binaryData: Buffer, subfolder?: string): Promise<void> {
    await this.#call('POST', `/v1/${devicePath(asDevice(name))}:sendCommandToDevice`, {
      binaryData: binaryData.toString('base64'),
      ...(subfolder ? { subfolder } : {}),
    });
  }

  /** Newest first; `numVersions` 0 or absent returns all kept. */
  async listConfigVersions(name: Name<DeviceName>, numVersions?: number): Promise<ApiDeviceConfig[]> {
    const q = queryString({ numVersions });
    const r = await this.#call<ApiListDeviceConfigVersionsResponse>('GET', `/v1/${devicePath(asDevice(name))}/configVersions${q}`);
    return [...(r.deviceConfigs ?? [])];
  }

  /** Newest first; `numStates` 0 or absent returns all kept. */
  async listStates(name: Name<DeviceName>, numStates?: number): Promise<ApiDeviceState[]> {
    const q = queryString({ numStates });
    const r = await this.#call<ApiListDeviceStatesResponse>('GET', `/v1/${devicePath(asDevice(name))}/states${q}`);
    return [...(r.deviceStates ?? [])];
  }

  // -- Gateways --------------------------------------------------------------------------------

  /** Either id may be a numeric id; binding twice changes nothing. */
  async bindDeviceToGateway(parent: Name<RegistryName>, gatewayId: string, deviceId: string): Promise<void> {
    await this.#call('POST', `/v1/${registryPath(asRegistry(parent))}:bindDeviceToGateway`, { gatewayId, deviceId });
  }

  /** NOT_FOUND when the device is not bound to the gateway. */
  async unbindDeviceFromGateway(parent: Name<RegistryName>, gatewayId: string, deviceId: string): Promise<void> {
    await this.#call('POST', `/v1/${registryPath(asRegistry(parent))}:unbindDeviceFromGateway`, { gatewayId, deviceId });
  }

  // -- Device certificates ---------------------------------------------------------------------

  /** `certificatePem`: the device's certificate, optionally followed by its intermediates. */
  registerDeviceCertificate(name: Name<DeviceName>, certificatePem: string, state: 'ACTIVE' | 'INACTIVE' = 'ACTIVE'): Promise<ApiDeviceCertificate> {
    return this.#call('POST', `/v1/${devicePath(asDevice(name))}/certificates`, { certificatePem, state });
  }

  async listDeviceCertificates(name: Name<DeviceName>): Promise<ApiDeviceCertificate[]> {
    const r = await this.#call<ApiListDeviceCertificatesResponse>('GET', `/v1/${devicePath(asDevice(name))}/certificates`);
    return [...(r.deviceCertificates ?? [])];
  }

  getDeviceCertificate(name: Name<DeviceName>, fingerprint: string): Promise<ApiDeviceCertificate> {
    return this.#call('GET', `/v1/${devicePath(asDevice(name))}/certificates/${seg(fingerprint)}`);
  }

  updateDeviceCertificateState(name: Name<DeviceName>, fingerprint: string, state: string): Promise<ApiDeviceCertificate> {
    return this.#call('PATCH', `/v1/${devicePath(asDevice(name))}/certificates/${seg(fingerprint)}?updateMask=state`, { state });
  }

  async deleteDeviceCertificate(name: Name<DeviceName>, fingerprint: string): Promise<void> {
    await this.#call('DELETE', `/v1/${devicePath(asDevice(name))}/certificates/${seg(fingerprint)}`);
  }

  // -- Certificate authorities ---------------------------------------------------------------

  createAuthority(parent: Name<LocationName>, request: ApiCreateCertificateAuthorityRequest): Promise<ApiCertificateAuthority> {
    return this.#call('POST', `/v1/${locationPath(asLocation(parent))}/authorities`, request);
  }

  async listAuthorities(parent: Name<LocationName>): Promise<ApiCertificateAuthority[]> {
    const r = await this.#call<ApiListCertificateAuthoritiesResponse>('GET', `/v1/${locationPath(asLocation(parent))}/authorities`);
    return [...(r.authorities ?? [])];
  }

  getAuthority(parent: Name<LocationName>, id: string): Promise<ApiCertificateAuthority> {
    return this.#call('GET', `/v1/${locationPath(asLocation(parent))}/authorities/${seg(id)}`);
  }

  revokeAuthority(parent: Name<LocationName>, id: string, reason?: string): Promise<ApiCertificateAuthority> {
    return this.#call('POST', `/v1/${locationPath(asLocation(parent))}/authorities/${seg(id)}:revoke`, reason ? { reason } : {});
  }

  issueCertificate(
    parent: Name<LocationName>,
    id: string,
    request: { readonly csr: string; readonly deviceId?: string; readonly validityDays?: number },
  ): Promise<ApiIssuedCertificate> {
    return this.#call('POST', `/v1/${locationPath(asLocation(parent))}/authorities/${seg(id)}:issueCertificate`, request);
  }

  revokeCertificate(parent: Name<LocationName>, id: string, serialNumber: string, reason?: string): Promise<ApiCertificateRecord> {
    return this.#call('POST', `/v1/${locationPath(asLocation(parent))}/authorities/${seg(id)}:revokeCertificate`, {
      serialNumber,
      ...(reason ? { reason } : {}),
    });
  }

  /** The CA's CRL: PEM text, or DER bytes with `der`. */
  crl(parent: Name<LocationName>, id: string, format: 'pem' | 'der' = 'pem'): Promise<Buffer> {
    const q = queryString({ format: format === 'der' ? 'der' : undefined });
    return this.#call('GET', `/v1/${locationPath(asLocation(parent))}/authorities/${seg(id)}/crl${q}`, undefined, true);
  }

  // -- Audit log -------------------------------------------------------------------------------

  /** One page of audit entries, oldest first; `start`/`end` are RFC 3339, `device` a device's full name. */
  listAuditEntries(options: AuditListOptions = {}): Promise<ApiListAuditEntriesResponse> {
    return this.#call('GET', `/v1/audit/entries${queryString({ ...options })}`);
  }

  verifyAudit(): Promise<ApiVerifyAuditResponse> {
    return this.#call('GET', '/v1/audit:verify');
  }

  // -- Device policies -----------------------------------------------------------------------

  createPolicy(parent: Name<RegistryName>, id: string, document: unknown, force = false): Promise<ApiPolicy> {
    return this.#call('POST', `/v1/${registryPath(asRegistry(parent))}/policies`, { id, document, ...(force ? { force } : {}) });
  }

  listPolicies(parent: Name<RegistryName>): Promise<ApiPolicy[]> {
    return allPages(
      (pageToken) =>
        this.#call<{ policies?: ApiPolicy[]; nextPageToken?: string }>('GET', `/v1/${registryPath(asRegistry(parent))}/policies${queryString({ pageToken })}`),
      (page) => page.policies,
    );
  }

  getPolicy(parent: Name<RegistryName>, id: string): Promise<ApiPolicy> {
    return this.#call('GET', `/v1/${registryPath(asRegistry(parent))}/policies/${seg(id)}`);
  }

  async deletePolicy(parent: Name<RegistryName>, id: string): Promise<void> {
    await this.#call('DELETE', `/v1/${registryPath(asRegistry(parent))}/policies/${seg(id)}`);
  }

  createPolicyVersion(
    parent: Name<RegistryName>,
    id: string,
    document: unknown,
    options: { readonly setAsDefault?: boolean; readonly force?: boolean } = {},
  ): Promise<ApiPolicyVersion> {
    return this.#call('POST', `/v1/${registryPath(asRegistry(parent))}/policies/${seg(id)}/versions`, { document, ...options });
  }

  async listPolicyVersions(parent: Name<RegistryName>, id: string): Promise<ApiPolicyVersion[]> {
    const r = await this.#call<{ versions?: ApiPolicyVersion[] }>('GET', `/v1/${registryPath(asRegistry(parent))}/policies/${seg(id)}/versions`);
    return r.versions ?? [];
  }

  async deletePolicyVersion(parent: Name<RegistryName>, id: string, version: number): Promise<void> {
    await this.#call('DELETE', `/v1/${registryPath(asRegistry(parent))}/policies/${seg(id)}/versions/${version}`);
  }

  setDefaultPolicyVersion(parent: Name<RegistryName>, id: string, version: number): Promise<ApiPolicy> {
    return this.#call('POST', `/v1/${registryPath(asRegistry(parent))}/policies/${seg(id)}:setDefaultVersion`, { version });
  }

  /** `target`: `{registry: true}`, `{deviceId}` or `{deviceType}`. */
  attachPolicy(parent: Name<RegistryName>, id: string, target: Record<string, unknown>): Promise<ApiPolicyAttachment> {
    return this.#call('POST', `/v1/${registryPath(asRegistry(parent))}/policies/${seg(id)}:attach`, { target });
  }

  async detachPolicy(parent: Name<RegistryName>, id: string, target: Record<string, unknown>): Promise<void> {
    await this.#call('POST', `/v1/${registryPath(asRegistry(parent))}/policies/${seg(id)}:detach`, { target });
  }

  async listPolicyAttachments(parent: Name<RegistryName>, id: string): Promise<ApiPolicyAttachment[]> {
    const r = await this.#call<{ attachments?: ApiPolicyAttachment[] }>(
      'GET',
      `/v1/${registryPath(asRegistry(parent))}/policies/${seg(id)}/attachments`,
    );
    return r.attachments ?? [];
  }

  async lintPolicy(parent: Name<RegistryName>, document: unknown): Promise<PolicyLintFinding[]> {
    const r = await this.#call<{ findings?: PolicyLintFinding[] }>('POST', `/v1/${registryPath(asRegistry(parent))}/policies:lint`, { document });
    return r.findings ?? [];
  }

  async effectivePolicies(name: Name<DeviceName>): Promise<ApiEffectivePolicy[]> {
    const r = await this.#call<{ policies?: ApiEffectivePolicy[] }>('GET', `/v1/${devicePath(asDevice(name))}/policies`);
    return r.policies ?? [];
  }

  testDevicePolicy(
    name: Name<DeviceName>,
    request: { readonly action: string; readonly resource: string; readonly certificateFingerprint?: string },
  ): Promise<ApiPolicyDecision> {
    return this.#call('POST', `/v1/${devicePath(asDevice(name))}:testPolicy`, request);
  }

  // -- Service accounts ------------------------------------------------------------------------

  createServiceAccount(project: string, account: ApiServiceAccountInput & { readonly id: string }): Promise<ApiServiceAccount> {
    return this.#call('POST', `/v1/projects/${seg(project)}/serviceAccounts`, account);
  }

  async listServiceAccounts(project: string): Promise<ApiServiceAccount[]> {
    const r = await this.#call<{ serviceAccounts?: ApiServiceAccount[] }>('GET', `/v1/projects/${seg(project)}/serviceAccounts`);
    return r.serviceAccounts ?? [];
  }

  getServiceAccount(project: string, id: string): Promise<ApiServiceAccount> {
    return this.#call('GET', `/v1/projects/${seg(project)}/serviceAccounts/${seg(id)}`);
  }

  /** Updates the fields named in `updateMask` (displayName, bindings, disabled). */
  updateServiceAccount(project: string, id: string, account: ApiServiceAccountInput, updateMask: readonly string[]): Promise<ApiServiceAccount> {
    const q = new URLSearchParams({ updateMask: updateMask.join(',') });
    return this.#call('PATCH', `/v1/projects/${seg(project)}/serviceAccounts/${seg(id)}?${q.toString()}`, account);
  }

  async deleteServiceAccount(project: string, id: string): Promise<void> {
    await this.#call('DELETE', `/v1/projects/${seg(project)}/serviceAccounts/${seg(id)}`);
  }

  /** The answer holds the key itself (`apiKey`), once. `validForSeconds` defaults to 90 days on the server. */
  createServiceAccountKey(project: string, id: string, validForSeconds?: number): Promise<ApiServiceAccountKey> {
    return this.#call('POST', `/v1/projects/${seg(project)}/serviceAccounts/${seg(id)}/keys`, validForSeconds === undefined ? {} : { validFor: `${validForSeconds}s` });
  }

  async listServiceAccountKeys(project: string, id: string): Promise<ApiServiceAccountKey[]> {
    const r = await this.#call<{ keys?: ApiServiceAccountKey[] }>('GET', `/v1/projects/${seg(project)}/serviceAccounts/${seg(id)}/keys`);
    return r.keys ?? [];
  }

  async deleteServiceAccountKey(project: string, id: string, keyId: string): Promise<void> {
    await this.#call('DELETE', `/v1/projects/${seg(project)}/serviceAccounts/${seg(id)}/keys/${seg(keyId)}`);
  }

  addServiceAccountPublicKey(project: string, id: string, publicKey: { format: string; key: string }, expirationTime?: string): Promise<ApiServicePublicKey> {
    return this.#call('POST', `/v1/projects/${seg(project)}/serviceAccounts/${seg(id)}/publicKeys`, {
      publicKey,
      ...(expirationTime !== undefined ? { expirationTime } : {}),
    });
  }

  async listServiceAccountPublicKeys(project: string, id: string): Promise<ApiServicePublicKey[]> {
    const r = await this.#call<{ publicKeys?: ApiServicePublicKey[] }>('GET', `/v1/projects/${seg(project)}/serviceAccounts/${seg(id)}/publicKeys`);
    return r.publicKeys ?? [];
  }

  async removeServiceAccountPublicKey(project: string, id: string, keyId: string): Promise<void> {
    await this.#call('DELETE', `/v1/projects/${seg(project)}/serviceAccounts/${seg(id)}/publicKeys/${seg(keyId)}`);
  }

  // -- Service ---------------------------------------------------------------------------------

  health(): Promise<{ status: string }> {
    return this.#call('GET', '/healthz');
  }

  openApi(): Promise<Record<string, unknown>> {
    return this.#call('GET', '/v1/openapi.json');
  }

  // -- Transport -------------------------------------------------------------------------------

  /** `raw`: the body as bytes (a CRL), not JSON. */
  #call<T>(method: string, path: string, body?: unknown, raw = false): Promise<T> {
    const url = new URL(this.#base.pathname.replace(/\/$/, '') + path, this.#base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#token}`,
      accept: 'application/json',
      ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
    };
    const shownUrl = `${url.origin}${url.pathname}`;
    const apiUrl = this.#base.toString().replace(/\/$/, '');
    return new Promise<T>((resolve, reject) => {
      const onResponse = (res: IncomingMessage): void => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            res.destroy(new Error(`response from ${shownUrl} exceeds ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            reject(errorFromResponse(status, text));
            return;
          }
          try {
            resolve((raw ? Buffer.concat(chunks) : text ? JSON.parse(text) : {}) as T);
          } catch {
            reject(new ApiClientError(status, 'UNKNOWN', `the response from ${shownUrl} is not JSON`));
          }
        });
      };
      const options = { method, headers, timeout: this.#timeoutMs };
      const req =
        url.protocol === 'https:'
          ? httpsRequest(url, { ...options, minVersion: 'TLSv1.2', ...(this.#ca ? { ca: this.#ca } : {}) }, onResponse)
          : httpRequest(url, options, onResponse);
      req.on('timeout', () => {
        req.destroy(new ApiConnectionError('timeout', apiUrl, `no answer from ${apiUrl} within ${this.#timeoutMs} ms`, 'ETIMEDOUT'));
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e instanceof ApiConnectionError) return reject(e);
        const code = e.code ?? '';
        const kind: ConnectionFailure = TLS_CODES.test(code) ? 'tls' : 'unreachable';
        reject(new ApiConnectionError(kind, apiUrl, e.message, code || undefined));
      });
      req.end(payload);
    });
  }
}
