/**
 * The admin API's route table (reference §3.5): one entry per method with its path, query and
 * body schemas, response schema and handler. Fastify routes, the OpenAPI document and the
 * authentication tests are all driven from this table.
 */
import { fieldError } from '../domain/errors.js';
import { isNumId } from '../domain/names.js';
import { LIMITS, type PageRequest } from '../domain/resources.js';
import type { DeviceManager } from '../registry/device-manager.js';
import { applyMask, parseMaskPaths, resolveMask } from './field-mask.js';
import { DEVICE_CERTIFICATE_ROUTES } from './certificate-routes.js';
import { AUTHORITY_ROUTES } from './authority-routes.js';
import { AUDIT_ROUTES } from './audit-routes.js';
import { POLICY_ROUTES } from './policy-routes.js';
import type { PolicyService } from '../registry/policy-service.js';
import type { AuditReader } from '../audit/audit-log.js';
import type { CertificateAuthorities } from '../pki/certificate-authority-service.js';
import type { ServiceAccountService } from '../registry/service-accounts.js';
import type { Permission, Principal } from '../domain/roles.js';
import type { RoutePermission } from './permissions.js';
import { SERVICE_ACCOUNT_ROUTES } from './service-account-routes.js';
import { GATEWAY_LIST_QUERY, GATEWAY_ROUTES, gatewayListOptionsOf } from './gateway-routes.js';
import { DEVICE, deviceOf, LOCATION, locationOf, REGISTRY, registryOf } from './route-paths.js';
import {
  DeviceConfigSchema,
  DeviceRegistrySchema,
  DeviceSchema,
  EmptySchema,
  HealthSchema,
  ListDeviceConfigVersionsResponseSchema,
  ListDeviceRegistriesResponseSchema,
  ListDeviceStatesResponseSchema,
  ListDevicesResponseSchema,
  ModifyCloudToDeviceConfigRequestSchema,
  SendCommandToDeviceRequestSchema,
  UploadCrlRequestSchema,
  UploadCrlResponseSchema,
  query,
  withRequired,
  type JsonSchema,
} from './json-schemas.js';
import {
  configToJson,
  crlUploadToJson,
  decodeBytes,
  deviceInputFromJson,
  deviceToJson,
  parseInt64,
  registryInputFromJson,
  registryToJson,
  stateToJson,
} from './proto-json.js';
import type {
  ApiDevice,
  ApiDeviceInput,
  ApiDeviceRegistryInput,
  ApiListDeviceConfigVersionsResponse,
  ApiListDeviceRegistriesResponse,
  ApiListDevicesResponse,
  ApiListDeviceStatesResponse,
  ApiUploadCrlRequest,
} from './wire-types.js';

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface RouteRequest {
  readonly params: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, unknown>>;
  readonly body: unknown;
  /** The authenticated caller (the bootstrap admin on public routes). */
  readonly principal: Principal;
}

export interface RouteDeps {
  readonly manager: DeviceManager;
  /** Keyway's own CAs; their routes answer UNIMPLEMENTED without it. */
  readonly authorities?: CertificateAuthorities;
  /** The audit log; its routes answer UNIMPLEMENTED without it. */
  readonly audit?: AuditReader;
  /** Device policies; their routes answer UNIMPLEMENTED without it. */
  readonly policies?: PolicyService;
  /** Service accounts and their API keys; their routes answer UNIMPLEMENTED without it. */
  readonly accounts?: ServiceAccountService;
  readonly openApi: () => object;
}

export interface QuerySpec {
  readonly properties: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
}

export interface ApiRoute {
  /** The discovery method id, e.g. `cloudiot.projects.locations.registries.create`. */
  readonly operationId: string;
  readonly method: HttpMethod;
  /** OpenAPI path template, e.g. `/v1/projects/{project}/…/devices/{device}:sendCommandToDevice`. */
  readonly path: string;
  readonly summary: string;
  readonly public?: boolean;
  /** What the caller needs, on the project and registry named by the path (permissions.ts). */
  readonly permission: RoutePermission;
  /** Update-mask paths a narrower permission also allows to change. */
  readonly maskPermissions?: Readonly<Record<string, Permission>>;
  readonly query?: QuerySpec;
  readonly body?: JsonSchema;
  readonly response: JsonSchema;
  readonly handle: (request: RouteRequest, deps: RouteDeps) => Promise<unknown>;
}

/**
 * `{x}` → `:x`; a `{x}:verb` suffix becomes a regex parameter followed by an escaped colon, as
 * find-my-way needs to tell `…/devices/d1` from `…/devices/d1:sendCommandToDevice`.
 */
export function fastifyUrl(path: string): string {
  return path
    .replace(/([^}]):(\w+)$/, '$1::$2') // a verb after a literal segment (`/v1/audit:verify`)
    .replace(/\{(\w+)\}:(\w+)$/, ':$1([^:/]+)::$2')
    .replace(/\{(\w+)\}/g, ':$1');
}

/** Every route has one, so that an unknown query parameter is refused everywhere. */
export function querySchema(route: ApiRoute): JsonSchema {
  return {
    type: 'object',
    additionalProperties: false,
    properties: route.query?.properties ?? {},
    ...(route.query?.required?.length ? { required: [...route.query.required] } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Query helpers

const str = (q: RouteRequest['query'], key: string): string | undefined =>
  typeof q[key] === 'string' ? (q[key] as string) : undefined;

/** A repeated parameter, given as `?k=a&k=b` or `?k=a,b`. */
const list = (q: RouteRequest['query'], key: string): string[] | undefined => {
  const v = q[key];
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? (v as string[]) : [v as string])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
};

const uint = (q: RouteRequest['query'], key: string): number | undefined => {
  const v = str(q, key);
  return v === undefined ? undefined : Number(v);
};

/** pageSize 0 means the default; larger than the maximum is clamped (AIP-158). */
function pageOf(q: RouteRequest['query']): PageRequest {
  const size = uint(q, 'pageSize');
  const token = str(q, 'pageToken');
  return {
    ...(size ? { pageSize: Math.min(size, LIMITS.pageSizeMax) } : {}),
    ...(token ? { pageToken: token } : {}),
  };
}

const paging = {
  pageSize: query.uint,
  pageToken: query.string,
};

/** Fields every listed or masked device carries (reference §3.5: id and numId always). */
const DEVICE_IDENTITY = ['id', 'name', 'numId'];

// ---------------------------------------------------------------------------------------------
// The table

const registries = 'cloudiot.projects.locations.registries';

export const ADMIN_ROUTES: readonly ApiRoute[] = [
  {
    operationId: 'keyway.healthz',
    permission: 'public',
    method: 'GET',
    path: '/healthz',
    summary: 'Liveness check; needs no token.',
    public: true,
    response: HealthSchema,
    handle: async () => ({ status: 'ok' }),
  },
  {
    operationId: 'keyway.openapi',
    permission: 'authenticated',
    method: 'GET',
    path: '/v1/openapi.json',
    summary: 'This API as an OpenAPI 3.1 document.',
    response: { type: 'object', additionalProperties: true },
    handle: async (_, deps) => deps.openApi(),
  },

  // Registries
  {
    operationId: `${registries}.create`,
    permission: 'registries.create',
    method: 'POST',
    path: `${LOCATION}/registries`,
    summary: 'Creates a device registry.',
    body: withRequired(DeviceRegistrySchema, ['id']),
    response: DeviceRegistrySchema,
    handle: async ({ params, body }, { manager }) => {
      const b = body as ApiDeviceRegistryInput & { id: string };
      return registryToJson(await manager.createRegistry(locationOf(params), b.id, registryInputFromJson(b)));
    },
  },
  {
    operationId: `${registries}.get`,
    permission: 'registries.get',
    method: 'GET',
    path: REGISTRY,
    summary: 'Gets a device registry.',
    response: DeviceRegistrySchema,
    handle: async ({ params }, { manager }) => registryToJson(await manager.getRegistry(registryOf(params))),
  },
  {
    operationId: `${registries}.list`,
    permission: 'registries.list',
    method: 'GET',
    path: `${LOCATION}/registries`,
    summary: 'Lists the device registries of a project and location.',
    query: { properties: paging },
    response: ListDeviceRegistriesResponseSchema,
    handle: async ({ params, query: q }, { manager }): Promise<ApiListDeviceRegistriesResponse> => {
      const page = await manager.listRegistries(locationOf(params), pageOf(q));
      return {
        ...(page.items.length ? { deviceRegistries: page.items.map(registryToJson) } : {}),
        ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
      };
    },
  },
  {
    operationId: `${registries}.patch`,
    permission: 'registries.update',
    method: 'PATCH',
    path: REGISTRY,
    summary: 'Updates the fields of a device registry named in updateMask.',
    query: { properties: { updateMask: query.string }, required: ['updateMask'] },
    body: DeviceRegistrySchema,
    response: DeviceRegistrySchema,
    handle: async ({ params, query: q, body }, { manager }) => {
      const mask = parseMaskPaths(str(q, 'updateMask'));
      const input = registryInputFromJson(body as ApiDeviceRegistryInput);
      return registryToJson(await manager.patchRegistry(registryOf(params), input, mask));
    },
  },
  {
    operationId: `${registries}.uploadCrl`,
    permission: 'registries.uploadCrl',
    method: 'POST',
    path: `${REGISTRY}:uploadCrl`,
    summary:
      "Keyway extension: stores a CRL (PEM or base64 DER) signed by one of the registry's CA certificates; the certificates it revokes are disconnected.",
    body: UploadCrlRequestSchema,
    response: UploadCrlResponseSchema,
    handle: async ({ params, body }, { manager }) =>
      crlUploadToJson(await manager.uploadRegistryCrl(registryOf(params), (body as ApiUploadCrlRequest).crl)),
  },
  {
    operationId: `${registries}.delete`,
    permission: 'registries.delete',
    method: 'DELETE',
    path: REGISTRY,
    summary: 'Deletes a device registry; it must have no devices.',
    response: EmptySchema,
    handle: async ({ params }, { manager }) => {
      await manager.deleteRegistry(registryOf(params));
      return {};
    },
  },

  // Devices
  {
    operationId: `${registries}.devices.create`,
    permission: 'devices.create',
    method: 'POST',
    path: `${REGISTRY}/devices`,
    summary: 'Creates a device; its config starts at version 1.',
    body: withRequired(DeviceSchema, ['id']),
    response: DeviceSchema,
    handle: async ({ params, body }, { manager }) => {
      const b = body as ApiDeviceInput & { id: string };
      return deviceToJson(await manager.createDevice(registryOf(params, 'parent'), b.id, deviceInputFromJson(b, 'create')));
    },
  },
  {
    operationId: `${registries}.devices.get`,
    permission: 'devices.get',
    method: 'GET',
    path: DEVICE,
    summary: 'Gets a device by id or numeric id; fieldMask limits the fields returned.',
    query: { properties: { fieldMask: query.string } },
    response: DeviceSchema,
    handle: async ({ params, query: q }, { manager }) => {
      const mask = resolveMask('fieldMask', parseMaskPaths(str(q, 'fieldMask')), DeviceSchema);
      const device = deviceToJson(await manager.getDevice(deviceOf(params)));
      return mask.length ? applyMask(device, mask, DEVICE_IDENTITY) : device;
    },
  },
  {
    operationId: `${registries}.devices.list`,
    permission: 'devices.list',
    method: 'GET',
    path: `${REGISTRY}/devices`,
    summary:
      'Lists devices: id, name and numId, plus the fields named in fieldMask; gatewayListOptions (one of them) filters by gateway type or binding.',
    query: {
      properties: {
        deviceIds: query.repeated,
        deviceNumIds: query.repeated,
        fieldMask: query.string,
        ...GATEWAY_LIST_QUERY,
        ...paging,
      },
    },
    response: ListDevicesResponseSchema,
    handle: async ({ params, query: q }, { manager }): Promise<ApiListDevicesResponse> => {
      const gatewayListOptions = gatewayListOptionsOf(q);
      const registry = registryOf(params, 'parent');
      const mask = resolveMask('fieldMask', parseMaskPaths(str(q, 'fieldMask')), DeviceSchema);
      const deviceIds = list(q, 'deviceIds');
      const deviceNumIds = list(q, 'deviceNumIds');
      deviceNumIds?.forEach((id, i) => {
        if (!isNumId(id)) throw fieldError(`deviceNumIds[${i}]`, `'${id}' is not a numeric device id`);
      });
      const page = await manager.listDevices(registry, {
        ...pageOf(q),
        ...(deviceIds?.length ? { deviceIds } : {}),
        ...(deviceNumIds?.length ? { deviceNumIds } : {}),
        ...(gatewayListOptions ? { gatewayListOptions } : {}),
      });
      return {
        ...(page.items.length
          ? // id, name and numId are always kept, and every other device field is optional.
            { devices: page.items.map((d) => applyMask(deviceToJson(d), mask, DEVICE_IDENTITY) as ApiDevice) }
          : {}),
        ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
      };
    },
  },
  {
    operationId: `${registries}.devices.patch`,
    permission: 'devices.update',
    maskPermissions: { blocked: 'devices.block', credentials: 'devices.updateCredentials' },
    method: 'PATCH',
    path: DEVICE,
    summary: 'Updates the fields of a device named in updateMask.',
    query: { properties: { updateMask: query.string }, required: ['updateMask'] },
    body: DeviceSchema,
    response: DeviceSchema,
    handle: async ({ params, query: q, body }, { manager }) => {
      const mask = parseMaskPaths(str(q, 'updateMask'));
      const input = deviceInputFromJson(body as ApiDeviceInput, 'patch');
      return deviceToJson(await manager.patchDevice(deviceOf(params), input, mask));
    },
  },
  {
    operationId: `${registries}.devices.delete`,
    permission: 'devices.delete',
    method: 'DELETE',
    path: DEVICE,
    summary: 'Deletes a device.',
    response: EmptySchema,
    handle: async ({ params }, { manager }) => {
      await manager.deleteDevice(deviceOf(params));
      return {};
    },
  },
  {
    operationId: `${registries}.devices.modifyCloudToDeviceConfig`,
    permission: 'devices.updateConfig',
    method: 'POST',
    path: `${DEVICE}:modifyCloudToDeviceConfig`,
    summary: 'Pushes a new config version; versionToUpdate 0 or absent is unconditional.',
    body: ModifyCloudToDeviceConfigRequestSchema,
    response: DeviceConfigSchema,
    handle: async ({ params, body }, { manager }) => {
      const b = body as { versionToUpdate?: string | number; binaryData: string };
      const version = b.versionToUpdate === undefined ? 0 : parseInt64('versionToUpdate', b.versionToUpdate);
      const data = decodeBytes('binaryData', b.binaryData);
      return configToJson(await manager.modifyCloudToDeviceConfig(deviceOf(params), version, data));
    },
  },
  {
    operationId: `${registries}.devices.sendCommandToDevice`,
    permission: 'devices.sendCommand',
    method: 'POST',
    path: `${DEVICE}:sendCommandToDevice`,
    summary: 'Sends a command to a connected device subscribed to its commands topic.',
    body: SendCommandToDeviceRequestSchema,
    response: EmptySchema,
    handle: async ({ params, body }, { manager }) => {
      const b = body as { binaryData: string; subfolder?: string };
      const data = decodeBytes('binaryData', b.binaryData);
      await manager.sendCommandToDevice(deviceOf(params), data, b.subfolder || undefined);
      return {};
    },
  },
  {
    operationId: `${registries}.devices.configVersions.list`,
    permission: 'devices.get',
    method: 'GET',
    path: `${DEVICE}/configVersions`,
    summary: 'Lists the last config versions of a device, newest first.',
    query: { properties: { numVersions: query.uint } },
    response: ListDeviceConfigVersionsResponseSchema,
    handle: async ({ params, query: q }, { manager }): Promise<ApiListDeviceConfigVersionsResponse> => {
      const configs = await manager.listConfigVersions(deviceOf(params), uint(q, 'numVersions') || undefined);
      return configs.length ? { deviceConfigs: configs.map(configToJson) } : {};
    },
  },
  {
    operationId: `${registries}.devices.states.list`,
    permission: 'devices.get',
    method: 'GET',
    path: `${DEVICE}/states`,
    summary: 'Lists the last states a device reported, newest first.',
    query: { properties: { numStates: query.uint } },
    response: ListDeviceStatesResponseSchema,
    handle: async ({ params, query: q }, { manager }): Promise<ApiListDeviceStatesResponse> => {
      const states = await manager.listStates(deviceOf(params), uint(q, 'numStates') || undefined);
      return states.length ? { deviceStates: states.map(stateToJson) } : {};
    },
  },
  ...DEVICE_CERTIFICATE_ROUTES,
  ...AUTHORITY_ROUTES,
  ...AUDIT_ROUTES,
  ...POLICY_ROUTES,
  ...SERVICE_ACCOUNT_ROUTES,
  ...GATEWAY_ROUTES,
];
