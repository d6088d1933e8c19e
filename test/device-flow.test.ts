/**
 * End to end over real TLS: ES256 and RS256 devices connect with their own JWTs, publish events
 * and state, receive configuration and commands, and a backend subscriber with the admin token
 * receives their events.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import type { IPublishPacket, ISubackPacket } from 'mqtt-packet';
import { RawClient } from './support/raw-client.js';
import { startTestServer, type TestServer } from './support/server.js';
import { closed, connectClient, deviceKeys, devicePath, validToken } from './support/devices.js';
import { PROJECT, REGION, createDevice, createRegistry, devicePathUrl, eventually, registryPath } from './support/fixtures.js';

const REGISTRY = 'fleet';

function nextMessage(client: MqttClient, filter: (topic: string) => boolean = () => true): Promise<{ topic: string; payload: Buffer; qos: number }> {
  return new Promise((resolve) => {
    const on = (topic: string, payload: Buffer, packet: { qos: number }): void => {
      if (!filter(topic)) return;
      client.off('message', on);
      resolve({ topic, payload, qos: packet.qos });
    };
    client.on('message', on);
  });
}

describe('device flow', () => {
  let ts: TestServer;
  const clients: MqttClient[] = [];
  const raws: RawClient[] = [];
  before(async () => {
    ts = await startTestServer({ mqttLimits: { configRetryMs: 300 } });
    await createRegistry(ts, REGISTRY);
  });
  after(async () => {
    for (const c of clients) c.end(true);
    for (const r of raws) r.end();
    await ts.close();
  });

  async function device(id: string, type: 'es256' | 'rs256'): Promise<MqttClient> {
    const keys = deviceKeys(type);
    await createDevice(ts, REGISTRY, id, keys);
    const client = await connectClient(ts.mqttPort, ts.ca, {
      clientId: devicePath(PROJECT, REGION, REGISTRY, id),
      username: 'unused',
      password: validToken(keys, PROJECT),
    });
    clients.push(client);
    return client;
  }

  async function backend(filter: string): Promise<MqttClient> {
    const client = await connectClient(ts.mqttPort, ts.ca, { clientId: `backend-${clients.length}`, ...(await ts.backend(PROJECT)) });
    clients.push(client);
    const granted = await client.subscribeAsync(filter, { qos: 1 });
    assert.equal(granted[0]?.qos, 1);
    return client;
  }

  for (const type of ['es256', 'rs256'] as const) {
    test(`${type} device publishes events (with and without subfolder) and state; the backend receives them`, async () => {
      const id = `events-${type}`;
      const sub = await backend(`registries/${REGISTRY}/devices/${id}/#`);
      const dev = await device(id, type);

      let got = nextMessage(sub);
      await dev.publishAsync(`/devices/${id}/events`, 'plain', { qos: 1 });
      let m = await got;
      assert.equal(m.topic, `registries/${REGISTRY}/devices/${id}/events`);
      assert.equal(m.payload.toString(), 'plain');

      got = nextMessage(sub);
      await dev.publishAsync(`/devices/${id}/events/alerts/high`, Buffer.from([0, 1, 2, 255]), { qos: 1 });
      m = await got;
      assert.equal(m.topic, `registries/${REGISTRY}/devices/${id}/events/alerts/high`);
      assert.deepEqual([...m.payload], [0, 1, 2, 255]);

      got = nextMessage(sub);
      await dev.publishAsync(`/devices/${id}/state`, '{"temp":21}', { qos: 1 });
      m = await got;
      assert.equal(m.topic, `registries/${REGISTRY}/devices/${id}/state`);

      const states = await ts.api('GET', `${devicePathUrl(REGISTRY, id)}/states`);
      assert.equal(states.status, 200);
      assert.equal(Buffer.from(states.body.deviceStates[0].binaryData, 'base64').toString(), '{"temp":21}');

      const described = await eventually(async () => {
        const r = await ts.api('GET', devicePathUrl(REGISTRY, id));
        assert.ok(r.body.lastEventTime, 'lastEventTime recorded');
        assert.ok(r.body.lastStateTime, 'lastStateTime recorded');
        return r.body;
      });
      assert.equal(Buffer.from(described.state.binaryData, 'base64').toString(), '{"temp":21}');
    });
  }

  test('config: latest version on subscribe, pushed on update, re-sent at QoS 1 until PUBACK, which records the ack', async () => {
    const id = 'config-dev';
    const keys = deviceKeys('es256');
    await createDevice(ts, REGISTRY, id, keys, { config: { binaryData: Buffer.from('v1').toString('base64') } });
    let update = await ts.api('POST', `${devicePathUrl(REGISTRY, id)}:modifyCloudToDeviceConfig`, {
      versionToUpdate: '1',
      binaryData: Buffer.from('{"interval":10}').toString('base64'),
    });
    assert.equal(update.status, 200, JSON.stringify(update.body));
    assert.equal(update.body.version, '2');

    // A raw client holds back the PUBACK of the first delivery, so the server must re-send it.
    const raw = await RawClient.open(ts.mqttPort, ts.ca);
    raws.push(raw);
    assert.equal((await raw.connect(devicePath(PROJECT, REGION, REGISTRY, id), validToken(keys, PROJECT))).returnCode, 0);
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `/devices/${id}/config`, qos: 1 }] });
    assert.deepEqual(((await raw.next('suback')) as ISubackPacket).granted, [1]);
    const first = (await raw.next('publish')) as IPublishPacket;
    assert.equal(first.payload.toString(), '{"interval":10}');
    assert.equal(first.qos, 1);
    const again = (await raw.next('publish', 3000)) as IPublishPacket;
    assert.equal(again.payload.toString(), '{"interval":10}');
    assert.equal(again.dup, true);
    let before = await ts.api('GET', devicePathUrl(REGISTRY, id));
    assert.equal(before.body.lastConfigAckTime, undefined, 'no ack before the PUBACK');
    raw.send({ cmd: 'puback', messageId: again.messageId });

    const acked = await eventually(async () => {
      const r = await ts.api('GET', devicePathUrl(REGISTRY, id));
      assert.ok(r.body.lastConfigAckTime, 'lastConfigAckTime set');
      return r.body;
    });
    assert.ok(acked.lastConfigSendTime);
    assert.equal(acked.config.version, '2');
    assert.ok(acked.config.deviceAckTime);

    // A new version reaches the connected device at once.
    update = await ts.api('POST', `${devicePathUrl(REGISTRY, id)}:modifyCloudToDeviceConfig`, {
      binaryData: Buffer.from('v3').toString('base64'),
    });
    assert.equal(update.body.version, '3');
    const pushed = (await raw.next('publish')) as IPublishPacket;
    assert.equal(pushed.payload.toString(), 'v3');
    raw.send({ cmd: 'puback', messageId: pushed.messageId });
    const versions = await ts.api('GET', `${devicePathUrl(REGISTRY, id)}/configVersions`);
    assert.deepEqual(versions.body.deviceConfigs.map((c: { version: string }) => c.version), ['3', '2', '1']);
    before = await ts.api('GET', devicePathUrl(REGISTRY, id));
    assert.ok(before.body.lastConfigSendTime);
  });

  test('commands reach a connected, subscribed device; otherwise FAILED_PRECONDITION', async () => {
    const id = 'command-dev';
    const keys = deviceKeys('rs256');
    await createDevice(ts, REGISTRY, id, keys);
    const send = (body: Record<string, unknown>) => ts.api('POST', `${devicePathUrl(REGISTRY, id)}:sendCommandToDevice`, body);
    const reboot = { binaryData: Buffer.from('reboot').toString('base64') };

    let res = await send(reboot);
    assert.equal(res.status, 400);
    assert.equal(res.body.error.status, 'FAILED_PRECONDITION');
    assert.match(res.body.error.message, /not connected/);

    const client = await connectClient(ts.mqttPort, ts.ca, {
      clientId: devicePath(PROJECT, REGION, REGISTRY, id),
      username: 'unused',
      password: validToken(keys, PROJECT),
    });
    clients.push(client);
    res = await send(reboot);
    assert.equal(res.status, 400);
    assert.match(res.body.error.message, /not subscribed to the commands topic/);

    await client.subscribeAsync(`/devices/${id}/commands/#`, { qos: 1 });
    let got = nextMessage(client);
    res = await send(reboot);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    let m = await got;
    assert.equal(m.topic, `/devices/${id}/commands`);
    assert.equal(m.payload.toString(), 'reboot');

    got = nextMessage(client);
    res = await send({ ...reboot, subfolder: 'power/now' });
    assert.equal(res.status, 200);
    m = await got;
    assert.equal(m.topic, `/devices/${id}/commands/power/now`);
  });

  test('a second connection of the same device takes over and closes the first', async () => {
    const id = 'takeover-dev';
    const keys = deviceKeys('es256');
    await createDevice(ts, REGISTRY, id, keys);
    const opts = { clientId: devicePath(PROJECT, REGION, REGISTRY, id), username: 'unused', password: validToken(keys, PROJECT) };
    const first = await connectClient(ts.mqttPort, ts.ca, opts);
    clients.push(first);
    const firstClosed = closed(first);
    const second = await connectClient(ts.mqttPort, ts.ca, opts);
    clients.push(second);
    await firstClosed;
    assert.equal(second.connected, true);
  });

  test('blocking a device or deleting the credential it connected with disconnects it at once', async () => {
    const id = 'revoke-dev';
    const [a, b] = [deviceKeys('es256'), deviceKeys('es256')];
    await createDevice(ts, REGISTRY, id, [a, b]);
    const connectWith = async (keys: typeof a) => {
      const c = await connectClient(ts.mqttPort, ts.ca, { clientId: devicePath(PROJECT, REGION, REGISTRY, id), username: 'unused', password: validToken(keys, PROJECT) });
      clients.push(c);
      return c;
    };

    let client = await connectWith(a);
    let gone = closed(client);
    let res = await ts.api('PATCH', `${devicePathUrl(REGISTRY, id)}?updateMask=credentials`, { credentials: [b.credential] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await gone;

    client = await connectWith(b);
    gone = closed(client);
    res = await ts.api('PATCH', `${devicePathUrl(REGISTRY, id)}?updateMask=blocked`, { blocked: true });
    assert.equal(res.status, 200);
    await gone;
    await assert.rejects(connectWith(b), (e: { code?: number }) => e.code === 5);
  });

  test("switching MQTT off for a registry through the admin API disconnects its devices at once (0x98), not another registry's", async () => {
    const switched = 'switched';
    await createRegistry(ts, switched);
    const keys = deviceKeys('es256');
    await createDevice(ts, switched, 'switched-dev', keys);
    const connect = async (protocolVersion: 4 | 5 = 5): Promise<MqttClient> => {
      const c = await connectClient(ts.mqttPort, ts.ca, {
        clientId: devicePath(PROJECT, REGION, switched, 'switched-dev'),
        username: 'unused',
        password: validToken(keys, PROJECT),
        protocolVersion,
      });
      clients.push(c);
      return c;
    };
    const other = await device('stays-dev', 'es256');
    const client = await connect();
    const reason = new Promise<number | undefined>((resolve) => client.once('disconnect', (p) => resolve(p.reasonCode)));
    const gone = closed(client);
    const res = await ts.api('PATCH', `${registryPath(switched)}?updateMask=mqtt_config.mqtt_enabled_state`, { mqttConfig: { mqttEnabledState: 'MQTT_DISABLED' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await gone;
    assert.equal(await reason, 0x98, 'administrative action');
    assert.equal(other.connected, true, "another registry's device stays");
    await assert.rejects(connect(4), (e: { code?: number }) => e.code === 5);

    const on = await ts.api('PATCH', `${registryPath(switched)}?updateMask=mqtt_config`, { mqttConfig: { mqttEnabledState: 'MQTT_ENABLED' } });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    await (await connect()).endAsync();
  });
});
