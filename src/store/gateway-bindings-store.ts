/**
 * Gateway bindings in the store: the queries behind the Store's binding methods, written against
 * Kysely once (KyselyStore delegates here). Both ends of a binding are devices of one registry;
 * the gateway is a GATEWAY, the device is not, and the limits hold, all checked inside the
 * binding's transaction.
 */
import type { Kysely, Transaction } from 'kysely';
import type { DeviceName, RegistryName } from '../domain/names.js';
import type { DialectTraits } from './dialect.js';
import { registryColumns } from './registry-scope.js';
import { numIdParam, toDate, toNumId } from './rows.js';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/** A device bound to a gateway; both named by id. */
export interface GatewayBinding {
  readonly gateway: DeviceName;
  readonly gatewayNumId: string;
  readonly device: DeviceName;
  readonly deviceNumId: string;
  readonly boundAt: Date;
}

export interface BindingLimits {
  readonly devicesPerGateway: number;
  readonly gatewaysPerDevice: number;
}

/**
 * Nothing is written unless 'bound'. The not-found outcomes are within the registry; 'not-a-gateway':
 * the gateway end is not a GATEWAY; 'device-is-gateway': the device end is one; '*-full': a limit.
 */
export type BindResult =
  | 'bound'
  | 'already-bound'
  | 'gateway-not-found'
  | 'device-not-found'
  | 'not-a-gateway'
  | 'device-is-gateway'
  | 'gateway-full'
  | 'device-full';

/** Which side a listing or count is about: the devices of a gateway, or the gateways of a device. */
export type BindingSide = { readonly gatewayNumId: string } | { readonly deviceNumId: string };

async function count(db: Db, column: 'gateway_num_id' | 'device_num_id', numId: number): Promise<number> {
  const row = await db
    .selectFrom('gateway_bindings')
    .select((eb) => eb.fn.countAll().as('n'))
    .where(column, '=', numId)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

export async function bindDeviceToGateway(
  db: Kysely<Database>,
  traits: DialectTraits,
  registry: RegistryName,
  gatewayNumId: string,
  deviceNumId: string,
  at: Date,
  limits: BindingLimits,
): Promise<BindResult> {
  const gateway = numIdParam(gatewayNumId);
  const device = numIdParam(deviceNumId);
  if (gateway === undefined) return 'gateway-not-found';
  if (device === undefined) return 'device-not-found';
  const where = registryColumns(registry);
  const typeOf = async (trx: Db, numId: number): Promise<string | undefined> =>
    (
      await trx
        .selectFrom('devices')
        .select('gateway_type')
        .where('num_id', '=', numId)
        .where((eb) => eb.and(where))
        .executeTakeFirst()
    )?.gateway_type;
  try {
    return await db.transaction().execute(async (trx): Promise<BindResult> => {
      const gatewayType = await typeOf(trx, gateway);
      if (gatewayType === undefined) return 'gateway-not-found';
      if (gatewayType !== 'GATEWAY') return 'not-a-gateway';
      const deviceType = await typeOf(trx, device);
      if (deviceType === undefined) return 'device-not-found';
      if (deviceType === 'GATEWAY') return 'device-is-gateway';
      if (await isBound(trx, gatewayNumId, deviceNumId)) return 'already-bound';
      if ((await count(trx, 'gateway_num_id', gateway)) >= limits.devicesPerGateway) return 'gateway-full';
      if ((await count(trx, 'device_num_id', device)) >= limits.gatewaysPerDevice) return 'device-full';
      await trx
        .insertInto('gateway_bindings')
        .values({ gateway_num_id: gateway, device_num_id: device, ...where, bound_at: at.getTime() })
        .execute();
      return 'bound';
    });
  } catch (e) {
    // Databases that let two writers in: the same binding made concurrently, or an end deleted meanwhile.
    if (traits.isUniqueViolation(e)) return 'already-bound';
    if (traits.isForeignKeyViolation(e)) return (await typeOf(db, gateway)) === undefined ? 'gateway-not-found' : 'device-not-found';
    throw e;
  }
}

/** False when there was no such binding in the registry. */
export async function unbindDeviceFromGateway(
  db: Kysely<Database>,
  registry: RegistryName,
  gatewayNumId: string,
  deviceNumId: string,
): Promise<boolean> {
  const gateway = numIdParam(gatewayNumId);
  const device = numIdParam(deviceNumId);
  if (gateway === undefined || device === undefined) return false;
  const result = await db
    .deleteFrom('gateway_bindings')
    .where('gateway_num_id', '=', gateway)
    .where('device_num_id', '=', device)
    .where((eb) => eb.and(registryColumns(registry)))
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

export async function isBound(db: Db, gatewayNumId: string, deviceNumId: string): Promise<boolean> {
  const gateway = numIdParam(gatewayNumId);
  const device = numIdParam(deviceNumId);
  if (gateway === undefined || device === undefined) return false;
  const row = await db
    .selectFrom('gateway_bindings')
    .select('gateway_num_id')
    .where('gateway_num_id', '=', gateway)
    .where('device_num_id', '=', device)
    .executeTakeFirst();
  return row !== undefined;
}

/** Ordered by the id of the other end (the devices of a gateway, the gateways of a device). */
export async function listGatewayBindings(db: Db, side: BindingSide): Promise<GatewayBinding[]> {
  const byGateway = 'gatewayNumId' in side;
  const key = numIdParam(byGateway ? side.gatewayNumId : side.deviceNumId);
  if (key === undefined) return [];
  const rows = await db
    .selectFrom('gateway_bindings as b')
    .innerJoin('devices as g', 'g.num_id', 'b.gateway_num_id')
    .innerJoin('devices as d', 'd.num_id', 'b.device_num_id')
    .select(['b.gateway_num_id', 'b.device_num_id', 'b.project', 'b.location', 'b.registry_id', 'b.bound_at', 'g.id as gateway_id', 'd.id as device_id'])
    .where(byGateway ? 'b.gateway_num_id' : 'b.device_num_id', '=', key)
    .orderBy(byGateway ? 'd.id' : 'g.id')
    .execute();
  return rows.map((r) => {
    const registry = { project: r.project, location: r.location, registry: r.registry_id };
    return {
      gateway: { ...registry, device: r.gateway_id },
      gatewayNumId: toNumId(r.gateway_num_id),
      device: { ...registry, device: r.device_id },
      deviceNumId: toNumId(r.device_num_id),
      boundAt: toDate(r.bound_at),
    };
  });
}

export async function countGatewayBindings(db: Db, side: BindingSide): Promise<number> {
  const byGateway = 'gatewayNumId' in side;
  const key = numIdParam(byGateway ? side.gatewayNumId : side.deviceNumId);
  if (key === undefined) return 0;
  return count(db, byGateway ? 'gateway_num_id' : 'device_num_id', key);
}
