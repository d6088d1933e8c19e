/**
 * The Store on Kysely: one implementation for every SQL dialect, with the differences confined
 * to DialectTraits. Writes that must agree run in one transaction; inserts that race for a key
 * (a config version, a state sequence, a numeric id) are settled by unique constraints.
 */
import type { Kysely, Transaction, Updateable } from 'kysely';
import type { DeviceName, LocationName, RegistryName } from '../domain/names.js';
import type { DeviceConfig, DeviceState, Registry } from '../domain/resources.js';
import type { DialectTraits } from './dialect.js';
import type { Database, DevicesTable, RegistriesTable } from './schema.js';
import { KyselyPkiStore } from './kysely-pki-store.js';
import { KyselyAuditStore } from './kysely-audit-store.js';
import { KyselyPolicyStore } from './kysely-policy-store.js';
import { KyselyServiceAccountStore } from './kysely-service-account-store.js';
import * as deviceCertificates from './device-certificates-store.js';
import * as registryCrls from './registry-crls-store.js';
import * as gatewayBindings from './gateway-bindings-store.js';
import * as devices from './device-records.js';
import { registryColumns, registryExists, registryKey } from './registry-scope.js';
import type { CertificateKey } from '../domain/certificate-keys.js';
import {
  encodeNotificationConfigs,
  encodeRateLimits,
  encodeRegistryCredentials,
  numIdParam,
  toConfig,
  toCredential,
  toGatewayConfig,
  toNumId,
  toRegistry,
  toState,
} from './rows.js';
import type {
  ActivityUpdate,
  DeviceCredentials,
  DevicePatch,
  DeviceRecord,
  DeviceRef,
  InsertConfigResult,
  InsertDeviceResult,
  ListDevicesQuery,
  ListQuery,
  NewConfigVersion,
  NewDevice,
  RegistryCrlUpload,
  RegistryPatch,
  ReplaceRegistryCrlResult,
  Store,
  StoredCredential,
} from './store.js';

type Db = Kysely<Database> | Transaction<Database>;

/** Thrown inside insertDevice's transaction to roll it back when a certificate is registered already. */
class CertificateTaken extends Error {}

/** How often a write that lost a race for a key is tried again before giving up. */
const CONFLICT_RETRIES = 5;

export class KyselyStore implements Store {
  readonly pki: KyselyPkiStore;
  readonly audit: KyselyAuditStore;
  readonly policies: KyselyPolicyStore;
  readonly accounts: KyselyServiceAccountStore;

  constructor(
    protected readonly db: Kysely<Database>,
    protected readonly traits: DialectTraits,
  ) {
    this.pki = new KyselyPkiStore(db, traits);
    this.audit = new KyselyAuditStore(db);
    this.policies = new KyselyPolicyStore(db, traits);
    this.accounts = new KyselyServiceAccountStore(db, traits);
  }

  // ---- registries ---------------------------------------------------------------------------

  async insertRegistry(registry: Registry, createdAt: Date): Promise<'created' | 'exists'> {
    try {
      await this.db
        .insertInto('registries')
        .values({
          project: registry.name.project,
          location: registry.name.location,
          id: registry.name.registry,
          event_notification_configs: encodeNotificationConfigs(registry.eventNotificationConfigs),
          state_notification_topic: registry.stateNotificationConfig?.pubsubTopicName ?? null,
          mqtt_enabled_state: registry.mqttEnabledState,
          http_enabled_state: registry.httpEnabledState,
          log_level: registry.logLevel,
          created_at: createdAt.getTime(),
          credentials: encodeRegistryCredentials(registry.credentials),
          device_auth_method: registry.deviceAuthMethod,
          rate_limits: encodeRateLimits(registry.rateLimits),
        })
        .execute();
      return 'created';
    } catch (e) {
      if (this.traits.isUniqueViolation(e)) return 'exists';
      throw e;
    }
  }

  async getRegistry(name: RegistryName): Promise<Registry | undefined> {
    const row = await this.db
      .selectFrom('registries')
      .selectAll()
      .where((eb) => eb.and(registryKey(name)))
      .executeTakeFirst();
    return row && toRegistry(row);
  }

  async listRegistries(parent: LocationName, query: ListQuery): Promise<Registry[]> {
    let q = this.db
      .selectFrom('registries')
      .selectAll()
      .where('project', '=', parent.project)
      .where('location', '=', parent.location);
    if (query.afterId !== undefined) q = q.where('id', '>', query.afterId);
    const rows = await q.orderBy('id').limit(query.limit).execute();
    return rows.map(toRegistry);
  }

  async updateRegistry(name: RegistryName, patch: RegistryPatch): Promise<Registry | undefined> {
    const values: Updateable<RegistriesTable> = {};
    if (patch.eventNotificationConfigs !== undefined)
      values.event_notification_configs = encodeNotificationConfigs(patch.eventNotificationConfigs);
    if (patch.stateNotificationConfig !== undefined)
      values.state_notification_topic = patch.stateNotificationConfig?.pubsubTopicName ?? null;
    if (patch.mqttEnabledState !== undefined) values.mqtt_enabled_state = patch.mqttEnabledState;
    if (patch.httpEnabledState !== undefined) values.http_enabled_state = patch.httpEnabledState;
    if (patch.logLevel !== undefined) values.log_level = patch.logLevel;
    if (patch.credentials !== undefined) values.credentials = encodeRegistryCredentials(patch.credentials);
    if (patch.deviceAuthMethod !== undefined) values.device_auth_method = patch.deviceAuthMethod;
    if (patch.rateLimits !== undefined) values.rate_limits = encodeRateLimits(patch.rateLimits);
    return this.db.transaction().execute(async (trx) => {
      if (Object.keys(values).length > 0) {
        await trx
          .updateTable('registries')
          .set(values)
          .where((eb) => eb.and(registryKey(name)))
          .execute();
      }
      const row = await trx
        .selectFrom('registries')
        .selectAll()
        .where((eb) => eb.and(registryKey(name)))
        .executeTakeFirst();
      return row && toRegistry(row);
    });
  }

  async deleteRegistry(name: RegistryName): Promise<'deleted' | 'not-found' | 'not-empty'> {
    try {
      return await this.db.transaction().execute(async (trx) => {
        const device = await trx
          .selectFrom('devices')
          .select('num_id')
          .where((eb) => eb.and(registryColumns(name)))
          .limit(1)
          .executeTakeFirst();
        if (device) return 'not-empty';
        await registryCrls.deleteRegistryCrlsIn(trx, name);
        const result = await trx
          .deleteFrom('registries')
          .where((eb) => eb.and(registryKey(name)))
          .executeTakeFirst();
        return result.numDeletedRows > 0n ? 'deleted' : 'not-found';
      });
    } catch (e) {
      // A device inserted concurrently, after our check: the foreign key keeps the registry.
      if (this.traits.isForeignKeyViolation(e)) return 'not-empty';
      throw e;
    }
  }

  // ---- registry CRLs (registry-crls-store.ts) ----------------------------------------------

  replaceRegistryCrl(registry: RegistryName, crl: RegistryCrlUpload): Promise<ReplaceRegistryCrlResult> {
    return registryCrls.replaceRegistryCrl(this.db, this.traits, registry, crl);
  }

  revokedInRegistry(registry: RegistryName, keys: readonly CertificateKey[]): Promise<Set<CertificateKey>> {
    return registryCrls.revokedInRegistry(this.db, registry, keys);
  }

  // ---- devices ------------------------------------------------------------------------------

  async insertDevice(device: NewDevice): Promise<InsertDeviceResult> {
    const { name } = device;
    const numId = numIdParam(device.numId);
    if (numId === undefined) throw new Error(`store: numeric id ${device.numId} is out of range`);
    try {
      return await this.db.transaction().execute(async (trx): Promise<InsertDeviceResult> => {
        if (!(await registryExists(trx, name))) return 'registry-not-found';
        if (await devices.deviceRow(trx, name, { id: name.device })) return 'id-taken';
        const sameNumId = await trx.selectFrom('devices').select('num_id').where('num_id', '=', numId).executeTakeFirst();
        if (sameNumId) return 'num-id-taken';
        const at = device.createdAt.getTime();
        await trx
          .insertInto('devices')
          .values({
            num_id: numId,
            project: name.project,
            location: name.location,
            registry_id: name.registry,
            id: name.device,
            blocked: device.blocked ? 1 : 0,
            metadata: JSON.stringify(device.metadata),
            log_level: device.logLevel,
            gateway_type: device.gatewayType,
            gateway_auth_method: device.gatewayAuthMethod,
            last_accessed_gateway_id: null,
            last_accessed_gateway_time: null,
            last_heartbeat_time: null,
            last_event_time: null,
            last_state_time: null,
            last_config_ack_time: null,
            last_config_send_time: null,
            last_error_time: null,
            last_error_code: null,
            last_error_message: null,
            created_at: at,
          })
          .execute();
        await this.#insertCredentials(trx, numId, device.credentials);
        if (device.certificates?.length) {
          const inserted = await deviceCertificates.insertDeviceCertificatesIn(trx, numId, device.certificates);
          // Roll the device back with the certificate: the caller learns which key was taken.
          if (inserted !== 'created') throw new CertificateTaken();
        }
        await trx
          .insertInto('device_configs')
          .values({
            device_num_id: numId,
            version: 1,
            cloud_update_time: at,
            device_ack_time: null,
            binary_data: device.configData,
          })
          .execute();
        return 'created';
      });
    } catch (e) {
      if (e instanceof CertificateTaken) return 'certificate-taken';
      // Lost a race with a concurrent insert (databases that let two writers in): say which key.
      if (this.traits.isUniqueViolation(e)) {
        if (await devices.deviceRow(this.db, name, { id: name.device })) return 'id-taken';
        for (const c of device.certificates ?? [])
          if (await deviceCertificates.getDeviceCertificate(this.db, c.fingerprint)) return 'certificate-taken';
        return 'num-id-taken';
      }
      if (this.traits.isForeignKeyViolation(e)) return 'registry-not-found';
      throw e;
    }
  }

  async findDevice(registry: RegistryName, ref: DeviceRef): Promise<DeviceRecord | undefined> {
    const row = await devices.deviceRow(this.db, registry, ref);
    if (!row) return undefined;
    const [record] = await devices.recordsOf(this.db, [row]);
    return record;
  }

  async findDeviceCredentials(registry: RegistryName, ref: DeviceRef): Promise<DeviceCredentials | undefined> {
    const row = await devices.deviceRow(this.db, registry, ref);
    if (!row) return undefined;
    const credentials = await this.db
      .selectFrom('device_credentials')
      .selectAll()
      .where('device_num_id', '=', Number(row.num_id))
      .orderBy('position')
      .execute();
    return {
      name: { project: row.project, location: row.location, registry: row.registry_id, device: row.id },
      numId: toNumId(row.num_id),
      blocked: row.blocked !== 0,
      credentials: credentials.map(toCredential),
      gatewayConfig: toGatewayConfig(row),
    };
  }

  listDevices(registry: RegistryName, query: ListDevicesQuery): Promise<DeviceRecord[]> {
    return devices.listDevices(this.db, registry, query);
  }

  async updateDevice(
    numId: string,
    patch: DevicePatch,
  ): Promise<{ before: DeviceRecord; after: DeviceRecord } | undefined> {
    const key = numIdParam(numId);
    if (key === undefined) return undefined;
    const values: Updateable<DevicesTable> = {};
    if (patch.blocked !== undefined) values.blocked = patch.blocked ? 1 : 0;
    if (patch.metadata !== undefined) values.metadata = JSON.stringify(patch.metadata);
    if (patch.logLevel !== undefined) values.log_level = patch.logLevel;
    if (patch.gatewayAuthMethod !== undefined) values.gateway_auth_method = patch.gatewayAuthMethod;
    return this.db.transaction().execute(async (trx) => {
      const before = await devices.recordByNumId(trx, key);
      if (!before) return undefined;
      if (Object.keys(values).length > 0) await trx.updateTable('devices').set(values).where('num_id', '=', key).execute();
      if (patch.credentials !== undefined) {
        await trx.deleteFrom('device_credentials').where('device_num_id', '=', key).execute();
        await this.#insertCredentials(trx, key, patch.credentials);
      }
      const after = await devices.recordByNumId(trx, key);
      if (!after) throw new Error('store: device vanished inside its own transaction');
      return { before, after };
    });
  }

  async deleteDevice(numId: string): Promise<DeviceRecord | 'has-bound-devices' | undefined> {
    const key = numIdParam(numId);
    if (key === undefined) return undefined;
    try {
      return await this.#deleteDevice(key);
    } catch (e) {
      // A device bound to this gateway concurrently, after our check: its foreign key keeps the gateway.
      if (this.traits.isForeignKeyViolation(e)) return 'has-bound-devices';
      throw e;
    }
  }

  #deleteDevice(key: number): Promise<DeviceRecord | 'has-bound-devices' | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const record = await devices.recordByNumId(trx, key);
      if (!record) return undefined;
      if ((await gatewayBindings.countGatewayBindings(trx, { gatewayNumId: record.device.numId })) > 0) return 'has-bound-devices';
      // Explicit rather than relying on ON DELETE CASCADE being enabled on the connection.
      await trx.deleteFrom('gateway_bindings').where('device_num_id', '=', key).execute();
      await trx.deleteFrom('device_credentials').where('device_num_id', '=', key).execute();
      await trx.deleteFrom('device_certificates').where('device_num_id', '=', key).execute();
      await trx.deleteFrom('device_configs').where('device_num_id', '=', key).execute();
      await trx.deleteFrom('device_states').where('device_num_id', '=', key).execute();
      await trx.deleteFrom('devices').where('num_id', '=', key).execute();
      return record;
    });
  }

  // ---- configs ------------------------------------------------------------------------------

  async insertConfigVersion(numId: string, version: NewConfigVersion): Promise<InsertConfigResult> {
    const key = numIdParam(numId);
    if (key === undefined) return { status: 'not-found' };
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction().execute(async (trx): Promise<InsertConfigResult> => {
          const device = await trx.selectFrom('devices').select('num_id').where('num_id', '=', key).executeTakeFirst();
          if (!device) return { status: 'not-found' };
          const current = await this.#latestVersion(trx, key);
          if (version.ifCurrentVersion !== undefined && version.ifCurrentVersion !== current)
            return { status: 'stale', currentVersion: current };
          const next = current + 1;
          const row = {
            device_num_id: key,
            version: next,
            cloud_update_time: version.at.getTime(),
            device_ack_time: null,
            binary_data: version.binaryData,
          };
          await trx.insertInto('device_configs').values(row).execute();
          await trx
            .deleteFrom('device_configs')
            .where('device_num_id', '=', key)
            .where('version', '<=', next - version.keep)
            .execute();
          return { status: 'created', config: toConfig(row) };
        });
      } catch (e) {
        if (!this.traits.isUniqueViolation(e) || attempt >= CONFLICT_RETRIES) throw e;
        // Another writer took the version we computed. A conditional update is now stale by
        // definition; an unconditional one simply goes again on top of the winner.
        if (version.ifCurrentVersion !== undefined)
          return { status: 'stale', currentVersion: await this.#latestVersion(this.db, key) };
      }
    }
  }

  async listConfigVersions(numId: string, limit?: number): Promise<DeviceConfig[]> {
    const key = numIdParam(numId);
    if (key === undefined) return [];
    let q = this.db.selectFrom('device_configs').selectAll().where('device_num_id', '=', key).orderBy('version', 'desc');
    if (limit !== undefined) q = q.limit(limit);
    return (await q.execute()).map(toConfig);
  }

  async latestConfig(device: DeviceName): Promise<DeviceConfig | undefined> {
    const row = await this.db
      .selectFrom('device_configs as c')
      .innerJoin('devices as d', 'd.num_id', 'c.device_num_id')
      .selectAll('c')
      .where('d.project', '=', device.project)
      .where('d.location', '=', device.location)
      .where('d.registry_id', '=', device.registry)
      .where('d.id', '=', device.device)
      .orderBy('c.version', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row && toConfig(row);
  }

  async ackConfig(device: DeviceName, version: number, at: Date): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const row = await devices.deviceRow(trx, device, { id: device.device });
      if (!row) return false;
      const key = Number(row.num_id);
      await trx
        .updateTable('device_configs')
        .set({ device_ack_time: at.getTime() })
        .where('device_num_id', '=', key)
        .where('version', '=', version)
        .execute();
      await trx.updateTable('devices').set({ last_config_ack_time: at.getTime() }).where('num_id', '=', key).execute();
      return true;
    });
  }

  // ---- states -------------------------------------------------------------------------------

  async insertState(device: DeviceName, binaryData: Buffer, at: Date, keep: number): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction().execute(async (trx) => {
          const row = await devices.deviceRow(trx, device, { id: device.device });
          if (!row) return false;
          const key = Number(row.num_id);
          const last = await trx
            .selectFrom('device_states')
            .select((eb) => eb.fn.max('seq').as('seq'))
            .where('device_num_id', '=', key)
            .executeTakeFirst();
          const seq = Number(last?.seq ?? 0) + 1;
          await trx
            .insertInto('device_states')
            .values({ device_num_id: key, seq, update_time: at.getTime(), binary_data: binaryData })
            .execute();
          await trx.deleteFrom('device_states').where('device_num_id', '=', key).where('seq', '<=', seq - keep).execute();
          await trx.updateTable('devices').set({ last_state_time: at.getTime() }).where('num_id', '=', key).execute();
          return true;
        });
      } catch (e) {
        if (!this.traits.isUniqueViolation(e) || attempt >= CONFLICT_RETRIES) throw e;
      }
    }
  }

  async listStates(numId: string, limit?: number): Promise<DeviceState[]> {
    const key = numIdParam(numId);
    if (key === undefined) return [];
    let q = this.db.selectFrom('device_states').selectAll().where('device_num_id', '=', key).orderBy('seq', 'desc');
    if (limit !== undefined) q = q.limit(limit);
    return (await q.execute()).map(toState);
  }

  // ---- activity -----------------------------------------------------------------------------

  async recordActivity(updates: readonly ActivityUpdate[]): Promise<void> {
    if (updates.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (const u of updates) {
        const values: Updateable<DevicesTable> = {};
        if (u.lastHeartbeatTime) values.last_heartbeat_time = u.lastHeartbeatTime.getTime();
        if (u.lastEventTime) values.last_event_time = u.lastEventTime.getTime();
        if (u.lastConfigSendTime) values.last_config_send_time = u.lastConfigSendTime.getTime();
        if (u.lastError) {
          values.last_error_time = u.lastError.time.getTime();
          values.last_error_code = u.lastError.status.code;
          values.last_error_message = u.lastError.status.message;
        }
        if (u.lastAccessedGateway) {
          values.last_accessed_gateway_id = u.lastAccessedGateway.id;
          values.last_accessed_gateway_time = u.lastAccessedGateway.time.getTime();
        }
        if (Object.keys(values).length === 0) continue;
        await trx
          .updateTable('devices')
          .set(values)
          .where((eb) => eb.and({ ...registryColumns(u.device), id: u.device.device }))
          .execute();
      }
    });
  }

  // ---- settings -----------------------------------------------------------------------------

  async getSetting(key: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
    return row?.value;
  }

  async putSetting(key: string, value: string): Promise<void> {
    await this.db
      .insertInto('settings')
      .values({ key, value })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
      .execute();
  }

  // ---- gateway bindings (gateway-bindings-store.ts) ------------------------------------------

  bindDeviceToGateway(registry: RegistryName, gatewayNumId: string, deviceNumId: string, at: Date, limits: gatewayBindings.BindingLimits) {
    return gatewayBindings.bindDeviceToGateway(this.db, this.traits, registry, gatewayNumId, deviceNumId, at, limits);
  }

  unbindDeviceFromGateway(registry: RegistryName, gatewayNumId: string, deviceNumId: string) {
    return gatewayBindings.unbindDeviceFromGateway(this.db, registry, gatewayNumId, deviceNumId);
  }

  isBoundToGateway(gatewayNumId: string, deviceNumId: string) {
    return gatewayBindings.isBound(this.db, gatewayNumId, deviceNumId);
  }

  listGatewayBindings(side: gatewayBindings.BindingSide) {
    return gatewayBindings.listGatewayBindings(this.db, side);
  }

  countGatewayBindings(side: gatewayBindings.BindingSide) {
    return gatewayBindings.countGatewayBindings(this.db, side);
  }

  // ---- device certificates (device-certificates-store.ts) -----------------------------------

  insertDeviceCertificate(numId: string, certificate: deviceCertificates.NewDeviceCertificate) {
    return deviceCertificates.insertDeviceCertificate(this.db, this.traits, numId, certificate);
  }

  getDeviceCertificate(fingerprint: string) {
    return deviceCertificates.getDeviceCertificate(this.db, fingerprint);
  }

  listDeviceCertificates(numId: string) {
    return deviceCertificates.listDeviceCertificates(this.db, numId);
  }

  updateDeviceCertificateState(fingerprint: string, state: deviceCertificates.StoredDeviceCertificate['state'], at: Date) {
    return deviceCertificates.updateDeviceCertificateState(this.db, fingerprint, state, at);
  }

  deleteDeviceCertificate(fingerprint: string) {
    return deviceCertificates.deleteDeviceCertificate(this.db, fingerprint);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }

  // ---- helpers ------------------------------------------------------------------------------

  async #latestVersion(db: Db, numId: number): Promise<number> {
    const row = await db
      .selectFrom('device_configs')
      .select((eb) => eb.fn.max('version').as('version'))
      .where('device_num_id', '=', numId)
      .executeTakeFirst();
    return Number(row?.version ?? 0);
  }

  async #insertCredentials(db: Db, numId: number, credentials: readonly StoredCredential[]): Promise<void> {
    if (credentials.length === 0) return;
    await db
      .insertInto('device_credentials')
      .values(
        credentials.map((c, position) => ({
          device_num_id: numId,
          position,
          format: c.publicKey.format,
          public_key: c.publicKey.key,
          fingerprint: c.fingerprint,
          expiration_time: c.expirationTime?.getTime() ?? null,
        })),
      )
      .execute();
  }
}
