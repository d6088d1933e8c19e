/**
 * A gateway's attaches under the registry's rate limits (attach-quotas), and its PINGREQ as the
 * heartbeat of the devices it attached (handle-ping), over real TLS with the real device manager.
 * The limiter's clock is the test's, so nothing depends on how fast the machine is.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPubackPacket } from 'mqtt-packet';
import type { RateLimits } from '../domain/resources.js';
import { signDeviceJwt } from '../identity/device-jwt.js';
import { DeviceRateLimiter } from '../registry/device-quotas.js';
import { errorQueue } from '../../test/support/gateway-errors.js';
import { RawClient } from '../../test/support/raw-client.js';
import { PROJECT, REG, addDevice, connectDevice, keyPair, lastError, pki, startBroker, type Harness, type TestDevice } from './broker-harness.test.js';

const QUOTA_EXCEEDED = 0x97;
const NOT_AUTHORIZED = 0x87;
const RESOURCE_EXHAUSTED = 8;

describe('gateway attaches and heartbeats', () => {
  let h: Harness;
  /** The limiter's clock, in milliseconds: it moves only when a test moves it. */
  let now = 0;

  before(async () => {
    h = await startBroker({}, undefined, { quotas: new DeviceRateLimiter({ clock: () => now }) });
  });
  after(async () => {
    await h.close();
  });

  /** A registry with `rateLimits`, an association-only gateway in it and one device bound to it. */
  async function gatewayWithDevice(registry: string, rateLimits: Partial<RateLimits>): Promise<{ gw: TestDevice; leaf: TestDevice }> {
    await h.service.createRegistry(REG, registry, { rateLimits });
    const regName = { ...REG, registry };
    const keys = keyPair();
    const id = `${registry}-gw`;
    await h.service.createDevice(regName, id, {
      credentials: [{ publicKey: { format: keys.format, key: keys.publicPem } }],
      gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: 'ASSOCIATION_ONLY' },
    });
    const gw: TestDevice = {
      id,
      name: { ...regName, device: id },
      clientId: `projects/${PROJECT}/locations/${REG.location}/registries/${registry}/devices/${id}`,
      privatePem: keys.privatePem,
      fingerprint: keys.fingerprint,
      token: (lifetimeSeconds = 3600) => signDeviceJwt(keys.privatePem, { audience: PROJECT, lifetimeSeconds }),
    };
    const leaf = await addDevice(h, `${registry}-leaf`, { registry });
    await h.service.bindDeviceToGateway(regName, gw.id, leaf.id);
    return { gw, leaf };
  }

  test("attaching a device over its connection rate: PUBACK 0x97, GATEWAY_ATTACHMENT_ERROR, the device's lastErrorStatus; the gateway stays", async () => {
    // connectionsPerSecond 1: a burst of 10, like a device's own reconnects.
    const { gw, leaf } = await gatewayWithDevice('attach-rate', { connectionsPerSecond: 1 });
    const client = await connectDevice(h, gw, { protocolVersion: 5 });
    const errors = errorQueue(client, gw.id);
    try {
      await client.subscribeAsync(`/devices/${gw.id}/errors`, { qos: 0 });
      for (let i = 0; i < 10; i++) await client.publishAsync(`/devices/${leaf.id}/attach`, '{}', { qos: 1 });
      await assert.rejects(client.publishAsync(`/devices/${leaf.id}/attach`, '{}', { qos: 1 }), (e: { code?: number }) => e.code === QUOTA_EXCEEDED);
      const error = await errors.next();
      assert.equal(error.error_type, 'GATEWAY_ATTACHMENT_ERROR');
      assert.equal(error.device_id, leaf.id);
      assert.match(error.description, /connection rate limit of 1 per second/);
      const status = await lastError(h, leaf);
      assert.equal(status?.code, RESOURCE_EXHAUSTED, `lastErrorStatus: ${JSON.stringify(status)}`);
      // Refusing a renewal leaves the attachment as it was, and the gateway connected.
      await client.publishAsync(`/devices/${leaf.id}/state`, 'still attached', { qos: 1 });
      assert.equal(client.connected, true, 'the gateway keeps its connection');
      now += 1000;
      await client.publishAsync(`/devices/${leaf.id}/attach`, '{}', { qos: 1 });
    } finally {
      client.end(true);
    }
  });

  test('attach attempts of one gateway connection are bounded before any is authorized, whatever device they name', async () => {
    // 6 connections a minute: the gateway connection may try 6 attaches at once, then one every 10 s.
    const { gw, leaf } = await gatewayWithDevice('attach-attempts', { registryConnectionsPerMinute: 6 });
    const client = await connectDevice(h, gw, { protocolVersion: 5 });
    const errors = errorQueue(client, gw.id);
    try {
      await client.subscribeAsync(`/devices/${gw.id}/errors`, { qos: 0 });
      // Devices that do not exist cost a store read each, and charge no device's bucket.
      for (let i = 0; i < 6; i++) {
        await assert.rejects(client.publishAsync(`/devices/ghost-${i}/attach`, '{}', { qos: 1 }), (e: { code?: number }) => e.code === NOT_AUTHORIZED);
        assert.equal((await errors.next()).error_type, 'GATEWAY_ATTACHMENT_ERROR');
      }
      await assert.rejects(client.publishAsync(`/devices/${leaf.id}/attach`, '{}', { qos: 1 }), (e: { code?: number }) => e.code === QUOTA_EXCEEDED);
      const error = await errors.next();
      assert.equal(error.error_type, 'GATEWAY_ATTACHMENT_ERROR');
      assert.match(error.description, /attach rate limit of 6 per minute/);
      assert.equal(client.connected, true, 'the gateway keeps its connection');
      now += 10_000;
      await client.publishAsync(`/devices/${leaf.id}/attach`, '{}', { qos: 1 });
    } finally {
      client.end(true);
    }
  });

  test('a device attached by numeric id is attached under its device id: its topics use the id', async () => {
    const { gw, leaf } = await gatewayWithDevice('numeric', {});
    const { numId } = await h.service.getDevice(leaf.name);
    const client = await connectDevice(h, gw, { protocolVersion: 5 });
    const errors = errorQueue(client, gw.id);
    try {
      await client.subscribeAsync(`/devices/${gw.id}/errors`, { qos: 0 });
      await client.publishAsync(`/devices/${numId}/attach`, '{}', { qos: 1 });
      await client.publishAsync(`/devices/${leaf.id}/state`, 'by id', { qos: 1 });
      await assert.rejects(client.publishAsync(`/devices/${numId}/state`, 'by numeric id', { qos: 1 }), (e: { code?: number }) => e.code === NOT_AUTHORIZED);
      const error = await errors.next();
      assert.equal(error.error_type, 'GATEWAY_DEVICE_NOT_FOUND');
      assert.equal(error.device_id, String(numId));
      await client.publishAsync(`/devices/${leaf.id}/detach`, '', { qos: 1 });
      assert.equal(errors.pending, 0, 'the detach by id was accepted');
    } finally {
      client.end(true);
    }
  });

  test("a gateway's PINGREQ is the heartbeat of the devices it attached", async () => {
    const { gw, leaf } = await gatewayWithDevice('heartbeats', {});
    const raw = await RawClient.open(h.port, pki.caCertPem);
    try {
      assert.equal((await raw.connect(gw.clientId, await gw.token())).returnCode, 0);
      raw.send({ cmd: 'publish', topic: `/devices/${leaf.id}/attach`, payload: Buffer.from('{}'), qos: 1, dup: false, retain: false, messageId: 1 });
      assert.equal(((await raw.next('puback')) as IPubackPacket).messageId, 1);
      await h.service.flush();
      assert.equal((await h.service.getDevice(leaf.name)).lastHeartbeatTime, undefined, 'no heartbeat before a PINGREQ');
      raw.send({ cmd: 'pingreq' });
      await raw.next('pingresp');
      await h.service.flush();
      assert.ok((await h.service.getDevice(leaf.name)).lastHeartbeatTime, "the gateway's PINGREQ is the attached device's heartbeat");
      assert.ok((await h.service.getDevice(gw.name)).lastHeartbeatTime, "and the gateway's own");
    } finally {
      raw.end();
    }
  });
});
