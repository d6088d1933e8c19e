/**
 * Configuration updates per device (reference §1.7, §1.11: 1 per second), counted by the
 * registry's `configUpdatesPerSecond` on the limiter the device plane shares.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalBus } from '../bus/local-bus.js';
import { KeywayError } from '../domain/errors.js';
import type { DeviceName, LocationName, RegistryName } from '../domain/names.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';
import { DeviceManagerService } from './device-manager-service.js';
import { DeviceRateLimiter } from './device-quotas.js';

const dir = mkdtempSync(join(tmpdir(), 'keyway-config-rate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const LOC: LocationName = { project: 'acme', location: 'europe-west1' };
const SLOW: RegistryName = { ...LOC, registry: 'slow-reg' };
const FAST: RegistryName = { ...LOC, registry: 'fast-reg' };
const dev = (registry: RegistryName, device: string): DeviceName => ({ ...registry, device });

async function exhausted(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof KeywayError, `a KeywayError, not ${String(e)}`);
    assert.equal(e.status, 'RESOURCE_EXHAUSTED', e.message);
    assert.match(e.message, /configuration was updated more often than its limit of 1 per second/);
    return true;
  });
}

describe('configuration updates per device', () => {
  let store: Store;
  let service: DeviceManagerService;
  /** The limiter's clock, in milliseconds: it moves only when a test moves it. */
  let now = 0;

  before(async () => {
    store = await openSqliteStore(join(dir, 'keyway.db'));
    service = new DeviceManagerService({ store, bus: new LocalBus(), configQuotas: new DeviceRateLimiter({ clock: () => now }) });
    await service.createRegistry(LOC, 'slow-reg', {});
    await service.createRegistry(LOC, 'fast-reg', { rateLimits: { configUpdatesPerSecond: 50 } });
    for (const d of ['dev-a', 'dev-b']) await service.createDevice(SLOW, d, {});
    await service.createDevice(FAST, 'dev-c', {});
  });
  after(async () => {
    await service.close();
    await store.close();
  });

  it('allows a burst of 3 at the default 1 per second, then refuses until a second has passed; other devices are unaffected', async () => {
    for (let i = 0; i < 3; i++) await service.modifyCloudToDeviceConfig(dev(SLOW, 'dev-a'), 0, Buffer.from(`v${i}`));
    await exhausted(service.modifyCloudToDeviceConfig(dev(SLOW, 'dev-a'), 0, Buffer.from('too soon')));
    const versions = await service.listConfigVersions(dev(SLOW, 'dev-a'));
    assert.equal(versions[0]?.binaryData.toString(), 'v2', 'the refused update was not stored');
    await service.modifyCloudToDeviceConfig(dev(SLOW, 'dev-b'), 0, Buffer.from('b is not held back by a'));
    now += 1000;
    const config = await service.modifyCloudToDeviceConfig(dev(SLOW, 'dev-a'), 0, Buffer.from('a second later'));
    assert.equal(config.binaryData.toString(), 'a second later');
  });

  it("follows the registry's own configUpdatesPerSecond", async () => {
    for (let i = 0; i < 150; i++) await service.modifyCloudToDeviceConfig(dev(FAST, 'dev-c'), 0, Buffer.from(`v${i}`));
    await assert.rejects(service.modifyCloudToDeviceConfig(dev(FAST, 'dev-c'), 0, Buffer.from('over 3 s of 50/s')), /more often than its limit of 50 per second/);
  });
});
