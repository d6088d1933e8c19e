/**
 * Gateways end to end (reference §1.10): a real server, the admin API for devices, bindings,
 * configs and commands, mqtt.js over TLS for the gateway and a backend subscriber. Under each of
 * the three gateway auth methods one gateway attaches two devices and speaks for them; then the
 * rules are tried: a device that is not a gateway, an unbound device, a wrong token, and block,
 * unbind, a credential change and detach each ending a device's traffic at once (measured by the
 * error message the gateway gets, never by waiting).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { startTestServer, type TestServer } from './support/server.js';
import { closed, connectClient, deviceKeys, devicePath, validToken, type DeviceKeys } from './support/devices.js';
import { PROJECT, REGION, createDevice, createRegistry, devicePathUrl, eventually, registryPath } from './support/fixtures.js';
import { errorQueue, type ErrorQueue } from './support/gateway-errors.js';

const REGISTRY = 'plant';
const b64 = (text: string): string => Buffer.from(text).toString('base64');

type Method = 'ASSOCIATION_ONLY' | 'DEVICE_AUTH_TOKEN_ONLY' | 'ASSOCIATION_AND_DEVICE_AUTH_TOKEN';
const needsBinding = (m: Method): boolean => m !== 'DEVICE_AUTH_TOKEN_ONLY';
const needsToken = (m: Method): boolean => m !== 'ASSOCIATION_ONLY';

interface Device {
  readonly id: string;
  readonly keys: DeviceKeys;
}

interface Message {
  readonly topic: string;
  readonly payload: string;
}

describe('gateways', () => {
  let ts: TestServer;
  const clients: MqttClient[] = [];
  let backendMessages: Message[];

  before(async () => {
    ts = await startTestServer({ mqttLimits: { configRetryMs: 300 } });
    await createRegistry(ts, REGISTRY);
    const backend = await connectClient(ts.mqttPort, ts.ca, { clientId: 'gateway-backend', ...(await ts.backend(PROJECT)) });
    clients.push(backend);
    backendMessages = [];
    backend.on('message', (topic, payload) => backendMessages.push({ topic, payload: payload.toString() }));
    await backend.subscribeAsync(`registries/${REGISTRY}/#`, { qos: 1 });
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await ts.close();
  });

  async function device(id: string, type: 'es256' | 'rs256' = 'es256', body: Record<string, unknown> = {}): Promise<Device> {
    const keys = deviceKeys(type);
    await createDevice(ts, REGISTRY, id, keys, body);
    return { id, keys };
  }

  const gateway = (id: string, method: Method): Promise<Device> =>
    device(id, 'es256', { gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: method } });

  async function api(method: string, path: string, body?: unknown, expected = 200) {
    const res = await ts.api(method, path, body);
    assert.equal(res.status, expected, `${method} ${path}: ${JSON.stringify(res.body)}`);
    return res.body;
  }

  const bind = (gw: Device, d: Device) => api('POST', `${registryPath(REGISTRY)}:bindDeviceToGateway`, { gatewayId: gw.id, deviceId: d.id });
  const sendCommand = (d: Device, text: string) =>
    ts.api('POST', `${devicePathUrl(REGISTRY, d.id)}:sendCommandToDevice`, { binaryData: b64(text) });

  async function connect(d: Device): Promise<MqttClient> {
    const client = await connectClient(ts.mqttPort, ts.ca, {
      clientId: devicePath(PROJECT, REGION, REGISTRY, d.id),
      username: 'unused',
      password: validToken(d.keys, PROJECT),
    });
    clients.push(client);
    return client;
  }

  async function connectGateway(gw: Device): Promise<{ client: MqttClient; errors: ErrorQueue; messages: Message[] }> {
    const client = await connect(gw);
    const errors = errorQueue(client, gw.id);
    const messages: Message[] = [];
    client.on('message', (topic, payload) => messages.push({ topic, payload: payload.toString() }));
    // The samples subscribe to the errors topic at QoS 0.
    await client.subscribeAsync(`/devices/${gw.id}/errors`, { qos: 0 });
    return { client, errors, messages };
  }

  /** What the gateway sends to attach `d` under `method` (Python's and Node's samples for association). */
  const attachPayload = (method: Method, d: Device, index = 0): string =>
    needsToken(method) ? JSON.stringify({ authorization: validToken(d.keys, PROJECT) }) : index === 0 ? '{"authorization" : ""}' : '{}';

  const attach = (client: MqttClient, d: Device, payload: string) => client.publishAsync(`/devices/${d.id}/attach`, payload, { qos: 1 });

  for (const method of ['ASSOCIATION_ONLY', 'DEVICE_AUTH_TOKEN_ONLY', 'ASSOCIATION_AND_DEVICE_AUTH_TOKEN'] as const) {
    test(`${method}: a gateway attaches two devices and speaks for them: events, state, config and its ack, commands`, async () => {
      const tag = method.toLowerCase().replace(/_/g, '-').slice(0, 20);
      const gw = await gateway(`gw-${tag}`, method);
      const a = await device(`${tag}-a`, 'es256', { config: { binaryData: b64(`config of a`) } });
      const b = await device(`${tag}-b`, 'rs256');
      if (needsBinding(method)) {
        await bind(gw, a);
        await bind(gw, b);
      }
      const { client, errors, messages } = await connectGateway(gw);
      await attach(client, a, attachPayload(method, a, 0));
      await attach(client, b, attachPayload(method, b, 1));

      for (const d of [a, b]) {
        await client.publishAsync(`/devices/${d.id}/events/line-1`, `event of ${d.id}`, { qos: 1 });
        await client.publishAsync(`/devices/${d.id}/state`, `state of ${d.id}`, { qos: 1 });
      }
      await eventually(() => {
        for (const d of [a, b]) {
          const mine = backendMessages.filter((m) => m.topic.startsWith(`registries/${REGISTRY}/devices/${d.id}/`));
          assert.deepEqual(
            mine.map((m) => [m.topic, m.payload]),
            [
              [`registries/${REGISTRY}/devices/${d.id}/events/line-1`, `event of ${d.id}`],
              [`registries/${REGISTRY}/devices/${d.id}/state`, `state of ${d.id}`],
            ],
            `the backend sees ${d.id}'s own traffic`,
          );
        }
      });
      for (const d of [a, b]) {
        const states = await api('GET', `${devicePathUrl(REGISTRY, d.id)}/states`);
        assert.equal(Buffer.from(states.deviceStates[0].binaryData, 'base64').toString(), `state of ${d.id}`);
      }
      assert.equal(backendMessages.some((m) => m.topic.includes(`/devices/${gw.id}/`)), false, 'nothing under the gateway');

      // Config of a: sent at once, the gateway's PUBACK is a's acknowledgement.
      await client.subscribeAsync(`/devices/${a.id}/config`, { qos: 1 });
      await eventually(() => assert.ok(messages.some((m) => m.topic === `/devices/${a.id}/config` && m.payload === 'config of a'), 'config delivered'));
      await eventually(async () => {
        const described = await api('GET', devicePathUrl(REGISTRY, a.id));
        assert.ok(described.lastConfigAckTime, 'config acknowledged');
      });

      // Commands of b, once subscribed.
      assert.equal((await sendCommand(b, 'too early')).status, 400);
      await client.subscribeAsync(`/devices/${b.id}/commands/#`, { qos: 1 });
      const sent = await sendCommand(b, 'start the line');
      assert.equal(sent.status, 200, JSON.stringify(sent.body));
      await eventually(() => assert.ok(messages.some((m) => m.topic === `/devices/${b.id}/commands` && m.payload === 'start the line'), 'command delivered'));

      // A device it never attached: an error, the message dropped.
      await client.publishAsync(`/devices/${tag}-stranger/events`, 'x', { qos: 1 });
      const error = await errors.next();
      assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_DEVICE_NOT_FOUND', `${tag}-stranger`]);
      assert.equal(client.connected, true);

      const described = await api('GET', `${devicePathUrl(REGISTRY, a.id)}?fieldMask=gatewayConfig`);
      assert.equal(described.gatewayConfig?.lastAccessedGatewayId, gw.id);
    });
  }

  test('a device that is not a gateway is disconnected when it tries to attach another', async () => {
    const d = await device('not-a-gateway');
    const victim = await device('victim');
    const client = await connect(d);
    client.publish(`/devices/${victim.id}/attach`, '{}', { qos: 1 });
    await closed(client);
    const described = await eventually(async () => {
      const body = await api('GET', devicePathUrl(REGISTRY, d.id));
      assert.ok(body.lastErrorStatus, 'error recorded');
      return body;
    });
    assert.match(described.lastErrorStatus.message, /not a gateway/);
  });

  test('an unbound device, a missing or wrong token: GATEWAY_ATTACHMENT_ERROR, nothing attached, the gateway stays', async () => {
    const assoc = await gateway('gw-refuses-assoc', 'ASSOCIATION_ONLY');
    const both = await gateway('gw-refuses-both', 'ASSOCIATION_AND_DEVICE_AUTH_TOKEN');
    const unbound = await device('refused-unbound');
    const bound = await device('refused-bound');
    await bind(both, bound);
    const other = await device('refused-other');

    const g1 = await connectGateway(assoc);
    await attach(g1.client, unbound, '{"authorization": ""}');
    let error = await g1.errors.next();
    assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_ATTACHMENT_ERROR', unbound.id]);

    const g2 = await connectGateway(both);
    for (const payload of ['{}', JSON.stringify({ authorization: validToken(other.keys, PROJECT) }), JSON.stringify({ authorization: 'not.a.jwt' })]) {
      await attach(g2.client, bound, payload);
      error = await g2.errors.next();
      assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_ATTACHMENT_ERROR', bound.id], payload);
    }
    // Its own token, but not bound: both are needed.
    await attach(g2.client, unbound, JSON.stringify({ authorization: validToken(unbound.keys, PROJECT) }));
    error = await g2.errors.next();
    assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_ATTACHMENT_ERROR', unbound.id]);

    await g2.client.publishAsync(`/devices/${bound.id}/events`, 'x', { qos: 1 });
    assert.equal((await g2.errors.next()).error_type, 'GATEWAY_DEVICE_NOT_FOUND', 'nothing was attached');
    assert.ok(g1.client.connected && g2.client.connected);
  });

  test('block, unbind, a credential change and detach each end a device’s traffic at once', async () => {
    const gw = await gateway('gw-breaks', 'ASSOCIATION_AND_DEVICE_AUTH_TOKEN');
    const all = await Promise.all(['brk-blocked', 'brk-unbound', 'brk-rekeyed', 'brk-detached'].map((id) => device(id)));
    const [blocked, unbound, rekeyed, detached] = all as [Device, Device, Device, Device];
    for (const d of all) await bind(gw, d);
    const { client, errors } = await connectGateway(gw);
    for (const d of all) {
      await attach(client, d, attachPayload('ASSOCIATION_AND_DEVICE_AUTH_TOKEN', d));
      await client.subscribeAsync(`/devices/${d.id}/commands/#`, { qos: 0 });
      assert.equal((await sendCommand(d, 'ping')).status, 200, `${d.id} reachable while attached`);
    }

    const endsAtOnce = async (d: Device, expected: RegExp): Promise<void> => {
      const error = await errors.next();
      assert.deepEqual([error.error_type, error.device_id], ['GATEWAY_DETACHMENT_DEVICE_ERROR', d.id]);
      assert.match(error.description, expected);
      await client.publishAsync(`/devices/${d.id}/state`, 'after', { qos: 1 });
      const refused = await errors.next();
      assert.deepEqual([refused.error_type, refused.device_id], ['GATEWAY_DEVICE_NOT_FOUND', d.id], 'its topics are refused');
      const command = await sendCommand(d, 'after');
      assert.equal(command.status, 400, `commands no longer reach ${d.id}`);
    };

    await api('PATCH', `${devicePathUrl(REGISTRY, blocked.id)}?updateMask=blocked`, { blocked: true });
    await endsAtOnce(blocked, /blocked/);

    await api('POST', `${registryPath(REGISTRY)}:unbindDeviceFromGateway`, { gatewayId: gw.id, deviceId: unbound.id });
    await endsAtOnce(unbound, /unbound/);

    await api('PATCH', `${devicePathUrl(REGISTRY, rekeyed.id)}?updateMask=credentials`, { credentials: [deviceKeys('es256').credential] });
    await endsAtOnce(rekeyed, /credential/);

    await client.publishAsync(`/devices/${detached.id}/detach`, '{}', { qos: 1 });
    await client.publishAsync(`/devices/${detached.id}/events`, 'after', { qos: 1 });
    const refused = await errors.next();
    assert.deepEqual([refused.error_type, refused.device_id], ['GATEWAY_DEVICE_NOT_FOUND', detached.id]);
    assert.equal((await sendCommand(detached, 'after')).status, 400);

    assert.equal(client.connected, true, 'the gateway keeps its connection through all of it');
    assert.equal(backendMessages.some((m) => m.payload === 'after'), false, 'nothing after the end reached the backend');
  });
});
