/**
 * A device attached to a gateway runs under its own policy, exactly as on a connection of its own
 * (real TLS, the real device manager and PolicyService): a Deny refuses the attach (`connect`),
 * detaches it for a denied publish or subscribe, keeps its commands from the gateway (`receive`),
 * and a policy attached later takes effect on the next message. The gateway's own topics follow
 * the gateway's policy alone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { AuditEvent } from '../domain/audit-events.js';
import { KeywayError } from '../domain/errors.js';
import { formatDevice, type DeviceName } from '../domain/names.js';
import { signDeviceJwt } from '../identity/device-jwt.js';
import type { PolicyAction, PolicyDocument } from '../policy/index.js';
import { errorQueue, type ErrorQueue } from '../../test/support/gateway-errors.js';
import {
  PROJECT,
  REG,
  REGISTRY,
  addDevice,
  connectDevice,
  eventually,
  inbox,
  keyPair,
  lastError,
  startBroker,
  type Harness,
  type TestDevice,
} from './broker-harness.test.js';

const rejectedWith = (code: number) => (e: unknown) => (e as { code?: number }).code === code;
const notSubscribed = (e: unknown): boolean =>
  e instanceof KeywayError && e.status === 'FAILED_PRECONDITION' && /not subscribed to the commands topic/.test(e.message);

const deny = (actions: PolicyAction[], resources: string[]): PolicyDocument => ({
  version: '2026-01-01',
  statements: [{ effect: 'Deny', actions, resources }],
});

describe('attached devices under their own policies', () => {
  let h: Harness;
  const clients: MqttClient[] = [];
  const audited: AuditEvent[] = [];

  before(async () => {
    h = await startBroker({}, undefined, { audit: { record: (e) => audited.push(e) } });
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await h.close();
  });

  async function addGateway(id: string): Promise<TestDevice> {
    const keys = keyPair();
    const name: DeviceName = { ...REG, device: id };
    await h.service.createDevice(REG, id, {
      credentials: [{ publicKey: { format: keys.format, key: keys.publicPem } }],
      gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: 'ASSOCIATION_ONLY' },
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

  /** A gateway connected and subscribed to its errors topic, with `devices` bound to it. */
  async function gatewayWith(id: string, devices: TestDevice[], protocolVersion: 4 | 5 = 4): Promise<{ gw: TestDevice; client: MqttClient; errors: ErrorQueue }> {
    const gw = await addGateway(id);
    for (const d of devices) await h.service.bindDeviceToGateway(REG, gw.id, d.id);
    const client = await connectDevice(h, gw, { protocolVersion });
    clients.push(client);
    const errors = errorQueue(client, gw.id);
    await client.subscribeAsync(`/devices/${gw.id}/errors`, { qos: 0 });
    return { gw, client, errors };
  }

  const attach = (client: MqttClient, d: TestDevice): Promise<unknown> => client.publishAsync(`/devices/${d.id}/attach`, '{}', { qos: 1 });

  /** A device with a Deny policy of its own. */
  async function deniedDevice(id: string, document: PolicyDocument): Promise<TestDevice> {
    const d = await addDevice(h, id);
    await h.policies.createPolicy(REG, id, document);
    await h.policies.attachPolicy(REG, id, { deviceId: id });
    return d;
  }

  test("a Deny on the attached device's state publish detaches it; its events and the gateway's own state still go", async () => {
    const d = await deniedDevice('gp-no-state', deny(['publish'], ['/devices/${device.id}/state']));
    const { gw, client, errors } = await gatewayWith('gp-gw-state', [d]);
    await attach(client, d);
    await client.publishAsync(`/devices/${d.id}/events`, 'allowed', { qos: 1 });

    await client.publishAsync(`/devices/${d.id}/state`, 'denied', { qos: 1 });
    const error = await errors.next();
    assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_DETACHMENT_DEVICE_ERROR', d.id]);
    assert.equal(error.mqtt_message_info?.topic, `/devices/${d.id}/state`);
    assert.equal((await lastError(h, d))?.code, 7, 'its error is PERMISSION_DENIED');
    assert.deepEqual(await h.service.listStates(d.name), [], 'no state stored');
    assert.ok(
      audited.some((e) => e.actor === formatDevice(gw.name) && e.subject === `/devices/${d.id}/state` && e.reason === 'denied by the attached device policy'),
      'the denial is audited',
    );
    await client.publishAsync(`/devices/${d.id}/events`, 'after', { qos: 1 });
    assert.equal((await errors.next()).error_type, 'GATEWAY_DEVICE_NOT_FOUND', 'it was detached');

    // The device's Deny is not the gateway's: its own state goes through, its connection stays.
    await client.publishAsync(`/devices/${gw.id}/state`, 'gateway state', { qos: 1 });
    await eventually(async () => assert.equal((await h.service.listStates(gw.name))[0]?.binaryData.toString(), 'gateway state', 'the gateway state is stored'));
    assert.equal(client.connected, true);
    assert.equal(errors.pending, 0);
  });

  test('a Deny of receive on its commands keeps them from the gateway (FAILED_PRECONDITION); a Deny of subscribe detaches it', async () => {
    const d = await deniedDevice('gp-no-commands', deny(['receive'], ['/devices/${device.id}/commands/#']));
    const e = await deniedDevice('gp-no-config', deny(['subscribe'], ['/devices/${device.id}/config']));
    const { client, errors } = await gatewayWith('gp-gw-commands', [d, e]);
    const messages = inbox(client);
    await attach(client, d);
    await attach(client, e);
    // Subscribing is allowed: receiving is not.
    assert.deepEqual((await client.subscribeAsync(`/devices/${d.id}/commands/#`, { qos: 1 })).map((g) => g.qos), [1]);
    await assert.rejects(h.service.sendCommandToDevice(d.name, Buffer.from('x'), 'power'), notSubscribed);
    await assert.rejects(h.service.sendCommandToDevice(d.name, Buffer.from('x')), notSubscribed);
    // The other attached device's config subscription is refused by its policy: it is detached.
    await assert.rejects(client.subscribeAsync(`/devices/${e.id}/config`, { qos: 1 }));
    const error = await errors.next();
    assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_DETACHMENT_DEVICE_ERROR', e.id]);
    assert.equal(error.mqtt_message_info?.message_type, 'SUBSCRIBE');
    assert.equal(messages.filter((m) => m.topic.startsWith(`/devices/${d.id}/commands`)).length, 0, 'no command reached the gateway');
    assert.equal(client.connected, true);
  });

  test('a Deny of connect refuses the attach, audited (MQTT 5: 0x87)', async () => {
    const d = await deniedDevice('gp-no-connect', deny(['connect'], ['${device.id}']));
    const { gw, client, errors } = await gatewayWith('gp-gw-connect', [d], 5);
    await assert.rejects(attach(client, d), rejectedWith(0x87));
    const error = await errors.next();
    assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_ATTACHMENT_ERROR', d.id]);
    assert.ok(
      audited.some((e) => e.actor === formatDevice(gw.name) && e.details?.['action'] === 'attach' && e.outcome === 'denied' && e.reason === 'the device policy denies connect'),
      'the refused attach is audited',
    );
    await assert.rejects(client.publishAsync(`/devices/${d.id}/events`, 'x', { qos: 1 }), rejectedWith(0x87));
    assert.equal((await errors.next()).error_type, 'GATEWAY_DEVICE_NOT_FOUND', 'it was not attached');
    // The gateway's own topics are its policy's.
    await client.publishAsync(`/devices/${gw.id}/events`, 'mine', { qos: 1 });
    assert.equal(client.connected, true);
  });

  test('a Deny attached to a device already attached takes effect on the next message; a Deny of connect then detaches it', async () => {
    const d = await addDevice(h, 'gp-later');
    const { client, errors } = await gatewayWith('gp-gw-later', [d]);
    const messages = inbox(client);
    await attach(client, d);
    await client.subscribeAsync(`/devices/${d.id}/commands/#`, { qos: 1 });
    await client.publishAsync(`/devices/${d.id}/state`, 'before', { qos: 1 });
    await h.service.sendCommandToDevice(d.name, Buffer.from('before'));
    await eventually(() => assert.ok(messages.some((m) => m.topic === `/devices/${d.id}/commands`), 'the command before the Deny is delivered'));

    await h.policies.createPolicy(REG, 'gp-later', {
      version: '2026-01-01',
      statements: [{ effect: 'Deny', actions: ['publish', 'receive'], resources: ['/devices/${device.id}/state', '/devices/${device.id}/commands/#'] }],
    });
    await h.policies.attachPolicy(REG, 'gp-later', { deviceId: d.id });
    // Recompiled behind the change: commands stop once it is swapped in.
    await eventually(() => assert.rejects(h.service.sendCommandToDevice(d.name, Buffer.from('after')), notSubscribed, 'commands still delivered'));
    await client.publishAsync(`/devices/${d.id}/state`, 'after', { qos: 1 });
    const error = await errors.next();
    assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_DETACHMENT_DEVICE_ERROR', d.id]);
    assert.deepEqual((await h.service.listStates(d.name)).map((s) => s.binaryData.toString()), ['before']);

    // Attached again, then its connect denied: it is detached at once, the gateway told.
    await attach(client, d);
    await h.policies.createPolicy(REG, 'gp-later-connect', deny(['connect'], ['${device.id}']));
    await h.policies.attachPolicy(REG, 'gp-later-connect', { deviceId: d.id });
    const detached = await errors.next();
    assert.deepEqual([detached.error_type, detached.device_id], ['GATEWAY_DETACHMENT_DEVICE_ERROR', d.id]);
    assert.match(detached.description, /policy/);
    assert.equal(client.connected, true);
  });
});
