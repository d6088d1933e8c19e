/**
 * Gateways in the broker (reference §1.10), over real TLS with the real device manager: attach and
 * detach, a gateway speaking for its attached devices (events, state, config and its ack,
 * commands), the errors topic, and everything that ends an attachment at once. Each breaking
 * test waits for the error message the gateway gets, never for a fixed time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { AuditEvent } from '../domain/audit-events.js';
import { formatDevice, type DeviceName } from '../domain/names.js';
import type { GatewayAuthMethod } from '../domain/resources.js';
import { signDeviceJwt } from '../identity/device-jwt.js';
import { errorQueue, type ErrorQueue } from '../../test/support/gateway-errors.js';
import {
  PROJECT,
  REG,
  REGISTRY,
  addDevice,
  closed,
  connectBackend,
  connectDevice,
  eventually,
  inbox,
  keyPair,
  lastError,
  startBroker,
  type Harness,
  type TestDevice,
  holdingDecisions,
} from './broker-harness.test.js';

async function addGateway(h: Harness, id: string, method: GatewayAuthMethod): Promise<TestDevice> {
  const keys = keyPair();
  const name: DeviceName = { ...REG, device: id };
  await h.service.createDevice(REG, id, {
    credentials: [{ publicKey: { format: keys.format, key: keys.publicPem } }],
    gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: method },
  });
  return {
    id,
    name,
    clientId: `projects/${PROJECT}/locations/${REG.location}/registries/${REGISTRY}/devices/${id}`,
    privatePem: keys.privatePem,
    fingerprint: keys.fingerprint,
    token: (lifetimeSeconds = 3600) => signDeviceJwt(keys.privatePem, { audience: PROJECT, lifetimeSeconds }),
  };
}

const rejectedWith = (code: number) => (e: unknown) => (e as { code?: number }).code === code;
/** A SUBACK refusing a filter with `code` (mqtt.js rejects the whole subscribe). */
const subackRefused = (code: number) => (e: unknown) => (e as { packet?: { granted?: number[] } }).packet?.granted?.includes(code) === true;

describe('gateways in the broker', () => {
  let h: Harness;
  const clients: MqttClient[] = [];
  const audited: AuditEvent[] = [];
  const track = (c: MqttClient): MqttClient => {
    clients.push(c);
    return c;
  };

  before(async () => {
    h = await startBroker({ configRetryMs: 100 }, undefined, { audit: { record: (e) => audited.push(e) } });
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await h.close();
  });

  /** A gateway connection subscribed to its errors topic. */
  async function connectGateway(gw: TestDevice, protocolVersion: 4 | 5 = 4): Promise<{ client: MqttClient; errors: ErrorQueue }> {
    const client = track(await connectDevice(h, gw, { protocolVersion }));
    const errors = errorQueue(client, gw.id);
    await client.subscribeAsync(`/devices/${gw.id}/errors`, { qos: 0 });
    return { client, errors };
  }

  const bind = (gw: TestDevice, d: TestDevice): Promise<void> => h.service.bindDeviceToGateway(REG, gw.id, d.id);
  const attach = (client: MqttClient, d: TestDevice, payload = '{"authorization": ""}'): Promise<unknown> =>
    client.publishAsync(`/devices/${d.id}/attach`, payload, { qos: 1 });

  test('a device that is not a gateway is disconnected for attach or detach, its error recorded (MQTT 5: 0x87)', async () => {
    const d = await addDevice(h, 'plain-attacher');
    const other = await addDevice(h, 'plain-target');
    const v5 = track(await connectDevice(h, d, { protocolVersion: 5 }));
    const reasons: number[] = [];
    v5.on('disconnect', (packet) => reasons.push(packet.reasonCode ?? -1));
    v5.publish(`/devices/${other.id}/attach`, '{}', { qos: 1 });
    await closed(v5);
    assert.deepEqual(reasons, [0x87]);
    assert.match((await lastError(h, d))?.message ?? '', /not a gateway/);
    const v4 = track(await connectDevice(h, d));
    v4.publish(`/devices/${d.id}/detach`, '{}', { qos: 1 });
    await closed(v4);
    const denial = audited.find((e) => e.kind === 'device.authorize' && e.actor === formatDevice(d.name) && e.subject === `/devices/${other.id}/attach`);
    assert.equal(denial?.outcome, 'denied', 'the refused attach is audited');
  });

  test('ASSOCIATION_ONLY: bound devices attached with {"authorization": ""} and {} speak through the gateway as themselves', async () => {
    const gw = await addGateway(h, 'gw-assoc', 'ASSOCIATION_ONLY');
    const d1 = await addDevice(h, 'assoc-1', { config: 'config of 1' });
    const d2 = await addDevice(h, 'assoc-2');
    await bind(gw, d1);
    await bind(gw, d2);
    const backend = track(await connectBackend(h));
    const received = inbox(backend);
    await backend.subscribeAsync(`registries/${REGISTRY}/devices/+/events/#`, { qos: 1 });
    await backend.subscribeAsync(`registries/${REGISTRY}/devices/+/state`, { qos: 1 });

    const { client, errors } = await connectGateway(gw);
    const messages = inbox(client);
    await attach(client, d1, '{"authorization" : ""}');
    await attach(client, d2, '{}');

    await client.publishAsync(`/devices/${d1.id}/events/sensors/t`, 'e1', { qos: 1 });
    await client.publishAsync(`/devices/${d2.id}/state`, 's2', { qos: 1 });
    await eventually(() => assert.equal(received.length, 2, 'both reach the backend'));
    assert.deepEqual(
      received.map((m) => [m.topic, m.payload.toString()]),
      [
        [`registries/${REGISTRY}/devices/${d1.id}/events/sensors/t`, 'e1'],
        [`registries/${REGISTRY}/devices/${d2.id}/state`, 's2'],
      ],
    );
    assert.deepEqual((await h.service.listStates(d2.name)).map((s) => s.binaryData.toString()), ['s2']);

    // Config: the latest at once, acknowledged by the gateway's PUBACK as the device's ack.
    await client.subscribeAsync(`/devices/${d1.id}/config`, { qos: 1 });
    await eventually(() => assert.ok(messages.some((m) => m.topic === `/devices/${d1.id}/config` && m.payload.toString() === 'config of 1'), 'config delivered'));
    await eventually(async () => assert.ok((await h.service.listConfigVersions(d1.name, 1))[0]?.deviceAckTime, 'config not acknowledged yet'));
    await h.service.modifyCloudToDeviceConfig(d1.name, 0, Buffer.from('config v2'));
    await eventually(async () => {
      const [latest] = await h.service.listConfigVersions(d1.name, 1);
      assert.equal(latest?.version, 2, 'version 2');
      assert.ok(latest?.deviceAckTime, 'version 2 not acknowledged yet');
    });
    assert.ok(messages.some((m) => m.payload.toString() === 'config v2'), 'version 2 delivered');

    // Commands: only once the gateway subscribed to the device's commands.
    await assert.rejects(h.service.sendCommandToDevice(d2.name, Buffer.from('x')), /not subscribed to the commands topic/);
    await client.subscribeAsync(`/devices/${d2.id}/commands/#`, { qos: 1 });
    await h.service.sendCommandToDevice(d2.name, Buffer.from('reboot'), 'power');
    await eventually(() => assert.ok(messages.some((m) => m.topic === `/devices/${d2.id}/commands/power` && m.payload.toString() === 'reboot'), 'command delivered'));
    await client.unsubscribeAsync(`/devices/${d2.id}/commands/#`);
    await assert.rejects(h.service.sendCommandToDevice(d2.name, Buffer.from('x')), /not subscribed to the commands topic/, 'unsubscribed');

    await h.service.flush();
    assert.equal((await h.service.getDevice(d1.name)).gatewayConfig.lastAccessedGatewayId, gw.id);
    assert.equal(errors.pending, 0, 'no error along the way');
    const allowed = audited.filter((e) => e.kind === 'device.authorize' && e.actor === formatDevice(gw.name) && e.details?.['action'] === 'attach' && e.outcome === 'allowed');
    assert.deepEqual(allowed.map((e) => e.subject).sort(), [formatDevice(d1.name), formatDevice(d2.name)].sort());
  });

  test('traffic for a device that is not attached is dropped and the gateway told; its connection stays', async () => {
    const gw = await addGateway(h, 'gw-lonely', 'ASSOCIATION_ONLY');
    const stranger = await addDevice(h, 'stranger');
    const backend = track(await connectBackend(h));
    const received = inbox(backend);
    await backend.subscribeAsync(`registries/${REGISTRY}/devices/+/events`, { qos: 1 });
    const { client, errors } = await connectGateway(gw);

    await client.publishAsync(`/devices/${stranger.id}/events`, 'not mine', { qos: 1 });
    const published = await errors.next();
    assert.equal(published.error_type, 'GATEWAY_DEVICE_NOT_FOUND');
    assert.equal(published.device_id, stranger.id);
    assert.equal(published.mqtt_message_info?.message_type, 'PUBLISH');
    assert.equal(published.mqtt_message_info?.topic, `/devices/${stranger.id}/events`);
    assert.equal(typeof published.mqtt_message_info?.packet_id, 'number');

    await assert.rejects(client.subscribeAsync(`/devices/${stranger.id}/config`, { qos: 1 }), subackRefused(0x80));
    const subscribed = await errors.next();
    assert.equal(subscribed.error_type, 'GATEWAY_DEVICE_NOT_FOUND');
    assert.equal(subscribed.mqtt_message_info?.message_type, 'SUBSCRIBE');

    await client.publishAsync(`/devices/${stranger.id}/detach`, '{}', { qos: 1 });
    assert.equal((await errors.next()).error_type, 'GATEWAY_DETACHMENT_ERROR');

    // Its own events go through, after the dropped one: nothing of the stranger reached the backend.
    await client.publishAsync(`/devices/${gw.id}/events`, 'mine', { qos: 1 });
    await eventually(() => assert.equal(received.length, 1, 'the gateway event'));
    assert.equal(received[0]?.topic, `registries/${REGISTRY}/devices/${gw.id}/events`);
    assert.equal(client.connected, true);
    assert.equal(await lastError(h, stranger), undefined, 'the stranger did nothing wrong');
  });

  test('a refused attach is told on the errors topic and still acknowledged (MQTT 5: 0x87, 0x99 for a bad payload)', async () => {
    const gw = await addGateway(h, 'gw-refusing', 'ASSOCIATION_ONLY');
    const unbound = await addDevice(h, 'unbound');
    const otherGateway = await addGateway(h, 'gw-other', 'ASSOCIATION_ONLY');
    const { client, errors } = await connectGateway(gw);
    await attach(client, unbound);
    const error = await errors.next();
    assert.equal(error.error_type, 'GATEWAY_ATTACHMENT_ERROR');
    assert.equal(error.device_id, unbound.id);
    assert.equal(error.mqtt_message_info?.topic, `/devices/${unbound.id}/attach`);
    assert.doesNotMatch(error.description, /not bound/, 'why is for the log, not the gateway');
    await client.publishAsync(`/devices/${unbound.id}/state`, 's', { qos: 1 });
    assert.equal((await errors.next()).error_type, 'GATEWAY_DEVICE_NOT_FOUND', 'it was not attached');

    const v5 = await connectGateway(gw, 5);
    await assert.rejects(attach(v5.client, unbound), rejectedWith(0x87));
    assert.equal((await v5.errors.next()).error_type, 'GATEWAY_ATTACHMENT_ERROR');
    await assert.rejects(v5.client.publishAsync('/devices/nobody-here/attach', '', { qos: 1 }), rejectedWith(0x87));
    assert.equal((await v5.errors.next()).device_id, 'nobody-here');
    await assert.rejects(attach(v5.client, otherGateway), rejectedWith(0x87), 'a gateway is never attached');
    assert.equal((await v5.errors.next()).error_type, 'GATEWAY_ATTACHMENT_ERROR');
    await assert.rejects(attach(v5.client, unbound, 'not json'), rejectedWith(0x99));
    assert.match((await v5.errors.next()).description, /not JSON/);
    await assert.rejects(v5.client.publishAsync(`/devices/${unbound.id}/events`, 'x', { qos: 1 }), rejectedWith(0x87));
    assert.equal((await v5.errors.next()).error_type, 'GATEWAY_DEVICE_NOT_FOUND');
    assert.equal(v5.client.connected, true);
    const denied = audited.filter((e) => e.actor === formatDevice(gw.name) && e.details?.['action'] === 'attach' && e.outcome === 'denied');
    assert.ok(denied.length >= 4, 'refused attaches are audited');
    assert.ok(denied.every((e) => typeof e.reason === 'string' && e.reason.length > 0), 'with their reason');
  });

  test('detach ends the traffic: topics refused, commands no longer delivered, config no longer sent', async () => {
    const gw = await addGateway(h, 'gw-detach', 'ASSOCIATION_ONLY');
    const d = await addDevice(h, 'detached-1', { config: 'c1' });
    await bind(gw, d);
    const { client, errors } = await connectGateway(gw);
    const messages = inbox(client);
    await attach(client, d);
    await client.subscribeAsync([`/devices/${d.id}/config`, `/devices/${d.id}/commands/#`], { qos: 1 });
    await eventually(() => assert.ok(messages.some((m) => m.topic === `/devices/${d.id}/config`), 'config delivered'));
    await client.publishAsync(`/devices/${d.id}/detach`, '{}', { qos: 1 });
    await assert.rejects(h.service.sendCommandToDevice(d.name, Buffer.from('x')), /is not connected/);
    await client.publishAsync(`/devices/${d.id}/events`, 'after', { qos: 1 });
    assert.equal((await errors.next()).error_type, 'GATEWAY_DEVICE_NOT_FOUND');
    const configs = messages.filter((m) => m.topic === `/devices/${d.id}/config`).length;
    await h.service.modifyCloudToDeviceConfig(d.name, 0, Buffer.from('c2'));
    // An error the gateway provokes now arrives after anything the config push would have sent.
    await client.publishAsync(`/devices/${d.id}/state`, 's', { qos: 1 });
    await errors.next();
    assert.equal(messages.filter((m) => m.topic === `/devices/${d.id}/config`).length, configs, 'no config after the detach');
    assert.ok(audited.some((e) => e.actor === formatDevice(gw.name) && e.details?.['action'] === 'detach' && e.outcome === 'allowed'), 'the detach is audited');
  });

  test('the server detaches at once, telling the gateway: a device blocked, deleted, unbound, or the gateway auth method changed', async () => {
    const gw = await addGateway(h, 'gw-server', 'ASSOCIATION_ONLY');
    const ids = ['srv-blocked', 'srv-deleted', 'srv-unbound', 'srv-method'];
    const devices: TestDevice[] = [];
    for (const id of ids) {
      const d = await addDevice(h, id);
      await bind(gw, d);
      devices.push(d);
    }
    const [blocked, deleted, unbound, method] = devices as [TestDevice, TestDevice, TestDevice, TestDevice];
    const { client, errors } = await connectGateway(gw);
    for (const d of devices) await attach(client, d);

    await h.service.patchDevice(blocked.name, { blocked: true }, ['blocked']);
    let error = await errors.next();
    assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_DETACHMENT_DEVICE_ERROR', blocked.id]);
    assert.match(error.description, /blocked/);
    await client.publishAsync(`/devices/${blocked.id}/events`, 'x', { qos: 1 });
    assert.equal((await errors.next()).error_type, 'GATEWAY_DEVICE_NOT_FOUND', 'its topics are refused');

    // Deleting a device unbinds it first: either says why it went.
    await h.service.deleteDevice(deleted.name);
    error = await errors.next();
    assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_DETACHMENT_DEVICE_ERROR', deleted.id]);
    assert.match(error.description, /deleted|unbound/);

    await h.service.unbindDeviceFromGateway(REG, gw.id, unbound.id);
    error = await errors.next();
    assert.deepEqual([error.device_id, error.description], [unbound.id, 'The device was unbound from the gateway.']);

    await h.service.patchDevice(gw.name, { gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: 'DEVICE_AUTH_TOKEN_ONLY' } }, ['gateway_config.gateway_auth_method']);
    error = await errors.next();
    assert.deepEqual([error.device_id, error.error_type], [method.id, 'GATEWAY_DETACHMENT_DEVICE_ERROR']);
    assert.match(error.description, /authentication method/);
    assert.equal(client.connected, true, 'the gateway keeps its connection through all of it');
  });

  test("DEVICE_AUTH_TOKEN_ONLY: the device's own JWT; a wrong one is refused, a credential change or the token's expiry detaches", async () => {
    const skewless = await startBroker({ jwtSkewSeconds: 0 });
    try {
      const gw = await addGateway(skewless, 'gw-token', 'DEVICE_AUTH_TOKEN_ONLY');
      const d = await addDevice(skewless, 'token-dev');
      const other = await addDevice(skewless, 'token-other');
      const client = track(await connectDevice(skewless, gw));
      const errors = errorQueue(client, gw.id);
      await client.subscribeAsync(`/devices/${gw.id}/errors`, { qos: 0 });

      await client.publishAsync(`/devices/${d.id}/attach`, '{}', { qos: 1 });
      assert.equal((await errors.next()).error_type, 'GATEWAY_ATTACHMENT_ERROR', 'no token');
      await client.publishAsync(`/devices/${d.id}/attach`, JSON.stringify({ authorization: await other.token() }), { qos: 1 });
      assert.equal((await errors.next()).error_type, 'GATEWAY_ATTACHMENT_ERROR', "another device's token");
      await client.publishAsync(`/devices/${d.id}/attach`, JSON.stringify({ authorization: await d.token() }), { qos: 1 });
      await client.publishAsync(`/devices/${d.id}/events`, 'ok', { qos: 1 });
      assert.equal(errors.pending, 0, 'attached with its own token');

      const fresh = keyPair();
      await skewless.service.patchDevice(d.name, { credentials: [{ publicKey: { format: fresh.format, key: fresh.publicPem } }] }, ['credentials']);
      let error = await errors.next();
      assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_DETACHMENT_DEVICE_ERROR', d.id]);
      assert.match(error.description, /credential/);

      const shortLived = await signDeviceJwt(fresh.privatePem, { audience: PROJECT, lifetimeSeconds: 2 });
      await client.publishAsync(`/devices/${d.id}/attach`, JSON.stringify({ authorization: shortLived }), { qos: 1 });
      error = await errors.next(5000);
      assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_DETACHMENT_DEVICE_ERROR', d.id]);
      assert.match(error.description, /expired/);
      assert.match((await lastError(skewless, d))?.message ?? '', /expired/);
      assert.equal(client.connected, true);
    } finally {
      await skewless.close();
    }
  });

  test('one connection per device: attaching takes a device over from its own connection, and connecting on its own detaches it', async () => {
    const gw = await addGateway(h, 'gw-takeover', 'ASSOCIATION_ONLY');
    const gw2 = await addGateway(h, 'gw-takeover-2', 'ASSOCIATION_ONLY');
    const d = await addDevice(h, 'takeover-dev');
    await bind(gw, d);
    await bind(gw2, d);
    const direct = track(await connectDevice(h, d));
    const { client, errors } = await connectGateway(gw);
    await attach(client, d);
    await closed(direct);

    const again = track(await connectDevice(h, d));
    let error = await errors.next();
    assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_DETACHMENT_DEVICE_ERROR', d.id]);
    assert.match(error.description, /connected on its own/);
    await again.subscribeAsync(`/devices/${d.id}/commands/#`, { qos: 0 });
    const got = inbox(again);
    await h.service.sendCommandToDevice(d.name, Buffer.from('to the device itself'));
    await eventually(() => assert.equal(got.length, 1, 'the command reaches its own connection'));

    // Attached to one gateway, then to another: the first is told.
    await attach(client, d);
    await closed(again);
    const second = await connectGateway(gw2);
    await attach(second.client, d);
    error = await errors.next();
    assert.match(error.description, /another gateway/);
    await second.client.publishAsync(`/devices/${d.id}/events`, 'via the second', { qos: 1 });
    assert.equal(second.errors.pending, 0);
  });

  test('what would disconnect an attached device on its own detaches it; the gateway stays', async () => {
    const gw = await addGateway(h, 'gw-rules', 'ASSOCIATION_ONLY');
    const big = await addDevice(h, 'rule-big');
    const wrong = await addDevice(h, 'rule-topic');
    const errorsTopic = await addDevice(h, 'rule-errors');
    for (const d of [big, wrong, errorsTopic]) await bind(gw, d);
    const { client, errors } = await connectGateway(gw);
    for (const d of [big, wrong, errorsTopic]) await attach(client, d);

    await client.publishAsync(`/devices/${big.id}/events`, Buffer.alloc(256 * 1024 + 1), { qos: 1 });
    let error = await errors.next();
    assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_DETACHMENT_DEVICE_ERROR', big.id]);
    assert.match((await lastError(h, big))?.message ?? '', /exceeds/);

    await client.publishAsync(`/devices/${wrong.id}/config`, 'x', { qos: 1 });
    error = await errors.next();
    assert.equal(error.device_id, wrong.id);
    assert.match(error.description, /not allowed to publish/);

    await assert.rejects(client.subscribeAsync(`/devices/${errorsTopic.id}/errors`, { qos: 0 }), subackRefused(0x80));
    error = await errors.next();
    assert.equal(error.device_id, errorsTopic.id);
    assert.match(error.description, /not allowed to subscribe/);
    assert.equal(client.connected, true);
  });

  test("the gateway's connection ending ends its attachments", async () => {
    const gw = await addGateway(h, 'gw-leaving', 'ASSOCIATION_ONLY');
    const d = await addDevice(h, 'left-behind');
    await bind(gw, d);
    const { client } = await connectGateway(gw);
    await attach(client, d);
    await client.subscribeAsync(`/devices/${d.id}/commands/#`, { qos: 0 });
    await h.service.sendCommandToDevice(d.name, Buffer.from('while attached'));
    await client.endAsync();
    await eventually(() => assert.rejects(h.service.sendCommandToDevice(d.name, Buffer.from('x')), /is not connected/));
  });
});

describe('gateway attaches racing the registry', () => {
  let h: Harness;
  const clients: MqttClient[] = [];
  /** The next attach decision waits, once made, until released: what lands meanwhile must count. */
  const decisions = holdingDecisions('authorizeGatewayDevice');
  const holdNextDecision = decisions.holdNext;

  before(async () => {
    h = await startBroker({}, decisions.wrap);
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await h.close();
  });

  async function attachedGateway(id: string, deviceIds: readonly string[]) {
    const gw = await addGateway(h, id, 'ASSOCIATION_ONLY');
    const devices: TestDevice[] = [];
    for (const deviceId of deviceIds) {
      const d = await addDevice(h, deviceId);
      await h.service.bindDeviceToGateway(REG, gw.id, d.id);
      devices.push(d);
    }
    const client = await connectDevice(h, gw);
    clients.push(client);
    const errors = errorQueue(client, gw.id);
    await client.subscribeAsync(`/devices/${gw.id}/errors`, { qos: 0 });
    return { gw, devices, client, errors };
  }

  test('a device blocked or unbound while its attach is decided is not attached', async () => {
    const { gw, devices, client, errors } = await attachedGateway('race-gw', ['race-blocked', 'race-unbound']);
    const [blocked, unbound] = devices as [TestDevice, TestDevice];

    let decision = holdNextDecision();
    const first = client.publishAsync(`/devices/${blocked.id}/attach`, '{}', { qos: 1 });
    await decision.arrived;
    await h.service.patchDevice(blocked.name, { blocked: true }, ['blocked']);
    decision.release();
    await first;
    let error = await errors.next();
    assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_ATTACHMENT_ERROR', blocked.id]);

    decision = holdNextDecision();
    const second = client.publishAsync(`/devices/${unbound.id}/attach`, '{}', { qos: 1 });
    await decision.arrived;
    await h.service.unbindDeviceFromGateway(REG, gw.id, unbound.id);
    decision.release();
    await second;
    error = await errors.next();
    assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_ATTACHMENT_ERROR', unbound.id]);
    await client.publishAsync(`/devices/${unbound.id}/events`, 'x', { qos: 1 });
    assert.equal((await errors.next()).error_type, 'GATEWAY_DEVICE_NOT_FOUND');
  });

  test('a gateway that disconnects while an attach is decided leaves nothing attached', async () => {
    const { devices, client } = await attachedGateway('race-gone', ['race-orphan']);
    const [orphan] = devices as [TestDevice];
    const decision = holdNextDecision();
    client.publish(`/devices/${orphan.id}/attach`, '{}', { qos: 1 });
    await decision.arrived;
    client.end(true);
    await closed(client);
    decision.release();
    // The same device may connect on its own, and commands find only that connection.
    const direct = await connectDevice(h, orphan);
    clients.push(direct);
    await assert.rejects(h.service.sendCommandToDevice(orphan.name, Buffer.from('x')), /not subscribed to the commands topic/);
  });
});
