/**
 * Reading devices as DeviceRecords: a device row found by id or numeric id, listings with their
 * filters and paging, and the credentials, latest config and latest state that complete a record.
 */
import type { Kysely, Transaction } from 'kysely';
import type { RegistryName } from '../domain/names.js';
import { registryColumns } from './registry-scope.js';
import { numIdParam, toConfig, toCredential, toDeviceRecord, toNumId, toState, type DeviceRow } from './rows.js';
import type { Database } from './schema.js';
import type { DeviceRecord, DeviceRef, ListDevicesQuery, StoredCredential } from './store.js';

type Db = Kysely<Database> | Transaction<Database>;

export async function deviceRow(db: Db, registry: RegistryName, ref: DeviceRef): Promise<DeviceRow | undefined> {
  let q = db
    .selectFrom('devices')
    .selectAll()
    .where((eb) => eb.and(registryColumns(registry)));
  if ('id' in ref) {
    q = q.where('id', '=', ref.id);
  } else {
    const numId = numIdParam(ref.numId);
    if (numId === undefined) return undefined;
    q = q.where('num_id', '=', numId);
  }
  return q.executeTakeFirst();
}

export async function recordByNumId(db: Db, numId: number): Promise<DeviceRecord | undefined> {
  const row = await db.selectFrom('devices').selectAll().where('num_id', '=', numId).executeTakeFirst();
  if (!row) return undefined;
  const [record] = await recordsOf(db, [row]);
  return record;
}

export async function listDevices(db: Db, registry: RegistryName, query: ListDevicesQuery): Promise<DeviceRecord[]> {
  let q = db
    .selectFrom('devices')
    .selectAll()
    .where((eb) => eb.and(registryColumns(registry)));
  if (query.afterId !== undefined) q = q.where('id', '>', query.afterId);
  if (query.ids !== undefined) {
    if (query.ids.length === 0) return [];
    q = q.where('id', 'in', query.ids);
  }
  if (query.numIds !== undefined) {
    const numIds = query.numIds.map(numIdParam).filter((n): n is number => n !== undefined);
    if (numIds.length === 0) return [];
    q = q.where('num_id', 'in', numIds);
  }
  if (query.gatewayType !== undefined) q = q.where('gateway_type', query.gatewayType === 'GATEWAY' ? '=' : '!=', 'GATEWAY');
  if (query.boundToGateway !== undefined) {
    const gateway = numIdParam(query.boundToGateway);
    if (gateway === undefined) return [];
    q = q.where('num_id', 'in', (eb) =>
      eb.selectFrom('gateway_bindings').select('device_num_id').where('gateway_num_id', '=', gateway),
    );
  }
  if (query.gatewaysOfDevice !== undefined) {
    const device = numIdParam(query.gatewaysOfDevice);
    if (device === undefined) return [];
    q = q.where('num_id', 'in', (eb) =>
      eb.selectFrom('gateway_bindings').select('gateway_num_id').where('device_num_id', '=', device),
    );
  }
  const rows = await q.orderBy('id').limit(query.limit).execute();
  return recordsOf(db, rows);
}

/** Devices with their credentials, latest config and latest state: three queries for any number of rows. */
export async function recordsOf(db: Db, rows: readonly DeviceRow[]): Promise<DeviceRecord[]> {
  if (rows.length === 0) return [];
  const numIds = rows.map((r) => Number(r.num_id));
  const [credentials, configs, states] = await Promise.all([
    db
      .selectFrom('device_credentials')
      .selectAll()
      .where('device_num_id', 'in', numIds)
      .orderBy('device_num_id')
      .orderBy('position')
      .execute(),
    db
      .selectFrom('device_configs as c')
      .selectAll('c')
      .where('c.device_num_id', 'in', numIds)
      .where('c.version', '=', (eb) =>
        eb
          .selectFrom('device_configs as c2')
          .select((eb2) => eb2.fn.max('c2.version').as('v'))
          .whereRef('c2.device_num_id', '=', 'c.device_num_id'),
      )
      .execute(),
    db
      .selectFrom('device_states as s')
      .selectAll('s')
      .where('s.device_num_id', 'in', numIds)
      .where('s.seq', '=', (eb) =>
        eb
          .selectFrom('device_states as s2')
          .select((eb2) => eb2.fn.max('s2.seq').as('q'))
          .whereRef('s2.device_num_id', '=', 's.device_num_id'),
      )
      .execute(),
  ]);
  const credentialsOf = new Map<string, StoredCredential[]>();
  for (const c of credentials) {
    const k = toNumId(c.device_num_id);
    const list = credentialsOf.get(k) ?? [];
    list.push(toCredential(c));
    credentialsOf.set(k, list);
  }
  const configOf = new Map(configs.map((c) => [toNumId(c.device_num_id), toConfig(c)]));
  const stateOf = new Map(states.map((s) => [toNumId(s.device_num_id), toState(s)]));
  return rows.map((row) => {
    const k = toNumId(row.num_id);
    return toDeviceRecord(row, credentialsOf.get(k) ?? [], configOf.get(k), stateOf.get(k));
  });
}
