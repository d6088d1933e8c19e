import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalBus } from '../bus/local-bus.js';
import { KeywayError } from '../domain/errors.js';
import { formatDevice, type DeviceName, type LocationName, type RegistryName } from '../domain/names.js';
import type { DeviceCredential } from '../domain/resources.js';
import { signDeviceJwt } from '../identity/device-jwt.js';
import { fingerprintOf } from '../identity/public-key.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';
import type { DeviceAuthResult } from './device-manager.js';
import { DeviceManagerService } from './device-manager-service.js';
import { DEFAULT_RATE_LIMITS } from './device-quotas.js';

const dir = mkdtempSync(join(tmpdir(), 'keyway-gateway-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let dbCounter = 0;

const LOC: LocationName = { project: 'acme', location: 'europe-west1' };
const REG: RegistryName = { ...LOC, registry: 'fleet' };
const dev = (device: string, registry: RegistryName = REG): DeviceName => ({ ...registry, device });
const clientId = (device: string, registry: RegistryName = REG): string => formatDevice(dev(device, registry));
const NOW = new Date('2030-06-01T12:00:00Z');

const pub = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString();
const priv = (key: KeyObject): string => key.export({ type: 'pkcs8', format: 'pem' }).toString();
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ecOld = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const es256 = (pair: { publicKey: KeyObject }, expirationTime?: Date): DeviceCredential => ({
  publicKey: { format: 'ES256_PEM', key: pub(pair.publicKey) },
  ...(expirationTime ? { expirationTime } : {}),
});

const token = (pair: { privateKey: KeyObject }, audience = LOC.project, now = NOW): Promise<string> =>
  signDeviceJwt(priv(pair.privateKey), { audience, now, lifetimeSeconds: 3600 });

function refused(result: DeviceAuthResult, reason: RegExp): void {
  assert.equal(result.ok, false, 'expected a refusal');
  if (!result.ok) assert.match(result.reason, reason);
}

async function open(flushIntervalMs = 60_000) {
  const store = await openSqliteStore(join(dir, `db-${++dbCounter}`, 'keyway.db'));
  const bus = new LocalBus();
  const service = new DeviceManagerService({ store, bus, now: () => NOW, flushIntervalMs });
  return { store, bus, service };
}

describe('authenticateJwt', () => {
  let store: Store;
  let service: DeviceManagerService;
  let numId: string;
  before(async () => {
    ({ store, service } = await open());
    await service.createRegistry(LOC, 'fleet', {});
    numId = (
      await service.createDevice(REG, 'dev1', {
        credentials: [es256(ecOld, new Date('2030-05-01T00:00:00Z')), es256(ec), { publicKey: { format: 'RSA_PEM', key: pub(rsa.publicKey) } }],
      })
    ).numId;
  });
  after(async () => {
    await service.close();
    await store.close();
  });

  it('accepts a token signed by a current credential and names the device by id', async () => {
    const result = await service.authenticateJwt(clientId('dev1'), await token(ec), NOW);
    assert.ok(result.ok, result.ok ? '' : result.reason);
    assert.deepEqual(result.device, {
      method: 'jwt',
      key: clientId('dev1'),
      name: dev('dev1'),
      numId,
      credentialFingerprint: fingerprintOf(ec.publicKey),
      tokenExpiresAt: new Date(NOW.getTime() + 3600_000),
      rateLimits: DEFAULT_RATE_LIMITS,
    });
  });

  it("carries the registry's rate limits, defaults filled in, as they are at authentication", async () => {
    await service.patchRegistry(REG, { rateLimits: { stateUpdatesPerSecond: 4 } }, ['rate_limits']);
    const result = await service.authenticateJwt(clientId('dev1'), await token(ec), NOW);
    assert.ok(result.ok, result.ok ? '' : result.reason);
    assert.deepEqual(result.device.rateLimits, { ...DEFAULT_RATE_LIMITS, stateUpdatesPerSecond: 4 });
    await service.patchRegistry(REG, {}, ['rate_limits']);
  });

  it('accepts RS256 with the RSA credential, and a client id that uses the numeric id', async () => {
    const result = await service.authenticateJwt(clientId(numId), await token(rsa), NOW);
    assert.ok(result.ok, result.ok ? '' : result.reason);
    assert.equal(result.device.key, clientId('dev1'));
    assert.deepEqual(result.device.name, dev('dev1'));
    assert.equal(result.device.credentialFingerprint, fingerprintOf(rsa.publicKey));
  });

  it('refuses a credential past its expiration time, and takes it back while it is still valid', async () => {
    refused(await service.authenticateJwt(clientId('dev1'), await token(ecOld), NOW), /token refused|no credential/);
    const earlier = new Date('2030-04-30T12:00:00Z');
    const result = await service.authenticateJwt(clientId('dev1'), await token(ecOld, LOC.project, earlier), earlier);
    assert.ok(result.ok, 'the same key authenticated before its credential expired');
  });

  it('refuses a token for another project, even with the right key', async () => {
    refused(await service.authenticateJwt(clientId('dev1'), await token(ec, 'other-project'), NOW), /audience/);
    refused(
      await service.authenticateJwt(clientId('dev1', { ...REG, project: 'other-project' }), await token(ec, 'other-project'), NOW),
      /unknown registry/,
    );
  });

  it('refuses a key the device does not have, and a token that is not a JWT', async () => {
    refused(await service.authenticateJwt(clientId('dev1'), await token(stranger), NOW), /signature/);
    refused(await service.authenticateJwt(clientId('dev1'), 'not.a.jwt', NOW), /token refused/);
    refused(await service.authenticateJwt(clientId('dev1'), '', NOW), /token refused/);
  });

  it('refuses unknown devices, unknown registries and malformed client ids', async () => {
    refused(await service.authenticateJwt(clientId('dev-unknown'), await token(ec), NOW), /unknown device/);
    refused(await service.authenticateJwt(clientId('1999999999999999'), await token(ec), NOW), /unknown device/);
    refused(await service.authenticateJwt(clientId('dev1', { ...REG, registry: 'ghost' }), await token(ec), NOW), /unknown registry/);
    for (const bad of ['dev1', '', 'projects/acme/locations/europe-west1/registries/fleet', `${clientId('dev1')}/extra`, 'x'.repeat(70_000)])
      refused(await service.authenticateJwt(bad, await token(ec), NOW), /malformed client id/);
  });

  it('refuses a blocked device, and accepts it again once unblocked', async () => {
    await service.patchDevice(dev('dev1'), { blocked: true }, ['blocked']);
    refused(await service.authenticateJwt(clientId('dev1'), await token(ec), NOW), /blocked/);
    await service.patchDevice(dev('dev1'), { blocked: false }, ['blocked']);
    assert.ok((await service.authenticateJwt(clientId('dev1'), await token(ec), NOW)).ok);
  });

  it('refuses every device of a registry with MQTT disabled, but not for HTTP being disabled', async () => {
    await service.patchRegistry(REG, { httpEnabledState: 'HTTP_DISABLED' }, ['http_config']);
    assert.ok((await service.authenticateJwt(clientId('dev1'), await token(ec), NOW)).ok);
    await service.patchRegistry(REG, { mqttEnabledState: 'MQTT_DISABLED' }, ['mqtt_config']);
    refused(await service.authenticateJwt(clientId('dev1'), await token(ec), NOW), /MQTT is disabled/);
    await service.patchRegistry(REG, { mqttEnabledState: 'MQTT_STATE_UNSPECIFIED' }, ['mqtt_config.mqtt_enabled_state']);
    assert.ok((await service.authenticateJwt(clientId('dev1'), await token(ec), NOW)).ok, 'unspecified means enabled');
  });

  it('tells only the device itself that it is blocked or its protocol is off', async () => {
    const forbidden = (r: DeviceAuthResult): string | undefined => (r.ok ? 'accepted' : r.forbidden);
    await service.patchRegistry(REG, { httpEnabledState: 'HTTP_DISABLED' }, ['http_config']);
    assert.match(forbidden(await service.authenticateJwt(clientId('dev1'), await token(ec), NOW, 'http')) ?? '', /HTTP is disabled/);
    assert.equal(forbidden(await service.authenticateJwt(clientId('dev1'), await token(stranger), NOW, 'http')), undefined, 'a stranger learns nothing');
    assert.ok((await service.authenticateJwt(clientId('dev1'), await token(ec), NOW, 'mqtt')).ok, 'MQTT stays on');
    await service.patchRegistry(REG, { httpEnabledState: 'HTTP_ENABLED' }, ['http_config']);
    assert.ok((await service.authenticateJwt(clientId('dev1'), await token(ec), NOW, 'http')).ok, 'HTTP on again');

    await service.patchDevice(dev('dev1'), { blocked: true }, ['blocked']);
    assert.match(forbidden(await service.authenticateJwt(clientId('dev1'), await token(ec), NOW, 'http')) ?? '', /blocked/);
    assert.equal(forbidden(await service.authenticateJwt(clientId('dev1'), await token(stranger), NOW, 'http')), undefined, 'a stranger learns nothing');
    assert.equal(forbidden(await service.authenticateJwt(clientId('dev1'), 'not.a.jwt', NOW, 'http')), undefined, 'nor does a bad token');
    await service.patchDevice(dev('dev1'), { blocked: false }, ['blocked']);
  });

  it('refuses a device whose credentials were all removed', async () => {
    await service.createDevice(REG, 'dev-bare', {});
    refused(await service.authenticateJwt(clientId('dev-bare'), await token(ec), NOW), /no usable credential/);
  });
});

describe('activity records', () => {
  it('shows activity at once, writes it behind in batches, and flushes on close', async () => {
    const { store, bus, service } = await open();
    await service.createRegistry(LOC, 'fleet', {});
    const d = await service.createDevice(REG, 'dev1', {});
    const key = clientId('dev1');
    const t1 = new Date('2030-06-01T12:00:01Z');
    const t2 = new Date('2030-06-01T12:00:02Z');
    service.recordHeartbeat(key, t1);
    service.recordEvent(key, t1);
    service.recordEvent(key, t2);
    service.recordHeartbeat(key, new Date('2030-06-01T11:00:00Z')); // late arrival: never moves a time backwards
    service.recordConfigSent(key, 1, t2);
    service.recordError(key, { code: 16, message: 'mqtt: SERVER: The authorization token expired.' }, t2);
    service.recordEvent(clientId('dev-unknown'), t1);
    service.recordEvent('not a device key', t1);

    const expected = {
      lastHeartbeatTime: t1,
      lastEventTime: t2,
      lastConfigSendTime: t2,
      lastErrorTime: t2,
      lastErrorStatus: { code: 16, message: 'mqtt: SERVER: The authorization token expired.' },
    };
    const shown = await service.getDevice(dev(d.numId));
    assert.deepEqual(
      { ...expected },
      {
        lastHeartbeatTime: shown.lastHeartbeatTime,
        lastEventTime: shown.lastEventTime,
        lastConfigSendTime: shown.lastConfigSendTime,
        lastErrorTime: shown.lastErrorTime,
        lastErrorStatus: shown.lastErrorStatus,
      },
    );
    const listed = (await service.listDevices(REG, {})).items[0];
    assert.deepEqual(listed?.lastEventTime, t2, 'lists merge pending activity too');
    assert.equal((await store.findDevice(REG, { id: 'dev1' }))?.device.lastEventTime, undefined, 'not written yet');

    await service.close();
    const stored = (await store.findDevice(REG, { id: 'dev1' }))?.device;
    assert.deepEqual(stored?.lastHeartbeatTime, t1);
    assert.deepEqual(stored?.lastEventTime, t2);
    assert.deepEqual(stored?.lastErrorStatus, expected.lastErrorStatus);
    await bus.close();
    await store.close();
  });

  it('flushes on its timer', async () => {
    const { store, service } = await open(20);
    await service.createRegistry(LOC, 'fleet', {});
    await service.createDevice(REG, 'dev1', {});
    service.recordHeartbeat(clientId('dev1'), NOW);
    const deadline = Date.now() + 2000;
    while (!(await store.findDevice(REG, { id: 'dev1' }))?.device.lastHeartbeatTime && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual((await store.findDevice(REG, { id: 'dev1' }))?.device.lastHeartbeatTime, NOW);
    await service.close();
    await store.close();
  });

  it('forgets pending activity of a deleted device, so a new device with its id starts clean', async () => {
    const { store, service } = await open();
    await service.createRegistry(LOC, 'fleet', {});
    await service.createDevice(REG, 'dev1', {});
    service.recordHeartbeat(clientId('dev1'), NOW);
    await service.deleteDevice(dev('dev1'));
    const reborn = await service.createDevice(REG, 'dev1', {});
    assert.equal(reborn.lastHeartbeatTime, undefined);
    await service.flush();
    assert.equal((await service.getDevice(dev('dev1'))).lastHeartbeatTime, undefined);
    await service.close();
    await store.close();
  });

  it('records config acks and serves the latest config to the device plane', async () => {
    const { store, service } = await open();
    await service.createRegistry(LOC, 'fleet', {});
    await service.createDevice(REG, 'dev1', { configData: Buffer.from('v1') });
    await service.modifyCloudToDeviceConfig(dev('dev1'), 0, Buffer.from('v2'));
    const key = clientId('dev1');
    assert.deepEqual(await service.latestConfig(key), { version: 2, binaryData: Buffer.from('v2') });
    const ackAt = new Date('2030-06-01T12:05:00Z');
    await service.recordConfigAck(key, 2, ackAt);
    const [v2, v1] = await service.listConfigVersions(dev('dev1'));
    assert.deepEqual(v2?.deviceAckTime, ackAt);
    assert.equal(v1?.deviceAckTime, undefined);
    assert.deepEqual((await service.getDevice(dev('dev1'))).lastConfigAckTime, ackAt);
    await service.recordConfigAck(clientId('dev-unknown'), 1, ackAt);
    await assert.rejects(service.latestConfig(clientId('dev-unknown')), (e: unknown) => e instanceof KeywayError && e.status === 'NOT_FOUND');
    await service.close();
    await store.close();
  });
});
