/**
 * Retained messages on custom device topics, end to end over MQTT (mqtt.js over TLS) with the real
 * PolicyService: a retained PUBLISH needs `publish` and `retain` (AWS iot:RetainPublish), is kept
 * per registry within the retained bounds, cleared by an empty one, and reaches a later subscriber
 * only where its policy grants `receive`; on Cloud IoT Core topics the retain flag stays ignored.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { AuditEvent } from '../domain/audit-events.js';
import type { RegistryName } from '../domain/names.js';
import {
  addDevice,
  addRegistry,
  closed,
  connectDevice,
  eventually,
  REG,
  sleep,
  startBroker,
  type Harness,
  type TestDevice,
} from './broker-harness.test.js';

/** Stations publish their own status retained, their live readings not, and read every station's but the secrets. */
const STATION_POLICY = {
  version: '2026-01-01',
  statements: [
    { effect: 'Allow', actions: ['publish', 'retain'], resources: ['site/${device.id}/status', 'site/${device.id}/secret'] },
    { effect: 'Allow', actions: ['publish'], resources: ['site/${device.id}/live'] },
    { effect: 'Allow', actions: ['subscribe', 'receive'], resources: ['site/#'] },
    { effect: 'Deny', actions: ['receive'], resources: ['site/+/secret'] },
  ],
};

interface Received {
  readonly topic: string;
  readonly payload: string;
  readonly qos: number;
  readonly retain: boolean;
}

function received(client: MqttClient): Received[] {
  const messages: Received[] = [];
  client.on('message', (topic, payload, packet) => messages.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain }));
  return messages;
}

const OTHER = 'other';

async function stationPolicy(h: Harness, registry: RegistryName = REG): Promise<void> {
  await h.policies.createPolicy(registry, 'station', STATION_POLICY, { force: true });
  await h.policies.attachPolicy(registry, 'station', { deviceType: 'station' });
}

describe('retained messages on custom device topics', () => {
  let h: Harness;
  const clients: MqttClient[] = [];
  const audited: AuditEvent[] = [];
  const stations: Record<string, TestDevice> = {};

  const connect = async (d: TestDevice, options: IClientOptions = {}): Promise<MqttClient> => {
    const c = await connectDevice(h, d, options);
    clients.push(c);
    return c;
  };
  /** A new connection of `d` subscribed to `filter`, with what it received shortly after the SUBACK. */
  const retainedFor = async (d: TestDevice, filter = 'site/#', waitMs = 150): Promise<Received[]> => {
    const c = await connect(d);
    const got = received(c);
    await c.subscribeAsync(filter, { qos: 1 });
    await sleep(waitMs);
    c.end(true);
    return got;
  };

  before(async () => {
    h = await startBroker({}, undefined, { audit: { record: (e) => audited.push(e) } });
    await stationPolicy(h);
    for (const id of ['st1', 'st2', 'st3', 'st4', 'st5']) stations[id] = await addDevice(h, id, { metadata: { type: 'station' } });
    await addRegistry(h, OTHER);
    await stationPolicy(h, { ...REG, registry: OTHER });
    stations.xx1 = await addDevice(h, 'xx1', { registry: OTHER, metadata: { type: 'station' } });
    // Same device id in the other registry: same resolved policy resources, different topic space.
    stations.s1other = await addDevice(h, 'st1', { registry: OTHER, metadata: { type: 'station' } });
  });

  after(async () => {
    for (const c of clients) c.end(true);
    await h.close();
  });

  const station = (id: string): TestDevice => stations[id] as TestDevice;

  test('an allowed retained publish is kept and sent to a later subscriber with the retain flag', async () => {
    const live = await connect(station('st2'));
    const atLive = received(live);
    await live.subscribeAsync('site/st1/#', { qos: 1 });
    const st1 = await connect(station('st1'));
    await st1.publishAsync('site/st1/status', 'online', { qos: 1, retain: true });
    await eventually(() =>
      assert.deepEqual(atLive, [{ topic: 'site/st1/status', payload: 'online', qos: 1, retain: false }], 'a live subscriber gets it as a live message (retain flag 0)'),
    );
    // A later subscriber, at the lower of the two QoS levels.
    const later = await connect(station('st3'));
    const atLater = received(later);
    await later.subscribeAsync('site/+/status', { qos: 0 });
    await eventually(() =>
      assert.deepEqual(atLater, [{ topic: 'site/st1/status', payload: 'online', qos: 0, retain: true }], 'the retained message arrives on subscribe'),
    );
    // A newer retained message replaces it.
    await st1.publishAsync('site/st1/status', 'busy', { qos: 1, retain: true });
    assert.deepEqual(
      (await retainedFor(station('st4'))).filter((m) => m.topic === 'site/st1/status').map((m) => [m.payload, m.qos, m.retain]),
      [['busy', 1, true]],
    );
    assert.equal(st1.connected, true);
  });

  test('a retained publish without the retain action is refused, audited and not kept', async () => {
    const st2 = await connect(station('st2'));
    st2.publish('site/st2/live', 'reading', { qos: 1, retain: true });
    await closed(st2);
    const denial = audited.find((e) => e.kind === 'device.authorize' && e.subject === 'site/st2/live');
    assert.equal(denial?.outcome, 'denied', 'the refused retained publish is audited');
    assert.equal(denial?.reason, 'retain not granted by the device policy');
    assert.equal((await retainedFor(station('st3'))).some((m) => m.topic === 'site/st2/live'), false, 'the refused message was retained');
    // Not retained, the same topic is fine.
    const again = await connect(station('st2'));
    await again.publishAsync('site/st2/live', 'reading', { qos: 1 });
    assert.equal(again.connected, true);
  });

  test('MQTT 5: the refusal is DISCONNECT 0x87', async () => {
    const c = await connect(station('st2'), { protocolVersion: 5 });
    const disconnect = new Promise<number | undefined>((resolve) => c.once('disconnect', (packet) => resolve(packet.reasonCode)));
    c.publish('site/st2/live', 'x', { qos: 1, retain: true });
    assert.equal(await disconnect, 0x87);
    await closed(c);
  });

  test("retained messages go only to subscribers whose policy grants receive on the message's topic", async () => {
    const st5 = await connect(station('st5'));
    await st5.publishAsync('site/st5/secret', 'pin 1234', { qos: 1, retain: true });
    await st5.publishAsync('site/st5/status', 'ok', { qos: 1, retain: true });
    const got = await retainedFor(station('st3'));
    assert.ok(got.some((m) => m.topic === 'site/st5/status'), 'the receivable retained message arrives');
    assert.equal(got.some((m) => m.topic === 'site/st5/secret'), false, 'a retained message the policy denies receiving was delivered');
    // Even to its own publisher: receive is the subscriber's right, not the publisher's.
    assert.equal((await retainedFor(station('st5'), 'site/st5/secret')).length, 0);
  });

  test('an empty retained publish clears the retained message', async () => {
    const st4 = await connect(station('st4'));
    await st4.publishAsync('site/st4/status', 'here', { qos: 1, retain: true });
    assert.deepEqual((await retainedFor(station('st3'), 'site/st4/#')).map((m) => m.payload), ['here']);
    await st4.publishAsync('site/st4/status', '', { qos: 1, retain: true });
    assert.deepEqual(await retainedFor(station('st3'), 'site/st4/#'), []);
    assert.equal(st4.connected, true);
  });

  test("one registry's retained messages never reach another's devices", async () => {
    const foreign = await retainedFor(station('xx1'));
    assert.deepEqual(foreign, [], 'retained messages crossed into another registry');
    // The same device id publishing the same topic in the other registry leaves REG's alone.
    const twin = await connect(station('s1other'));
    await twin.publishAsync('site/st1/status', 'other registry', { qos: 1, retain: true });
    assert.deepEqual(
      (await retainedFor(station('xx1'), 'site/st1/status')).map((m) => m.payload),
      ['other registry'],
    );
    assert.deepEqual(
      (await retainedFor(station('st3'), 'site/st1/status')).map((m) => m.payload),
      ['busy'],
    );
  });

  test('MQTT 5 retain handling: 2 sends nothing on subscribe, 1 only for a new subscription', async () => {
    const c = await connect(station('st3'), { protocolVersion: 5 });
    const got = received(c);
    await c.subscribeAsync('site/st1/status', { qos: 1, rh: 2 });
    await sleep(150);
    assert.deepEqual(got, [], 'retain handling 2 got a retained message');
    await c.subscribeAsync('site/st5/status', { qos: 1, rh: 1 });
    await eventually(() => assert.equal(got.length, 1, 'retain handling 1 gets it on a new subscription'));
    await c.subscribeAsync('site/st5/status', { qos: 1, rh: 1 });
    await sleep(150);
    assert.equal(got.length, 1, 'retain handling 1 got it again on an existing subscription');
  });

  test('on Cloud IoT Core topics the retain flag stays ignored: accepted, nothing kept', async () => {
    const st1 = await connect(station('st1'));
    await st1.publishAsync('/devices/st1/events', 'event', { qos: 1, retain: true });
    await st1.publishAsync('/devices/st1/state', 'state', { qos: 1, retain: true });
    assert.equal(st1.connected, true);
    assert.equal((await retainedFor(station('st1'), '/devices/st1/commands/#')).length, 0);
  });
});

describe('retained messages on custom device topics: bounds', () => {
  let h: Harness;
  const clients: MqttClient[] = [];

  after(async () => {
    for (const c of clients) c.end(true);
    await h.close();
  });

  test('a registry holds at most retainedMessages messages and retainedBytes bytes; replacing and clearing still work', async () => {
    h = await startBroker({ retainedMessages: 2, retainedBytes: 512 });
    await stationPolicy(h);
    const d1 = await addDevice(h, 'bd1', { metadata: { type: 'station' } });
    const d2 = await addDevice(h, 'bd2', { metadata: { type: 'station' } });
    const d3 = await addDevice(h, 'bd3', { metadata: { type: 'station' } });
    const retainedNow = async (): Promise<string[]> => {
      const c = await connectDevice(h, d3);
      clients.push(c);
      const got = received(c);
      await c.subscribeAsync('site/#', { qos: 1 });
      await sleep(150);
      c.end(true);
      return got.map((m) => `${m.topic}=${m.payload.length}`).sort();
    };
    const p1 = await connectDevice(h, d1);
    const p2 = await connectDevice(h, d2);
    clients.push(p1, p2);
    await p1.publishAsync('site/bd1/status', 'x', { qos: 1, retain: true });
    await p1.publishAsync('site/bd1/secret', 'y'.repeat(400), { qos: 1, retain: true });
    // A third topic is over the count: delivered live, acknowledged, not kept.
    await p2.publishAsync('site/bd2/status', 'z', { qos: 1, retain: true });
    assert.deepEqual(await retainedNow(), ['site/bd1/status=1'], 'the count bound (the secret is kept but not receivable)');
    // Replacing within the bytes bound works when full; beyond it the old message stays.
    await p1.publishAsync('site/bd1/status', 'w'.repeat(50), { qos: 1, retain: true });
    assert.deepEqual(await retainedNow(), ['site/bd1/status=50']);
    await p1.publishAsync('site/bd1/status', 'v'.repeat(200), { qos: 1, retain: true });
    assert.deepEqual(await retainedNow(), ['site/bd1/status=50'], 'the bytes bound');
    // Clearing one frees room for another topic.
    await p1.publishAsync('site/bd1/status', '', { qos: 1, retain: true });
    await p2.publishAsync('site/bd2/status', 'z', { qos: 1, retain: true });
    assert.deepEqual(await retainedNow(), ['site/bd2/status=1']);
    assert.equal(p1.connected && p2.connected, true, 'a retained message over the bounds does not close the publisher');
  });
});
