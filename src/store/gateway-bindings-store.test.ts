import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RegistryName } from '../domain/names.js';
import { openSqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';
import { newDevice, newRegistry, REG, T0 } from './store-test-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'keyway-bindings-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const OTHER: RegistryName = { ...REG, registry: 'other' };
const LIMITS = { devicesPerGateway: 3, gatewaysPerDevice: 2 };
const T1 = new Date(T0.getTime() + 60_000);

// Numeric ids: gateways 1xx, devices 2xx, a gateway of the other registry 3xx.
const G1 = '101';
const G2 = '102';
const G3 = '103';
const D1 = '201';
const D2 = '202';
const D3 = '203';
const D4 = '204';
const FOREIGN = '301';

describe('gateway bindings in the store', () => {
  let store: Store;
  before(async () => {
    store = await openSqliteStore(join(dir, 'keyway.db'));
    await store.insertRegistry(newRegistry(), T0);
    await store.insertRegistry(newRegistry(OTHER), T0);
    for (const [id, numId] of [['gw-1', G1], ['gw-2', G2], ['gw-3', G3]] as const)
      await store.insertDevice(newDevice(id, numId, { gatewayType: 'GATEWAY', gatewayAuthMethod: 'ASSOCIATION_ONLY' }));
    for (const [id, numId] of [['dev-1', D1], ['dev-2', D2], ['dev-3', D3]] as const) await store.insertDevice(newDevice(id, numId));
    await store.insertDevice(newDevice('dev-4', D4, { gatewayType: 'GATEWAY_TYPE_UNSPECIFIED' }));
    await store.insertDevice({ ...newDevice('gw-x', FOREIGN, { gatewayType: 'GATEWAY' }), name: { ...OTHER, device: 'gw-x' } });
  });
  after(async () => {
    await store.close();
  });

  it('binds once, reports a second bind, and lists both ways with the bound time', async () => {
    assert.equal(await store.bindDeviceToGateway(REG, G1, D1, T1, LIMITS), 'bound');
    assert.equal(await store.bindDeviceToGateway(REG, G1, D1, T0, LIMITS), 'already-bound');
    assert.equal(await store.bindDeviceToGateway(REG, G1, D2, T1, LIMITS), 'bound');
    assert.equal(await store.bindDeviceToGateway(REG, G2, D1, T1, LIMITS), 'bound');
    assert.equal(await store.isBoundToGateway(G1, D1), true);
    assert.equal(await store.isBoundToGateway(G2, D2), false);

    const ofG1 = await store.listGatewayBindings({ gatewayNumId: G1 });
    assert.deepEqual(ofG1.map((b) => b.device.device), ['dev-1', 'dev-2']);
    assert.deepEqual(ofG1[0], {
      gateway: { ...REG, device: 'gw-1' },
      gatewayNumId: G1,
      device: { ...REG, device: 'dev-1' },
      deviceNumId: D1,
      boundAt: T1,
    });
    assert.deepEqual((await store.listGatewayBindings({ deviceNumId: D1 })).map((b) => b.gateway.device), ['gw-1', 'gw-2']);
    assert.equal(await store.countGatewayBindings({ gatewayNumId: G1 }), 2);
    assert.equal(await store.countGatewayBindings({ deviceNumId: D1 }), 2);
    assert.equal(await store.countGatewayBindings({ deviceNumId: D3 }), 0);
  });

  it('refuses a gateway end that is no gateway, a device end that is one, and ends of another registry', async () => {
    assert.equal(await store.bindDeviceToGateway(REG, D2, D3, T1, LIMITS), 'not-a-gateway');
    assert.equal(await store.bindDeviceToGateway(REG, D4, D3, T1, LIMITS), 'not-a-gateway', 'unspecified type is no gateway');
    assert.equal(await store.bindDeviceToGateway(REG, G1, G2, T1, LIMITS), 'device-is-gateway');
    assert.equal(await store.bindDeviceToGateway(REG, FOREIGN, D3, T1, LIMITS), 'gateway-not-found');
    assert.equal(await store.bindDeviceToGateway(OTHER, FOREIGN, D3, T1, LIMITS), 'device-not-found');
    assert.equal(await store.bindDeviceToGateway(REG, '999', D3, T1, LIMITS), 'gateway-not-found');
    assert.equal(await store.bindDeviceToGateway(REG, G1, '99999999999999999999', T1, LIMITS), 'device-not-found');
    assert.equal(await store.countGatewayBindings({ deviceNumId: D3 }), 0, 'nothing was written');
  });

  it('holds the limits per gateway and per device', async () => {
    assert.equal(await store.bindDeviceToGateway(REG, G1, D3, T1, LIMITS), 'bound');
    assert.equal(await store.bindDeviceToGateway(REG, G1, D4, T1, LIMITS), 'gateway-full');
    assert.equal(await store.bindDeviceToGateway(REG, G3, D1, T1, LIMITS), 'device-full');
    assert.equal(await store.bindDeviceToGateway(REG, G1, D1, T1, LIMITS), 'already-bound', 'an existing binding is no new one');
  });

  it('filters device lists by gateway type and by binding, with keyset paging', async () => {
    const ids = async (query: Parameters<Store['listDevices']>[1]): Promise<string[]> =>
      (await store.listDevices(REG, query)).map((r) => r.device.name.device);
    assert.deepEqual(await ids({ limit: 100, gatewayType: 'GATEWAY' }), ['gw-1', 'gw-2', 'gw-3']);
    assert.deepEqual(await ids({ limit: 100, gatewayType: 'NON_GATEWAY' }), ['dev-1', 'dev-2', 'dev-3', 'dev-4']);
    assert.deepEqual(await ids({ limit: 100, boundToGateway: G1 }), ['dev-1', 'dev-2', 'dev-3']);
    assert.deepEqual(await ids({ limit: 2, boundToGateway: G1 }), ['dev-1', 'dev-2']);
    assert.deepEqual(await ids({ limit: 2, afterId: 'dev-2', boundToGateway: G1 }), ['dev-3']);
    assert.deepEqual(await ids({ limit: 100, boundToGateway: G1, ids: ['dev-2', 'gw-1'] }), ['dev-2']);
    assert.deepEqual(await ids({ limit: 100, gatewaysOfDevice: D1 }), ['gw-1', 'gw-2']);
    assert.deepEqual(await ids({ limit: 100, gatewaysOfDevice: D4 }), []);
    assert.deepEqual(await ids({ limit: 100, boundToGateway: 'not-a-number' }), []);
    assert.deepEqual((await store.listDevices(OTHER, { limit: 100, boundToGateway: G1 })).length, 0, 'scoped to the registry');
  });

  it('carries the gateway config in findDeviceCredentials', async () => {
    const gw = await store.findDeviceCredentials(REG, { id: 'gw-1' });
    assert.deepEqual(gw?.gatewayConfig, { gatewayType: 'GATEWAY', gatewayAuthMethod: 'ASSOCIATION_ONLY' });
    const dev = await store.findDeviceCredentials(REG, { numId: D4 });
    assert.deepEqual(dev?.gatewayConfig, { gatewayType: 'GATEWAY_TYPE_UNSPECIFIED', gatewayAuthMethod: 'GATEWAY_AUTH_METHOD_UNSPECIFIED' });
  });

  it('writes the last accessed gateway behind with the other activity', async () => {
    await store.recordActivity([{ device: { ...REG, device: 'dev-2' }, lastAccessedGateway: { id: 'gw-1', time: T1 } }]);
    const d = (await store.findDevice(REG, { id: 'dev-2' }))?.device;
    assert.equal(d?.gatewayConfig.lastAccessedGatewayId, 'gw-1');
    assert.deepEqual(d?.gatewayConfig.lastAccessedGatewayTime, T1);
  });

  it('unbinds only what is bound, in the named registry', async () => {
    assert.equal(await store.unbindDeviceFromGateway(OTHER, G1, D2), false);
    assert.equal(await store.unbindDeviceFromGateway(REG, G1, D2), true);
    assert.equal(await store.unbindDeviceFromGateway(REG, G1, D2), false);
    assert.equal(await store.isBoundToGateway(G1, D2), false);
  });

  it('refuses to delete a gateway with bound devices, and deletes a device with its bindings', async () => {
    assert.equal(await store.deleteDevice(G1), 'has-bound-devices');
    assert.ok(await store.findDevice(REG, { numId: G1 }), 'the gateway is still there');
    const deleted = await store.deleteDevice(D1);
    assert.equal(typeof deleted === 'object' ? deleted.device.numId : deleted, D1);
    assert.equal(await store.countGatewayBindings({ deviceNumId: D1 }), 0);
    assert.deepEqual((await store.listGatewayBindings({ gatewayNumId: G2 })).length, 0, 'gw-2 lost its only device');
    const gw2 = await store.deleteDevice(G2);
    assert.equal(typeof gw2 === 'object' ? gw2.device.numId : gw2, G2, 'a gateway without devices goes');
    await store.unbindDeviceFromGateway(REG, G1, D3);
    const gw1 = await store.deleteDevice(G1);
    assert.equal(typeof gw1 === 'object' ? gw1.device.numId : gw1, G1);
  });
});
