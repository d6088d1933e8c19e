import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import type { GatewayBindingChanged } from '../bus/bus.js';
import { LocalBus } from '../bus/local-bus.js';
import { KeywayError, type RpcStatus } from '../domain/errors.js';
import { formatDevice, type DeviceName, type LocationName, type RegistryName } from '../domain/names.js';
import { LIMITS, type DeviceCredential, type GatewayAuthMethod } from '../domain/resources.js';
import { signDeviceJwt } from '../identity/device-jwt.js';
import { fingerprintOf } from '../identity/public-key.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { AuthenticatedDevice, DeviceAuthResult, GatewayDelegatedDevice } from './device-manager.js';
import { DeviceManagerService } from './device-manager-service.js';

const dir = mkdtempSync(join(tmpdir(), 'keyway-gateways-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let dbCounter = 0;

const LOC: LocationName = { project: 'acme', location: 'europe-west1' };
const REG: RegistryName = { ...LOC, registry: 'fleet' };
const REG2: RegistryName = { ...LOC, registry: 'yard' };
const dev = (device: string, registry: RegistryName = REG): DeviceName => ({ ...registry, device });
const key = (device: string, registry: RegistryName = REG): string => formatDevice(dev(device, registry));
const NOW = new Date('2030-06-01T12:00:00Z');

const pub = (k: KeyObject): string => k.export({ type: 'spki', format: 'pem' }).toString();
const priv = (k: KeyObject): string => k.export({ type: 'pkcs8', format: 'pem' }).toString();
const pair = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const gwKey = pair();
const sensorKey = pair();
const otherKey = pair();
const es256 = (p: { publicKey: KeyObject }): DeviceCredential => ({ publicKey: { format: 'ES256_PEM', key: pub(p.publicKey) } });
const token = (p: { privateKey: KeyObject }, options: { audience?: string; now?: Date } = {}): Promise<string> =>
  signDeviceJwt(priv(p.privateKey), { audience: options.audience ?? LOC.project, now: options.now ?? NOW, lifetimeSeconds: 3600 });

async function rejects(promise: Promise<unknown>, status: RpcStatus, pattern?: RegExp, field?: string): Promise<void> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof KeywayError, `expected a KeywayError, got ${String(e)}`);
    assert.equal(e.status, status, e.message);
    if (pattern) assert.match(e.message, pattern);
    if (field !== undefined) assert.equal(e.fieldViolations[0]?.field, field, e.message);
    return;
  }
  assert.fail(`expected ${status}, but it succeeded`);
}

function refused(result: DeviceAuthResult<GatewayDelegatedDevice> | { ok: boolean; reason?: string }, reason: RegExp): void {
  assert.equal(result.ok, false, 'expected a refusal');
  if (!result.ok) assert.match((result as { reason: string }).reason, reason);
}

function admitted(result: DeviceAuthResult<GatewayDelegatedDevice>): GatewayDelegatedDevice {
  assert.ok(result.ok, result.ok ? '' : `refused: ${result.reason}`);
  return result.device;
}

async function open() {
  const path = join(dir, `db-${++dbCounter}`, 'keyway.db');
  const store = await openSqliteStore(path);
  const bus = new LocalBus();
  const service = new DeviceManagerService({ store, bus, now: () => NOW, flushIntervalMs: 60_000 });
  const events: GatewayBindingChanged[] = [];
  bus.onGatewayBindingChanged((e) => events.push(e));
  await service.createRegistry(LOC, 'fleet', {});
  await service.createRegistry(LOC, 'yard', {});
  return {
    path,
    store,
    bus,
    service,
    events,
    close: async () => {
      await service.close();
      await bus.close();
      await store.close();
    },
  };
}

type Fixture = Awaited<ReturnType<typeof open>>;

const gateway = (method: GatewayAuthMethod) => ({
  credentials: [es256(gwKey)],
  gatewayConfig: { gatewayType: 'GATEWAY' as const, gatewayAuthMethod: method },
});

describe('binding devices to gateways', () => {
  let f: Fixture;
  before(async () => {
    f = await open();
    await f.service.createDevice(REG, 'gw-1', gateway('ASSOCIATION_ONLY'));
    await f.service.createDevice(REG, 'gw-2', gateway('ASSOCIATION_ONLY'));
    await f.service.createDevice(REG, 'sensor-1', {});
    await f.service.createDevice(REG, 'sensor-2', { gatewayConfig: { gatewayType: 'NON_GATEWAY', gatewayAuthMethod: 'GATEWAY_AUTH_METHOD_UNSPECIFIED' } });
    await f.service.createDevice(REG2, 'gw-y', gateway('ASSOCIATION_ONLY'));
    await f.service.createDevice(REG2, 'sensor-y', {});
  });
  after(() => f.close());
  beforeEach(() => {
    f.events.length = 0;
  });

  it('binds by id or numeric id, once, and announces it', async () => {
    await f.service.bindDeviceToGateway(REG, 'gw-1', 'sensor-1');
    const sensor2 = await f.service.getDevice(dev('sensor-2'));
    const gw1 = await f.service.getDevice(dev('gw-1'));
    await f.service.bindDeviceToGateway(REG, gw1.numId, sensor2.numId);
    await f.service.bindDeviceToGateway(REG, 'gw-1', 'sensor-1');
    assert.deepEqual(f.events, [
      { gateway: key('gw-1'), device: key('sensor-1'), bound: true },
      { gateway: key('gw-1'), device: key('sensor-2'), bound: true },
    ], 'binding twice is a no-op: no second event');
  });

  it('refuses a gateway bound to a gateway, and a device that is no gateway as the gateway', async () => {
    await rejects(f.service.bindDeviceToGateway(REG, 'gw-1', 'gw-2'), 'INVALID_ARGUMENT', /is a gateway/, 'deviceId');
    await rejects(f.service.bindDeviceToGateway(REG, 'sensor-1', 'sensor-2'), 'INVALID_ARGUMENT', /not a gateway/, 'gatewayId');
    assert.deepEqual(f.events, []);
  });

  it('refuses to bind across registries', async () => {
    await rejects(f.service.bindDeviceToGateway(REG, 'gw-1', 'sensor-y'), 'NOT_FOUND', /registries\/fleet\/devices\/sensor-y/);
    await rejects(f.service.bindDeviceToGateway(REG2, 'gw-1', 'sensor-y'), 'NOT_FOUND', /Gateway .*yard\/devices\/gw-1/);
    const sensorY = await f.service.getDevice(dev('sensor-y', REG2));
    await rejects(f.service.bindDeviceToGateway(REG, 'gw-1', sensorY.numId), 'NOT_FOUND', /not found/, undefined);
    await rejects(f.service.bindDeviceToGateway({ ...LOC, registry: 'ghost' }, 'gw-1', 'sensor-1'), 'NOT_FOUND', /registries\/ghost/);
    assert.deepEqual(f.events, []);
  });

  it('refuses malformed ids', async () => {
    await rejects(f.service.bindDeviceToGateway(REG, '', 'sensor-1'), 'INVALID_ARGUMENT', undefined, 'gatewayId');
    await rejects(f.service.bindDeviceToGateway(REG, 'gw-1', 'x/y'), 'INVALID_ARGUMENT', undefined, 'deviceId');
  });

  it('unbinds, announces it, and answers NOT_FOUND for a pair that is not bound', async () => {
    await f.service.bindDeviceToGateway(REG, 'gw-2', 'sensor-1');
    f.events.length = 0;
    await f.service.unbindDeviceFromGateway(REG, 'gw-2', 'sensor-1');
    assert.deepEqual(f.events, [{ gateway: key('gw-2'), device: key('sensor-1'), bound: false }]);
    await rejects(f.service.unbindDeviceFromGateway(REG, 'gw-2', 'sensor-1'), 'NOT_FOUND', /not bound to gateway 'gw-2'/);
    await rejects(f.service.unbindDeviceFromGateway(REG, 'gw-2', 'nobody'), 'NOT_FOUND');
    assert.equal(f.events.length, 1);
  });

  it('lists by gateway type, by gateway and by device, one option at a time, with paging', async () => {
    const ids = async (request: Parameters<DeviceManagerService['listDevices']>[1]) =>
      (await f.service.listDevices(REG, request)).items.map((d) => d.name.device);
    assert.deepEqual(await ids({ gatewayListOptions: { gatewayType: 'GATEWAY' } }), ['gw-1', 'gw-2']);
    assert.deepEqual(await ids({ gatewayListOptions: { gatewayType: 'NON_GATEWAY' } }), ['sensor-1', 'sensor-2']);
    assert.deepEqual(await ids({ gatewayListOptions: { associationsGatewayId: 'gw-1' } }), ['sensor-1', 'sensor-2']);
    const gw1 = await f.service.getDevice(dev('gw-1'));
    assert.deepEqual(await ids({ gatewayListOptions: { associationsGatewayId: gw1.numId } }), ['sensor-1', 'sensor-2']);
    assert.deepEqual(await ids({ gatewayListOptions: { associationsDeviceId: 'sensor-1' } }), ['gw-1']);
    assert.deepEqual(await ids({ gatewayListOptions: { associationsGatewayId: 'gw-2' } }), []);

    const first = await f.service.listDevices(REG, { pageSize: 1, gatewayListOptions: { associationsGatewayId: 'gw-1' } });
    assert.deepEqual(first.items.map((d) => d.name.device), ['sensor-1']);
    assert.ok(first.nextPageToken);
    const second = await f.service.listDevices(REG, { pageSize: 1, pageToken: first.nextPageToken, gatewayListOptions: { associationsGatewayId: 'gw-1' } });
    assert.deepEqual(second.items.map((d) => d.name.device), ['sensor-2']);
    assert.equal(second.nextPageToken, undefined);

    const both = { associationsGatewayId: 'gw-1', associationsDeviceId: 'sensor-1' } as unknown as { associationsGatewayId: string };
    await rejects(f.service.listDevices(REG, { gatewayListOptions: both }), 'INVALID_ARGUMENT', /oneof/);
    await rejects(f.service.listDevices(REG, { gatewayListOptions: { associationsGatewayId: 'ghost' } }), 'NOT_FOUND', /Gateway/);
    await rejects(f.service.listDevices(REG, { gatewayListOptions: { associationsGatewayId: 'gw-y' } }), 'NOT_FOUND', /fleet\/devices\/gw-y/);
    const bogus = { gatewayType: 'BRIDGE' } as unknown as { gatewayType: 'GATEWAY' };
    await rejects(f.service.listDevices(REG, { gatewayListOptions: bogus }), 'INVALID_ARGUMENT', undefined, 'gatewayListOptions.gatewayType');
  });

  it('refuses to delete a gateway with bound devices, and takes the bindings with a deleted device', async () => {
    await rejects(f.service.deleteDevice(dev('gw-1')), 'FAILED_PRECONDITION', /still has devices bound/);
    await f.service.createDevice(REG, 'sensor-3', {});
    await f.service.bindDeviceToGateway(REG, 'gw-1', 'sensor-3');
    await f.service.bindDeviceToGateway(REG, 'gw-2', 'sensor-3');
    f.events.length = 0;
    await f.service.deleteDevice(dev('sensor-3'));
    assert.deepEqual(
      f.events.sort((a, b) => a.gateway.localeCompare(b.gateway)),
      [
        { gateway: key('gw-1'), device: key('sensor-3'), bound: false },
        { gateway: key('gw-2'), device: key('sensor-3'), bound: false },
      ],
    );
    assert.deepEqual((await f.service.listDevices(REG, { gatewayListOptions: { associationsGatewayId: 'gw-2' } })).items, []);

    f.events.length = 0;
    await f.service.deleteDevice(dev('gw-2'));
    assert.deepEqual(f.events, [{ gateway: key('gw-2'), bound: false }], 'a deleted gateway loses every attachment');
  });

  it('announces a change of a gateway auth method, and nothing else', async () => {
    await f.service.patchDevice(dev('gw-1'), { metadata: { site: 'north' } }, ['metadata']);
    await f.service.patchDevice(dev('gw-1'), { gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: 'ASSOCIATION_ONLY' } }, ['gateway_config.gateway_auth_method']);
    assert.deepEqual(f.events, []);
    await f.service.patchDevice(dev('gw-1'), { gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: 'DEVICE_AUTH_TOKEN_ONLY' } }, ['gateway_config.gateway_auth_method']);
    assert.deepEqual(f.events, [{ gateway: key('gw-1'), bound: false }]);
  });
});

describe('binding limits', () => {
  it(`allows ${LIMITS.gatewaysPerDevice} gateways per device and ${LIMITS.devicesBoundPerGateway} devices per gateway`, async () => {
    const f = await open();
    try {
      await f.service.createDevice(REG, 'sensor', {});
      for (let i = 0; i <= LIMITS.gatewaysPerDevice; i++) await f.service.createDevice(REG, `gw-${i}`, gateway('ASSOCIATION_ONLY'));
      for (let i = 0; i < LIMITS.gatewaysPerDevice; i++) await f.service.bindDeviceToGateway(REG, `gw-${i}`, 'sensor');
      await rejects(f.service.bindDeviceToGateway(REG, `gw-${LIMITS.gatewaysPerDevice}`, 'sensor'), 'RESOURCE_EXHAUSTED', /10 gateways/);
      await f.service.bindDeviceToGateway(REG, 'gw-0', 'sensor'); // already bound: still fine at the limit

      // Fill one gateway to its limit behind the service's back (creating 10,000 devices one by one is slow).
      const full = await f.service.getDevice(dev(`gw-${LIMITS.gatewaysPerDevice}`));
      const db = new BetterSqlite3(f.path);
      try {
        const device = db.prepare(
          "insert into devices (num_id, project, location, registry_id, id, blocked, metadata, log_level, gateway_type, gateway_auth_method, created_at) values (?, ?, ?, 'fleet', ?, 0, '{}', 'LOG_LEVEL_UNSPECIFIED', 'NON_GATEWAY', 'GATEWAY_AUTH_METHOD_UNSPECIFIED', 0)",
        );
        const binding = db.prepare(
          "insert into gateway_bindings (gateway_num_id, device_num_id, project, location, registry_id, bound_at) values (?, ?, ?, ?, 'fleet', 0)",
        );
        db.transaction(() => {
          for (let i = 0; i < LIMITS.devicesBoundPerGateway; i++) {
            device.run(9_000_000_000 + i, LOC.project, LOC.location, `bulk-${i}`);
            binding.run(Number(full.numId), 9_000_000_000 + i, LOC.project, LOC.location);
          }
        })();
      } finally {
        db.close();
      }
      await f.service.createDevice(REG, 'late', {});
      await rejects(f.service.bindDeviceToGateway(REG, full.name.device, 'late'), 'RESOURCE_EXHAUSTED', /10000 devices/);
    } finally {
      await f.close();
    }
  });
});

describe('gateway identity and protocols at authentication', () => {
  let f: Fixture;
  before(async () => {
    f = await open();
    await f.service.createDevice(REG, 'gw-main', gateway('ASSOCIATION_AND_DEVICE_AUTH_TOKEN'));
    await f.service.createDevice(REG, 'sensor', { credentials: [es256(sensorKey)] });
  });
  after(() => f.close());

  it('says a gateway is one, with its auth method, and says nothing of other devices', async () => {
    const gw = await f.service.authenticateJwt(key('gw-main'), await token(gwKey), NOW);
    assert.ok(gw.ok, gw.ok ? '' : gw.reason);
    assert.deepEqual(gw.device.gateway, { authMethod: 'ASSOCIATION_AND_DEVICE_AUTH_TOKEN' });
    const sensor = await f.service.authenticateJwt(key('sensor'), await token(sensorKey), NOW);
    assert.ok(sensor.ok);
    assert.equal('gateway' in sensor.device, false);
  });

  it("refuses 'http' when the registry switched HTTP off, and 'mqtt' when it switched MQTT off", async () => {
    await f.service.patchRegistry(REG, { httpEnabledState: 'HTTP_DISABLED' }, ['http_config']);
    refused(await f.service.authenticateJwt(key('sensor'), await token(sensorKey), NOW, 'http'), /HTTP is disabled/);
    refused(await f.service.authenticateCertificate(key('sensor'), [], NOW, 'http'), /HTTP is disabled/);
    assert.ok((await f.service.authenticateJwt(key('sensor'), await token(sensorKey), NOW)).ok, "'mqtt' is the default and still on");
    await f.service.patchRegistry(REG, { httpEnabledState: 'HTTP_ENABLED', mqttEnabledState: 'MQTT_DISABLED' }, ['http_config', 'mqtt_config']);
    assert.ok((await f.service.authenticateJwt(key('sensor'), await token(sensorKey), NOW, 'http')).ok);
    refused(await f.service.authenticateJwt(key('sensor'), await token(sensorKey), NOW, 'mqtt'), /MQTT is disabled/);
    refused(await f.service.authenticateCertificate(key('sensor'), [], NOW, 'mqtt'), /MQTT is disabled/);
    await f.service.patchRegistry(REG, { mqttEnabledState: 'MQTT_ENABLED' }, ['mqtt_config']);
  });
});

describe('authorizeGatewayDevice', () => {
  let f: Fixture;
  /** The gateway `id`, authenticated as on connect. */
  const connect = async (id: string, registry: RegistryName = REG): Promise<AuthenticatedDevice> => {
    const r = await f.service.authenticateJwt(key(id, registry), await token(gwKey), NOW);
    assert.ok(r.ok, r.ok ? '' : r.reason);
    return r.device;
  };
  const setMethod = (id: string, method: GatewayAuthMethod) =>
    f.service.patchDevice(dev(id), { gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: method } }, ['gateway_config.gateway_auth_method']);

  before(async () => {
    f = await open();
    await f.service.createDevice(REG, 'gw-main', gateway('ASSOCIATION_ONLY'));
    await f.service.createDevice(REG, 'gw-other', gateway('ASSOCIATION_ONLY'));
    await f.service.createDevice(REG, 'bound', { credentials: [es256(sensorKey)] });
    await f.service.createDevice(REG, 'unbound', { credentials: [es256(sensorKey)] });
    await f.service.createDevice(REG, 'other', { credentials: [es256(otherKey)] });
    await f.service.createDevice(REG2, 'gw-y', gateway('DEVICE_AUTH_TOKEN_ONLY'));
    await f.service.createDevice(REG2, 'elsewhere', { credentials: [es256(sensorKey)] });
    await f.service.bindDeviceToGateway(REG, 'gw-main', 'bound');
  });
  after(() => f.close());

  it('ASSOCIATION_ONLY admits a bound device whatever its token, and no unbound one', async () => {
    await setMethod('gw-main', 'ASSOCIATION_ONLY');
    const gw = await connect('gw-main');
    const d = admitted(await f.service.authorizeGatewayDevice(gw, 'bound', undefined, 'mqtt', NOW));
    assert.deepEqual(d, {
      method: 'gateway',
      key: key('bound'),
      name: dev('bound'),
      numId: (await f.service.getDevice(dev('bound'))).numId,
      gatewayKey: key('gw-main'),
      byAssociation: true,
      rateLimits: gw.rateLimits,
    });
    admitted(await f.service.authorizeGatewayDevice(gw, 'bound', 'garbage', 'mqtt', NOW));
    admitted(await f.service.authorizeGatewayDevice(gw, 'bound', '', 'mqtt', NOW));
    admitted(await f.service.authorizeGatewayDevice(gw, d.numId, undefined, 'mqtt', NOW));
    refused(await f.service.authorizeGatewayDevice(gw, 'unbound', await token(sensorKey), 'mqtt', NOW), /not bound/);
    refused(await f.service.authorizeGatewayDevice(await connect('gw-other'), 'bound', undefined, 'mqtt', NOW), /not bound/);
  });

  it('DEVICE_AUTH_TOKEN_ONLY admits any device of the registry with its own valid token, and nothing else', async () => {
    await setMethod('gw-main', 'DEVICE_AUTH_TOKEN_ONLY');
    const gw = await connect('gw-main');
    const d = admitted(await f.service.authorizeGatewayDevice(gw, 'unbound', await token(sensorKey), 'mqtt', NOW));
    assert.equal(d.byAssociation, false);
    assert.deepEqual(d.token, { credentialFingerprint: fingerprintOf(sensorKey.publicKey), expiresAt: new Date(NOW.getTime() + 3600_000) });

    refused(await f.service.authorizeGatewayDevice(gw, 'unbound', undefined, 'mqtt', NOW), /token is required/);
    refused(await f.service.authorizeGatewayDevice(gw, 'unbound', '', 'mqtt', NOW), /token is required/);
    refused(await f.service.authorizeGatewayDevice(gw, 'unbound', 'not.a.jwt', 'mqtt', NOW), /device token refused/);
    refused(await f.service.authorizeGatewayDevice(gw, 'unbound', await token(otherKey), 'mqtt', NOW), /device token refused/);
    refused(await f.service.authorizeGatewayDevice(gw, 'other', await token(sensorKey), 'mqtt', NOW), /device token refused/);
    refused(await f.service.authorizeGatewayDevice(gw, 'unbound', await token(gwKey), 'mqtt', NOW), /device token refused/);
    const expired = await token(sensorKey, { now: new Date(NOW.getTime() - 2 * 3600_000) });
    refused(await f.service.authorizeGatewayDevice(gw, 'unbound', expired, 'mqtt', NOW), /device token refused/);
    refused(await f.service.authorizeGatewayDevice(gw, 'unbound', await token(sensorKey, { audience: 'other-project' }), 'mqtt', NOW), /audience/);
    refused(await f.service.authorizeGatewayDevice(gw, 'elsewhere', await token(sensorKey), 'mqtt', NOW), /unknown device/);
  });

  it('ASSOCIATION_AND_DEVICE_AUTH_TOKEN needs the binding and the token', async () => {
    await setMethod('gw-main', 'ASSOCIATION_AND_DEVICE_AUTH_TOKEN');
    const gw = await connect('gw-main');
    const d = admitted(await f.service.authorizeGatewayDevice(gw, 'bound', await token(sensorKey), 'mqtt', NOW));
    assert.equal(d.byAssociation, true);
    assert.ok(d.token);
    refused(await f.service.authorizeGatewayDevice(gw, 'bound', undefined, 'mqtt', NOW), /token is required/);
    refused(await f.service.authorizeGatewayDevice(gw, 'unbound', await token(sensorKey), 'mqtt', NOW), /not bound/);
  });

  it('GATEWAY_AUTH_METHOD_UNSPECIFIED admits nobody, bound or not, token or not', async () => {
    await setMethod('gw-main', 'GATEWAY_AUTH_METHOD_UNSPECIFIED');
    const gw = await connect('gw-main');
    refused(await f.service.authorizeGatewayDevice(gw, 'bound', await token(sensorKey), 'mqtt', NOW), /UNSPECIFIED/);
    refused(await f.service.authorizeGatewayDevice(gw, 'unbound', await token(sensorKey), 'mqtt', NOW), /UNSPECIFIED/);
  });

  it('uses the method the gateway has now, not the one it connected with', async () => {
    await setMethod('gw-main', 'DEVICE_AUTH_TOKEN_ONLY');
    const gw = await connect('gw-main');
    await setMethod('gw-main', 'ASSOCIATION_ONLY');
    refused(await f.service.authorizeGatewayDevice(gw, 'unbound', await token(sensorKey), 'mqtt', NOW), /not bound/);
  });

  it('refuses blocked devices, gateways as devices, unknown and malformed ids, and a blocked gateway', async () => {
    await setMethod('gw-main', 'ASSOCIATION_ONLY');
    const gw = await connect('gw-main');
    await f.service.patchDevice(dev('bound'), { blocked: true }, ['blocked']);
    refused(await f.service.authorizeGatewayDevice(gw, 'bound', undefined, 'mqtt', NOW), /blocked/);
    await f.service.patchDevice(dev('bound'), { blocked: false }, ['blocked']);
    refused(await f.service.authorizeGatewayDevice(gw, 'gw-other', undefined, 'mqtt', NOW), /is a gateway/);
    refused(await f.service.authorizeGatewayDevice(gw, 'gw-main', undefined, 'mqtt', NOW), /is a gateway/);
    refused(await f.service.authorizeGatewayDevice(gw, 'ghost', undefined, 'mqtt', NOW), /unknown device/);
    refused(await f.service.authorizeGatewayDevice(gw, '../bound', undefined, 'mqtt', NOW), /malformed/);
    refused(await f.service.authorizeGatewayDevice(gw, key('bound'), undefined, 'mqtt', NOW), /malformed/);

    await f.service.patchDevice(dev('gw-main'), { blocked: true }, ['blocked']);
    refused(await f.service.authorizeGatewayDevice(gw, 'bound', undefined, 'mqtt', NOW), /gateway is blocked/);
    await f.service.patchDevice(dev('gw-main'), { blocked: false }, ['blocked']);
  });

  it('refuses a device that is no gateway acting as one', async () => {
    const r = await f.service.authenticateJwt(key('unbound'), await token(sensorKey), NOW);
    assert.ok(r.ok);
    refused(await f.service.authorizeGatewayDevice(r.device, 'bound', await token(sensorKey), 'mqtt', NOW), /not a gateway/);
  });

  it("honours the registry's protocol switches for the device's token", async () => {
    await setMethod('gw-main', 'DEVICE_AUTH_TOKEN_ONLY');
    const gw = await connect('gw-main');
    await f.service.patchRegistry(REG, { httpEnabledState: 'HTTP_DISABLED' }, ['http_config']);
    refused(await f.service.authorizeGatewayDevice(gw, 'unbound', await token(sensorKey), 'http', NOW), /HTTP is disabled/);
    admitted(await f.service.authorizeGatewayDevice(gw, 'unbound', await token(sensorKey), 'mqtt', NOW));
    await f.service.patchRegistry(REG, { httpEnabledState: 'HTTP_ENABLED' }, ['http_config']);
  });

  it('records the last accessed gateway on the device, shown at once and written behind', async () => {
    await setMethod('gw-main', 'ASSOCIATION_ONLY');
    const later = new Date(NOW.getTime() + 5_000);
    admitted(await f.service.authorizeGatewayDevice(await connect('gw-main'), 'bound', undefined, 'mqtt', later));
    const shown = await f.service.getDevice(dev('bound'));
    assert.equal(shown.gatewayConfig.lastAccessedGatewayId, 'gw-main');
    assert.deepEqual(shown.gatewayConfig.lastAccessedGatewayTime, later);
    assert.equal((await f.store.findDevice(REG, { id: 'bound' }))?.device.gatewayConfig.lastAccessedGatewayId, undefined, 'not written yet');
    await f.service.flush();
    const stored = (await f.store.findDevice(REG, { id: 'bound' }))?.device.gatewayConfig;
    assert.equal(stored?.lastAccessedGatewayId, 'gw-main');
    assert.deepEqual(stored?.lastAccessedGatewayTime, later);
  });
});

describe('checkGatewayRelay', () => {
  let f: Fixture;
  let sensor: AuthenticatedDevice;
  before(async () => {
    f = await open();
    await f.service.createDevice(REG, 'gw-assoc', gateway('ASSOCIATION_ONLY'));
    await f.service.createDevice(REG, 'gw-token', gateway('DEVICE_AUTH_TOKEN_ONLY'));
    await f.service.createDevice(REG, 'gw-none', gateway('GATEWAY_AUTH_METHOD_UNSPECIFIED'));
    await f.service.createDevice(REG, 'plain', {});
    await f.service.createDevice(REG, 'sensor', { credentials: [es256(sensorKey)] });
    await f.service.createDevice(REG2, 'gw-y', gateway('DEVICE_AUTH_TOKEN_ONLY'));
    const r = await f.service.authenticateJwt(key('sensor'), await token(sensorKey), NOW);
    assert.ok(r.ok);
    sensor = r.device;
  });
  after(() => f.close());

  it('admits relaying through a gateway whose method the device meets, and records it', async () => {
    assert.deepEqual(await f.service.checkGatewayRelay(sensor, 'gw-token', NOW), { ok: true });
    assert.equal((await f.service.getDevice(dev('sensor'))).gatewayConfig.lastAccessedGatewayId, 'gw-token');
    refused(await f.service.checkGatewayRelay(sensor, 'gw-assoc', NOW), /not bound/);
    await f.service.bindDeviceToGateway(REG, 'gw-assoc', 'sensor');
    const gw = await f.service.getDevice(dev('gw-assoc'));
    assert.deepEqual(await f.service.checkGatewayRelay(sensor, gw.numId, NOW), { ok: true });
    assert.equal((await f.service.getDevice(dev('sensor'))).gatewayConfig.lastAccessedGatewayId, 'gw-assoc', 'the id, even when named by numeric id');
  });

  it('refuses unknown, foreign, non-gateway, method-less and blocked gateways, and a gateway relaying', async () => {
    refused(await f.service.checkGatewayRelay(sensor, 'ghost', NOW), /unknown gateway/);
    refused(await f.service.checkGatewayRelay(sensor, 'gw-y', NOW), /unknown gateway/);
    refused(await f.service.checkGatewayRelay(sensor, 'plain', NOW), /not a gateway/);
    refused(await f.service.checkGatewayRelay(sensor, 'gw-none', NOW), /UNSPECIFIED/);
    refused(await f.service.checkGatewayRelay(sensor, 'a/b', NOW), /malformed/);
    await f.service.patchDevice(dev('gw-token'), { blocked: true }, ['blocked']);
    refused(await f.service.checkGatewayRelay(sensor, 'gw-token', NOW), /blocked/);
    const gw = await f.service.authenticateJwt(key('gw-assoc'), await token(gwKey), NOW);
    assert.ok(gw.ok);
    refused(await f.service.checkGatewayRelay(gw.device, 'gw-assoc', NOW), /is a gateway/);
  });
});
