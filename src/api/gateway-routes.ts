/**
 * Admin API routes of gateway bindings (reference §3.5): `POST {registry}:bindDeviceToGateway`
 * and `:unbindDeviceFromGateway` with `{gatewayId, deviceId}` (either may be a numeric id), and
 * devices.list's `gatewayListOptions.*` query parameters. Appended to ADMIN_ROUTES in routes.ts.
 */
import { KeywayError } from '../domain/errors.js';
import type { GatewayListOptions } from '../registry/device-manager.js';
import { GATEWAY_TYPES } from '../domain/resources.js';
import { EmptySchema, enumOf, object, string, type JsonSchema } from './json-schemas.js';
import { REGISTRY, registryOf } from './route-paths.js';
import type { ApiRoute, RouteRequest } from './routes.js';
import type { ApiBindDeviceToGatewayRequest } from './wire-types.js';

const registries = 'cloudiot.projects.locations.registries';

/** Both calls take the same body: the gateway and the device, each by id or numeric id. */
const bindingRequest = (title: string): JsonSchema =>
  object(title, { gatewayId: string(255), deviceId: string(255) }, ['gatewayId', 'deviceId']);

export const BindDeviceToGatewayRequestSchema = bindingRequest('BindDeviceToGatewayRequest');
export const UnbindDeviceFromGatewayRequestSchema = bindingRequest('UnbindDeviceFromGatewayRequest');

/** devices.list's query parameters for GatewayListOptions, a oneof. */
export const GATEWAY_LIST_OPTIONS = {
  gatewayType: 'gatewayListOptions.gatewayType',
  associationsGatewayId: 'gatewayListOptions.associationsGatewayId',
  associationsDeviceId: 'gatewayListOptions.associationsDeviceId',
} as const;

/** Their schemas, for devices.list's query. */
export const GATEWAY_LIST_QUERY: Readonly<Record<string, JsonSchema>> = {
  [GATEWAY_LIST_OPTIONS.gatewayType]: enumOf(GATEWAY_TYPES),
  [GATEWAY_LIST_OPTIONS.associationsGatewayId]: string(255),
  [GATEWAY_LIST_OPTIONS.associationsDeviceId]: string(255),
};

/**
 * The gateway list option of a devices.list query, if any; more than one is INVALID_ARGUMENT.
 * `gatewayType=GATEWAY_TYPE_UNSPECIFIED` alone filters nothing.
 */
export function gatewayListOptionsOf(query: RouteRequest['query']): GatewayListOptions | undefined {
  const given = Object.entries(GATEWAY_LIST_OPTIONS).filter(([, param]) => typeof query[param] === 'string' && query[param] !== '');
  if (given.length > 1)
    throw new KeywayError(
      'INVALID_ARGUMENT',
      `gatewayListOptions is a oneof: give only one of ${Object.values(GATEWAY_LIST_OPTIONS).join(', ')}.`,
      given.map(([, param]) => ({ field: param, description: 'only one gateway list option may be given' })),
    );
  const [entry] = given;
  if (!entry) return undefined;
  const [option, param] = entry;
  const value = query[param] as string;
  switch (option) {
    case 'gatewayType':
      // The query schema admits only GATEWAY_TYPES.
      return value === 'GATEWAY' || value === 'NON_GATEWAY' ? { gatewayType: value } : undefined;
    case 'associationsGatewayId':
      return { associationsGatewayId: value };
    default:
      return { associationsDeviceId: value };
  }
}

export const GATEWAY_ROUTES: readonly ApiRoute[] = [
  {
    operationId: `${registries}.bindDeviceToGateway`,
    permission: 'devices.bindGateway',
    method: 'POST',
    path: `${REGISTRY}:bindDeviceToGateway`,
    summary:
      'Binds a device to a gateway of the same registry (either by id or numeric id); binding twice changes nothing.',
    body: BindDeviceToGatewayRequestSchema,
    response: EmptySchema,
    handle: async ({ params, body }, { manager }) => {
      const b = body as ApiBindDeviceToGatewayRequest;
      await manager.bindDeviceToGateway(registryOf(params, 'parent'), b.gatewayId, b.deviceId);
      return {};
    },
  },
  {
    operationId: `${registries}.unbindDeviceFromGateway`,
    permission: 'devices.unbindGateway',
    method: 'POST',
    path: `${REGISTRY}:unbindDeviceFromGateway`,
    summary: 'Unbinds a device from a gateway; NOT_FOUND when it is not bound. A gateway attached to it by association detaches it.',
    body: UnbindDeviceFromGatewayRequestSchema,
    response: EmptySchema,
    handle: async ({ params, body }, { manager }) => {
      const b = body as ApiBindDeviceToGatewayRequest;
      await manager.unbindDeviceFromGateway(registryOf(params, 'parent'), b.gatewayId, b.deviceId);
      return {};
    },
  },
];
