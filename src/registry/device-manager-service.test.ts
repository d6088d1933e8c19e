import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CommandRequest, ConfigPushed, DeviceRevoked, RegistryAccessChanged } from '../bus/bus.js';
import { LocalBus } from '../bus/local-bus.js';
import { KeywayError, type RpcStatus } from '../domain/errors.js';
import { formatDevice, type DeviceName, type LocationName, type RegistryName } from '../domain/names.js';
import { LIMITS, type DeviceCredential } from '../domain/resources.js';
import { fingerprintOf } from '../identity/public-key.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';
import { DeviceManagerService } from './device-manager-service.js';

const dir = mkdtempSync(join(tmpdir(), 'keyway-registry-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let dbCounter = 0;

const LOC: LocationName = { project: 'acme', location: 'europe-west1' };
const REG: RegistryName = { ...LOC, registry: 'fleet' };
const dev = (device: string, registry: RegistryName = REG): DeviceName => ({ ...registry, device });

const pem = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString();
const ec1 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec3 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec4 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const weakRsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
const es256 = (pair: { publicKey: KeyObject }, expirationTime?: Date): DeviceCredential => ({
  publicKey: { format: 'ES256_PEM', key: pem(pair.publicKey) },
  ...(expirationTime ? { expirationTime } : {}),
});
const rs256 = (pair: { publicKey: KeyObject }): DeviceCredential => ({ publicKey: { format: 'RSA_PEM', key: pem(pair.publicKey) } });

/** Asserts a KeywayError with the status and, when given, the violated field and message. */
async function rejects(promise: Promise<unknown>, status: RpcStatus, field?: string, message?: RegExp): Promise<KeywayError> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof KeywayError, `expected a KeywayError, got ${String(e)}`);
    assert.equal(e.status, status, e.message);
    if (field !== undefined) assert.equal(e.fieldViolations[0]?.field, field, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected ${status}${field ? ` on ${field}` : ''}, but it succeeded`);
}

interface Fixture {
  readonly store: Store;
  readonly bus: LocalBus;
  readonly service: DeviceManagerService;
  readonly revoked: DeviceRevoked[];
  readonly configs: ConfigPushed[];
  clock: Date;
  close(): Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const store = await openSqliteStore(join(dir, `db-${++dbCounter}`, 'keyway.db'));
  const bus = new LocalBus();
  const f: Fixture = {
    store,
    bus,
    revoked: [],
    configs: [],
    clock: new Date('2030-06-01T12:00:00Z'),
    service: undefined as unknown as DeviceManagerService,
    close: async () => {
      await f.service.close();
      await bus.close();
      await store.close();
    },
  };
  (f as { service: DeviceManagerService }).service = new DeviceManagerService({ store, bus, now: () => f.clock, flushIntervalMs: 60_000 });
  bus.onRevoked((e) => f.revoked.push(e));
  bus.onConfig((e) => f.configs.push(e));
  return f;
}

describe('registries', () => {
  let f: Fixture;
  before(async () => (f = await fixture()));
  after(() => f.close());

  it('creates a registry with Cloud IoT Core defaults and reads it back', async () => {
    const created = await f.service.createRegistry(LOC, 'fleet', {});
    assert.deepEqual(created, {
      name: REG,
      credentials: [],
      deviceAuthMethod: 'JWT_OR_CERTIFICATE',
      eventNotificationConfigs: [],
      mqttEnabledState: 'MQTT_ENABLED',
      httpEnabledState: 'HTTP_ENABLED',
      logLevel: 'LOG_LEVEL_UNSPECIFIED',
    });
    assert.deepEqual(await f.service.getRegistry(REG), created);
  });

  it('refuses a second registry with the same id in the same location only', async () => {
    await rejects(f.service.createRegistry(LOC, 'fleet', {}), 'ALREADY_EXISTS', undefined, /projects\/acme\/locations\/europe-west1\/registries\/fleet/);
    await f.service.createRegistry({ ...LOC, location: 'us-central1' }, 'fleet', {});
  });

  it('checks the registry id and parent', async () => {
    for (const bad of ['ab', 'goog-fleet', '1fleet', 'has space', 'x'.repeat(256)])
      await rejects(f.service.createRegistry(LOC, bad, {}), 'INVALID_ARGUMENT', 'deviceRegistry.id');
    await rejects(f.service.createRegistry({ project: 'acme', location: 'Bad Location' }, 'fleet2', {}), 'INVALID_ARGUMENT', 'parent');
  });

  it('bounds event notification configs and checks their subfolders', async () => {
    const topic = (i: number) => ({ pubsubTopicName: `projects/acme/topics/t${i}`, subfolderMatches: `sub${i}` });
    const ten = Array.from({ length: 10 }, (_, i) => topic(i));
    const ok = await f.service.createRegistry(LOC, 'ten-routes', { eventNotificationConfigs: ten });
    assert.equal(ok.eventNotificationConfigs.length, 10);
    await rejects(
      f.service.createRegistry(LOC, 'eleven', { eventNotificationConfigs: [...ten, topic(10)] }),
      'INVALID_ARGUMENT',
      'deviceRegistry.eventNotificationConfigs',
    );
    for (const bad of ['/leading', 'has/slash', '9starts-with-digit', 'a'.repeat(257), 'nul\0'])
      await rejects(
        f.service.createRegistry(LOC, 'bad-sub', { eventNotificationConfigs: [{ pubsubTopicName: 't' }, { pubsubTopicName: 't', subfolderMatches: bad }] }),
        'INVALID_ARGUMENT',
        'deviceRegistry.eventNotificationConfigs[1].subfolderMatches',
        undefined,
      );
    const maxSub = await f.service.createRegistry(LOC, 'long-sub', { eventNotificationConfigs: [{ pubsubTopicName: 't', subfolderMatches: 'a'.repeat(256) }] });
    assert.equal(maxSub.eventNotificationConfigs[0]?.subfolderMatches?.length, 256);
  });

  it('refuses enum values it does not know', async () => {
    await rejects(
      f.service.createRegistry(LOC, 'bad-enum', { mqttEnabledState: 'ON' as never }),
      'INVALID_ARGUMENT',
      'deviceRegistry.mqttConfig.mqttEnabledState',
    );
    await rejects(f.service.createRegistry(LOC, 'bad-enum', { logLevel: 'LOUD' as never }), 'INVALID_ARGUMENT', 'deviceRegistry.logLevel');
  });

  it('names the missing registry in NOT_FOUND', async () => {
    await rejects(f.service.getRegistry({ ...LOC, registry: 'nope' }), 'NOT_FOUND', undefined, /registries\/nope/);
  });

  it('patches only masked fields, in snake_case or camelCase, and resets masked fields left out', async () => {
    const name = { ...LOC, registry: 'patched' };
    await f.service.createRegistry(LOC, 'patched', {
      stateNotificationConfig: { pubsubTopicName: 'projects/acme/topics/state' },
      logLevel: 'INFO',
    });
    let r = await f.service.patchRegistry(name, { mqttEnabledState: 'MQTT_DISABLED', logLevel: 'DEBUG' }, ['mqttConfig.mqttEnabledState']);
    assert.equal(r.mqttEnabledState, 'MQTT_DISABLED');
    assert.equal(r.logLevel, 'INFO', 'log level was not in the mask');
    r = await f.service.patchRegistry(name, { httpEnabledState: 'HTTP_DISABLED' }, ['http_config', 'state_notification_config']);
    assert.equal(r.httpEnabledState, 'HTTP_DISABLED');
    assert.equal(r.stateNotificationConfig, undefined, 'masked and absent: cleared');
    r = await f.service.patchRegistry(name, { eventNotificationConfigs: [{ pubsubTopicName: 'projects/acme/topics/e' }] }, ['eventNotificationConfigs,log_level']);
    assert.deepEqual(r.eventNotificationConfigs, [{ pubsubTopicName: 'projects/acme/topics/e' }]);
    assert.equal(r.logLevel, 'LOG_LEVEL_UNSPECIFIED');
    assert.deepEqual(await f.service.getRegistry(name), r);
  });

  it('announces a change of MQTT access (mqttConfig, deviceAuthMethod) to live connections, and only a change', async () => {
    const name = { ...LOC, registry: 'access' };
    await f.service.createRegistry(LOC, 'access', {});
    const events: RegistryAccessChanged[] = [];
    const stop = f.bus.onRegistryAccessChanged((e) => events.push(e));
    const registry = 'projects/acme/locations/europe-west1/registries/access';
    try {
      await f.service.patchRegistry(name, { mqttEnabledState: 'MQTT_ENABLED', logLevel: 'DEBUG' }, ['mqtt_config', 'log_level']);
      await f.service.patchRegistry(name, { deviceAuthMethod: 'DEVICE_AUTH_METHOD_UNSPECIFIED' }, ['device_auth_method']);
      assert.deepEqual(events, [], 'nothing changed: unspecified means JWT or certificate');
      await f.service.patchRegistry(name, { mqttEnabledState: 'MQTT_DISABLED' }, ['mqtt_config.mqtt_enabled_state']);
      await f.service.patchRegistry(name, { mqttEnabledState: 'MQTT_DISABLED' }, ['mqttConfig']);
      await f.service.patchRegistry(name, { deviceAuthMethod: 'CERTIFICATE_ONLY' }, ['device_auth_method']);
      await f.service.patchRegistry(name, {}, ['mqtt_config']);
      assert.deepEqual(events, [
        { registry, mqttEnabled: false, deviceAuthMethod: 'JWT_OR_CERTIFICATE' },
        { registry, mqttEnabled: false, deviceAuthMethod: 'CERTIFICATE_ONLY' },
        { registry, mqttEnabled: true, deviceAuthMethod: 'CERTIFICATE_ONLY' },
      ]);
    } finally {
      stop();
    }
  });

  it('requires a non-empty update mask of known paths', async () => {
    const name = { ...LOC, registry: 'patched' };
    for (const mask of [[], [''], undefined as unknown as string[], ['id'], ['credentials.0'], ['mqtt_config.nope'], ['name']])
      await rejects(f.service.patchRegistry(name, {}, mask), 'INVALID_ARGUMENT', 'updateMask');
    await rejects(f.service.patchRegistry({ ...LOC, registry: 'nope' }, {}, ['log_level']), 'NOT_FOUND');
    await rejects(
      f.service.patchRegistry(name, { eventNotificationConfigs: [{ pubsubTopicName: 't', subfolderMatches: '#' }] }, ['event_notification_configs']),
      'INVALID_ARGUMENT',
      'deviceRegistry.eventNotificationConfigs[0].subfolderMatches',
    );
  });

  it('refuses to delete a registry that still has devices', async () => {
    await f.service.createRegistry(LOC, 'doomed', {});
    const doomed = { ...LOC, registry: 'doomed' };
    await f.service.createDevice(doomed, 'dev1', {});
    await rejects(f.service.deleteRegistry(doomed), 'FAILED_PRECONDITION', undefined, /registries\/doomed/);
    await f.service.deleteDevice(dev('dev1', doomed));
    await f.service.deleteRegistry(doomed);
    await rejects(f.service.getRegistry(doomed), 'NOT_FOUND');
    await rejects(f.service.deleteRegistry(doomed), 'NOT_FOUND');
  });

  it('pages registries with opaque tokens and validates page size and token', async () => {
    const loc = { project: 'paging', location: 'asia-east1' };
    const ids = ['reg-e', 'reg-a', 'reg-d', 'reg-b', 'reg-c'];
    for (const id of ids) await f.service.createRegistry(loc, id, {});
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await f.service.listRegistries(loc, { pageSize: 2, ...(token ? { pageToken: token } : {}) });
      seen.push(...page.items.map((r) => r.name.registry));
      token = page.nextPageToken;
      pages++;
    } while (token);
    assert.deepEqual(seen, [...ids].sort());
    assert.equal(pages, 3);
    const exact = await f.service.listRegistries(loc, { pageSize: 5 });
    assert.equal(exact.nextPageToken, undefined, 'no token when nothing follows');
    assert.equal((await f.service.listRegistries(loc, {})).items.length, 5);
    for (const pageSize of [0, -1, 501, 1.5]) await rejects(f.service.listRegistries(loc, { pageSize }), 'INVALID_ARGUMENT', 'pageSize');
    for (const pageToken of ['garbage!', 'bm90anNvbg', Buffer.from('{"v":1,"after":"x y"}').toString('base64url'), Buffer.from('{"v":2,"after":"reg-a"}').toString('base64url')])
      await rejects(f.service.listRegistries(loc, { pageToken }), 'INVALID_ARGUMENT', 'pageToken');
  });
});

describe('devices', () => {
  let f: Fixture;
  before(async () => {
    f = await fixture();
    await f.service.createRegistry(LOC, 'fleet', {});
  });
  after(() => f.close());

  it('creates a device with a random 16-digit numeric id, its credentials and config version 1', async () => {
    const device = await f.service.createDevice(REG, 'dev1', {
      credentials: [es256(ec1), rs256(rsa)],
      metadata: { site: 'north', 'rack.no': '4' },
      configData: Buffer.from('{"rate":10}'),
    });
    assert.deepEqual(device.name, dev('dev1'));
    assert.match(device.numId, /^[1-9][0-9]{15}$/);
    assert.ok(Number(device.numId) >= 1e15 && Number(device.numId) < 2 ** 53);
    assert.equal(device.credentials.length, 2);
    assert.equal(device.blocked, false);
    assert.deepEqual(device.metadata, { site: 'north', 'rack.no': '4' });
    assert.equal(device.config.version, 1);
    assert.deepEqual(device.config.binaryData, Buffer.from('{"rate":10}'));
    assert.deepEqual(device.config.cloudUpdateTime, f.clock);
    assert.deepEqual(device.gatewayConfig, { gatewayType: 'GATEWAY_TYPE_UNSPECIFIED', gatewayAuthMethod: 'GATEWAY_AUTH_METHOD_UNSPECIFIED' });
    assert.deepEqual(await f.service.getDevice(dev('dev1')), device);
    assert.deepEqual(await f.service.getDevice(dev(device.numId)), device, 'the numeric id addresses the same device');
    const other = await f.service.createDevice(REG, 'dev2', {});
    assert.notEqual(other.numId, device.numId);
    assert.deepEqual(other.config.binaryData, Buffer.alloc(0), 'version 1 is empty without configData');
  });

  it('refuses duplicate device ids within a registry and unknown registries', async () => {
    await rejects(f.service.createDevice(REG, 'dev1', {}), 'ALREADY_EXISTS', undefined, /devices\/dev1/);
    await rejects(f.service.createDevice({ ...LOC, registry: 'ghost' }, 'dev1', {}), 'NOT_FOUND', undefined, /registries\/ghost/);
    await f.service.createRegistry(LOC, 'fleet-b', {});
    await f.service.createDevice({ ...LOC, registry: 'fleet-b' }, 'dev1', {});
  });

  it('checks the device id', async () => {
    for (const bad of ['d', 'goog-dev', '123456', 'a/b'])
      await rejects(f.service.createDevice(REG, bad, {}), 'INVALID_ARGUMENT', 'device.id');
  });

  it('allows at most three credentials', async () => {
    await rejects(
      f.service.createDevice(REG, 'dev-many', { credentials: [es256(ec1), es256(ec2), es256(ec3), es256(ec4)] }),
      'INVALID_ARGUMENT',
      'device.credentials',
    );
    await rejects(f.service.getDevice(dev('dev-many')), 'NOT_FOUND');
  });

  it('refuses weak, malformed, private and duplicate keys, naming the credential', async () => {
    await rejects(
      f.service.createDevice(REG, 'dev-weak', { credentials: [es256(ec1), rs256(weakRsa)] }),
      'INVALID_ARGUMENT',
      'device.credentials[1].publicKey.key',
      /2048/,
    );
    await rejects(
      f.service.createDevice(REG, 'dev-priv', {
        credentials: [{ publicKey: { format: 'ES256_PEM', key: ec1.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() } }],
      }),
      'INVALID_ARGUMENT',
      'device.credentials[0].publicKey.key',
    );
    await rejects(
      f.service.createDevice(REG, 'dev-mismatch', { credentials: [{ publicKey: { format: 'RSA_PEM', key: pem(ec1.publicKey) } }] }),
      'INVALID_ARGUMENT',
      'device.credentials[0].publicKey.key',
    );
    await rejects(
      f.service.createDevice(REG, 'dev-dup', { credentials: [es256(ec1), es256(ec2), es256(ec1, new Date('2031-01-01'))] }),
      'INVALID_ARGUMENT',
      'device.credentials[2].publicKey.key',
      /credentials\[0\]/,
    );
    await rejects(
      f.service.createDevice(REG, 'dev-fmt', { credentials: [{ publicKey: { format: 'UNSPECIFIED_PUBLIC_KEY_FORMAT' as never, key: pem(ec1.publicKey) } }] }),
      'INVALID_ARGUMENT',
      'device.credentials[0].publicKey.format',
    );
    await rejects(
      f.service.createDevice(REG, 'dev-exp', { credentials: [{ ...es256(ec1), expirationTime: new Date('nonsense') }] }),
      'INVALID_ARGUMENT',
      'device.credentials[0].expirationTime',
    );
  });

  it('bounds metadata: key syntax, pair count, value size and total size', async () => {
    const kb32 = 'v'.repeat(LIMITS.metadataValueBytes);
    const cases: Record<string, string>[] = [
      { '1starts-with-digit': 'x' },
      { 'has space': 'x' },
      { ['k'.repeat(129)]: 'x' },
      Object.fromEntries(Array.from({ length: 501 }, (_, i) => [`k${i}`, 'v'])),
      { big: kb32 + 'v' },
      Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, kb32])),
    ];
    for (const metadata of cases) await rejects(f.service.createDevice(REG, 'dev-meta', { metadata }), 'INVALID_ARGUMENT', 'device.metadata');
    const fits = await f.service.createDevice(REG, 'dev-meta', {
      metadata: { ...Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`k${i}`, kb32])), ['k'.repeat(128)]: 'ok', 'a-_.+~%': 'y' },
    });
    assert.equal(Object.keys(fits.metadata).length, 9);
  });

  it('bounds the initial config', async () => {
    await rejects(
      f.service.createDevice(REG, 'dev-bigcfg', { configData: Buffer.alloc(LIMITS.configBytes + 1) }),
      'INVALID_ARGUMENT',
      'device.config.binaryData',
    );
  });

  it('patches masked fields and announces blocking and credential changes to live connections', async () => {
    const expired = new Date('2030-01-01T00:00:00Z');
    await f.service.createDevice(REG, 'dev-live', { credentials: [es256(ec1), es256(ec2, expired)] });
    f.revoked.length = 0;

    let d = await f.service.patchDevice(dev('dev-live'), { metadata: { a: 'b' }, blocked: true }, ['metadata']);
    assert.deepEqual(d.metadata, { a: 'b' });
    assert.equal(d.blocked, false, 'blocked was not in the mask');
    assert.equal(f.revoked.length, 0, 'metadata changes nothing for connections');

    d = await f.service.patchDevice(dev('dev-live'), { blocked: true }, ['blocked']);
    assert.equal(d.blocked, true);
    assert.deepEqual(f.revoked, [
      {
        device: formatDevice(dev('dev-live')),
        reason: 'blocked',
        blocked: true,
        credentialFingerprints: [fingerprintOf(ec1.publicKey)],
      },
    ]);
    await f.service.patchDevice(dev('dev-live'), { blocked: true }, ['blocked']);
    await f.service.patchDevice(dev('dev-live'), { blocked: false }, ['blocked']);
    assert.equal(f.revoked.length, 1, 'staying blocked or unblocking revokes nothing');

    f.revoked.length = 0;
    d = await f.service.patchDevice(dev(d.numId), { credentials: [rs256(rsa), es256(ec3)] }, ['credentials']);
    assert.equal(d.credentials.length, 2);
    assert.deepEqual(f.revoked, [
      {
        device: formatDevice(dev('dev-live')),
        reason: 'credentials-changed',
        blocked: false,
        credentialFingerprints: [fingerprintOf(rsa.publicKey), fingerprintOf(ec3.publicKey)],
      },
    ]);
    f.revoked.length = 0;
    await f.service.patchDevice(dev('dev-live'), { credentials: [rs256(rsa), es256(ec3)] }, ['credentials']);
    assert.equal(f.revoked.length, 0, 'the same credentials again change nothing');
    await f.service.patchDevice(dev('dev-live'), {}, ['credentials']);
    assert.deepEqual(f.revoked.at(-1)?.credentialFingerprints, [], 'removing all credentials leaves nothing usable');

    d = await f.service.patchDevice(dev('dev-live'), { logLevel: 'DEBUG', gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: 'ASSOCIATION_ONLY' } }, [
      'logLevel',
      'gatewayConfig.gatewayAuthMethod',
    ]);
    assert.equal(d.logLevel, 'DEBUG');
    assert.equal(d.gatewayConfig.gatewayAuthMethod, 'ASSOCIATION_ONLY');
    assert.equal(d.gatewayConfig.gatewayType, 'GATEWAY_TYPE_UNSPECIFIED', 'the gateway type is fixed at creation');
  });

  it('validates patches before touching the device', async () => {
    for (const mask of [[], ['numId'], ['gateway_config'], ['config'], ['blocked', 'id']])
      await rejects(f.service.patchDevice(dev('dev-live'), {}, mask), 'INVALID_ARGUMENT', 'updateMask');
    await rejects(
      f.service.patchDevice(dev('dev-live'), { credentials: [es256(ec1), es256(ec2), es256(ec3), es256(ec4)] }, ['credentials']),
      'INVALID_ARGUMENT',
      'device.credentials',
    );
    await rejects(f.service.patchDevice(dev('dev-live'), { blocked: 'yes' as never }, ['blocked']), 'INVALID_ARGUMENT', 'device.blocked');
    await rejects(f.service.patchDevice(dev('nobody'), { blocked: true }, ['blocked']), 'NOT_FOUND', undefined, /devices\/nobody/);
  });

  it('deletes a device and tells live connections', async () => {
    const d = await f.service.createDevice(REG, 'dev-del', { credentials: [es256(ec1)] });
    f.revoked.length = 0;
    await f.service.deleteDevice(dev(d.numId));
    assert.deepEqual(f.revoked, [{ device: formatDevice(dev('dev-del')), reason: 'deleted', blocked: false, credentialFingerprints: [] }]);
    await rejects(f.service.getDevice(dev('dev-del')), 'NOT_FOUND');
    await rejects(f.service.getDevice(dev(d.numId)), 'NOT_FOUND');
    await rejects(f.service.deleteDevice(dev('dev-del')), 'NOT_FOUND');
  });

  it('pages devices and filters by ids and numeric ids', async () => {
    await f.service.createRegistry(LOC, 'paged', {});
    const paged = { ...LOC, registry: 'paged' };
    const created = [];
    for (const id of ['dev-3', 'dev-1', 'dev-5', 'dev-2', 'dev-4']) created.push(await f.service.createDevice(paged, id, {}));
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await f.service.listDevices(paged, { pageSize: 2, ...(token ? { pageToken: token } : {}) });
      assert.ok(page.items.length <= 2);
      seen.push(...page.items.map((d) => d.name.device));
      token = page.nextPageToken;
    } while (token);
    assert.deepEqual(seen, ['dev-1', 'dev-2', 'dev-3', 'dev-4', 'dev-5']);

    const byIds = await f.service.listDevices(paged, { deviceIds: ['dev-4', 'dev-2', 'elsewhere'] });
    assert.deepEqual(byIds.items.map((d) => d.name.device), ['dev-2', 'dev-4']);
    const numIdOf5 = created.find((d) => d.name.device === 'dev-5')?.numId ?? '';
    const byNum = await f.service.listDevices(paged, { deviceNumIds: [numIdOf5] });
    assert.deepEqual(byNum.items.map((d) => d.name.device), ['dev-5']);
    const both = await f.service.listDevices(paged, { deviceIds: ['dev-4'], deviceNumIds: [numIdOf5] });
    assert.deepEqual(both.items, [], 'both filters apply');
    assert.equal((await f.service.listDevices(paged, { deviceIds: [] })).items.length, 5, 'an empty filter is no filter');

    await rejects(f.service.listDevices(paged, { deviceNumIds: ['12abc'] }), 'INVALID_ARGUMENT', 'deviceNumIds');
    await rejects(f.service.listDevices(paged, { deviceIds: ['dev-1', 'x'.repeat(300)] }), 'INVALID_ARGUMENT', 'deviceIds');
    await rejects(f.service.listDevices(paged, { pageToken: 'not-a-token' }), 'INVALID_ARGUMENT', 'pageToken');
    await rejects(f.service.listDevices(paged, { pageSize: 501 }), 'INVALID_ARGUMENT', 'pageSize');
    await rejects(f.service.listDevices({ ...LOC, registry: 'ghost' }, {}), 'NOT_FOUND', undefined, /registries\/ghost/);
  });
});

describe('configs, commands and states', () => {
  let f: Fixture;
  let numId: string;
  before(async () => {
    f = await fixture();
    await f.service.createRegistry(LOC, 'fleet', {});
    numId = (await f.service.createDevice(REG, 'dev1', {})).numId;
  });
  after(() => f.close());

  it('adds config versions, checks versionToUpdate and pushes each new version', async () => {
    const v2 = await f.service.modifyCloudToDeviceConfig(dev('dev1'), 0, Buffer.from('two'));
    assert.equal(v2.version, 2);
    assert.deepEqual(f.configs, [{ device: formatDevice(dev('dev1')), version: 2, binaryData: Buffer.from('two') }]);
    const v3 = await f.service.modifyCloudToDeviceConfig(dev(numId), 2, Buffer.from('three'));
    assert.equal(v3.version, 3);
    assert.equal(f.configs.at(-1)?.device, formatDevice(dev('dev1')), 'pushed under the device id even when addressed by number');
    await f.service.modifyCloudToDeviceConfig(dev('dev1'), 0, Buffer.from('four'));
    await rejects(
      f.service.modifyCloudToDeviceConfig(dev('dev1'), 3, Buffer.from('stale')),
      'FAILED_PRECONDITION',
      undefined,
      /^The config version to update \(3\) does not match the current version \(4\)\.$/,
    );
    assert.equal(f.configs.length, 3, 'a refused update pushes nothing');
    assert.equal((await f.service.getDevice(dev('dev1'))).config.version, 4);
  });

  it('bounds config data and versionToUpdate', async () => {
    await rejects(f.service.modifyCloudToDeviceConfig(dev('dev1'), 0, Buffer.alloc(LIMITS.configBytes + 1)), 'INVALID_ARGUMENT', 'binaryData');
    const max = await f.service.modifyCloudToDeviceConfig(dev('dev1'), 0, Buffer.alloc(LIMITS.configBytes));
    assert.equal(max.binaryData.length, LIMITS.configBytes);
    for (const v of [-1, 1.5, Number.NaN])
      await rejects(f.service.modifyCloudToDeviceConfig(dev('dev1'), v, Buffer.from('x')), 'INVALID_ARGUMENT', 'versionToUpdate');
    await rejects(f.service.modifyCloudToDeviceConfig(dev('nobody'), 0, Buffer.from('x')), 'NOT_FOUND');
  });

  it('keeps the 10 newest versions and lists them newest first', async () => {
    for (let i = 0; i < 12; i++) await f.service.modifyCloudToDeviceConfig(dev('dev1'), 0, Buffer.from(`n${i}`));
    const all = await f.service.listConfigVersions(dev('dev1'));
    assert.deepEqual(all.map((c) => c.version), [17, 16, 15, 14, 13, 12, 11, 10, 9, 8]);
    assert.deepEqual(all[0]?.binaryData, Buffer.from('n11'));
    assert.deepEqual((await f.service.listConfigVersions(dev('dev1'), 0)).length, 10);
    assert.deepEqual((await f.service.listConfigVersions(dev(numId), 3)).map((c) => c.version), [17, 16, 15]);
    await rejects(f.service.listConfigVersions(dev('dev1'), -1), 'INVALID_ARGUMENT', 'numVersions');
    await rejects(f.service.listConfigVersions(dev('nobody')), 'NOT_FOUND');
  });

  it('sends commands only to connected, subscribed devices', async () => {
    await rejects(f.service.sendCommandToDevice(dev('dev1'), Buffer.from('x')), 'FAILED_PRECONDITION', undefined, /^Device 'dev1' is not connected\.$/);
    const received: CommandRequest[] = [];
    let outcome: 'delivered' | 'not-subscribed' = 'not-subscribed';
    const stop = f.bus.handleCommands(async (request) => {
      received.push(request);
      return outcome;
    });
    try {
      await rejects(
        f.service.sendCommandToDevice(dev('dev1'), Buffer.from('x')),
        'FAILED_PRECONDITION',
        undefined,
        /^Device 'dev1' is not subscribed to the commands topic\.$/,
      );
      outcome = 'delivered';
      await f.service.sendCommandToDevice(dev(numId), Buffer.from('reboot'), 'ops/now');
      await f.service.sendCommandToDevice(dev('dev1'), Buffer.from('plain'), '');
      assert.deepEqual(received.slice(1), [
        { device: formatDevice(dev('dev1')), binaryData: Buffer.from('reboot'), subfolder: 'ops/now' },
        { device: formatDevice(dev('dev1')), binaryData: Buffer.from('plain') },
      ]);
      await f.service.sendCommandToDevice(dev('dev1'), Buffer.alloc(LIMITS.commandBytes), 's'.repeat(256));
    } finally {
      stop();
    }
  });

  it('refuses commands that could escape their topic or exceed the size limit', async () => {
    for (const subfolder of ['a/+', 'a/#', 'nul\0', '/lead', 's'.repeat(257)])
      await rejects(f.service.sendCommandToDevice(dev('dev1'), Buffer.from('x'), subfolder), 'INVALID_ARGUMENT', 'subfolder');
    await rejects(f.service.sendCommandToDevice(dev('dev1'), Buffer.alloc(LIMITS.commandBytes + 1)), 'INVALID_ARGUMENT', 'binaryData');
    await rejects(f.service.sendCommandToDevice(dev('nobody'), Buffer.from('x')), 'NOT_FOUND');
  });

  it('stores reported states, keeps 10 and lists them newest first', async () => {
    const key = formatDevice(dev('dev1'));
    for (let i = 1; i <= 12; i++) await f.service.recordState(key, Buffer.from(`s${i}`), new Date(Date.UTC(2030, 5, 1, 12, 0, i)));
    const states = await f.service.listStates(dev('dev1'));
    assert.equal(states.length, 10);
    assert.deepEqual(states.map((s) => s.binaryData.toString()).slice(0, 3), ['s12', 's11', 's10']);
    assert.deepEqual((await f.service.listStates(dev(numId), 2)).map((s) => s.binaryData.toString()), ['s12', 's11']);
    const device = await f.service.getDevice(dev('dev1'));
    assert.deepEqual(device.state?.binaryData, Buffer.from('s12'));
    assert.deepEqual(device.lastStateTime, new Date(Date.UTC(2030, 5, 1, 12, 0, 12)));
    await rejects(f.service.listStates(dev('dev1'), -2), 'INVALID_ARGUMENT', 'numStates');
    await f.service.recordState(formatDevice(dev('nobody')), Buffer.from('x'), f.clock);
    await rejects(f.service.listStates(dev('nobody')), 'NOT_FOUND');
  });
});
