/**
 * Device policies enforced by the broker, end to end over MQTT (mqtt.js over TLS) with the real
 * PolicyService: the smart-building acceptance scenario of seed 003 (four device types, one policy
 * per `type` label), the AWS subscribe bypass, Denies that take Cloud IoT Core topics away, and
 * live changes (detach, new default version, a device's `type` label) that cut a subscriber off
 * within one second.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { AuditEvent } from '../domain/audit-events.js';
import { SMART_BUILDING_POLICIES, type SmartBuildingDeviceType } from '../policy/smart-building-policies.js';
import {
  addDevice,
  addRegistry,
  closed,
  connectDevice,
  eventually,
  inbox,
  REG,
  refusedWith,
  sleep,
  startBroker,
  type Harness,
  type Message,
  type TestDevice,
} from './broker-harness.test.js';

const FLOOR1 = 'building/b1/floor/1';
const FLOOR2 = 'building/b1/floor/2';

describe('device policies in the broker', () => {
  let h: Harness;
  const clients: MqttClient[] = [];
  const devices: Record<string, TestDevice> = {};
  const audited: AuditEvent[] = [];

  const connect = async (d: TestDevice): Promise<MqttClient> => {
    const c = await connectDevice(h, d);
    clients.push(c);
    return c;
  };
  const device = async (id: string, type: SmartBuildingDeviceType | 'controller' | 'plain', floor = '1', registry?: string): Promise<TestDevice> => {
    const d = await addDevice(h, id, { metadata: { type, building: 'b1', floor }, ...(registry ? { registry } : {}) });
    devices[id] = d;
    return d;
  };
  /** Whether the client still receives: publishes one (QoS 1, acknowledged) and waits a little. */
  const delivered = async (publisher: MqttClient, topic: string, received: Message[], waitMs = 60): Promise<boolean> => {
    const before = received.length;
    await publisher.publishAsync(topic, `m-${Date.now()}`, { qos: 1 });
    await sleep(waitMs);
    return received.length > before;
  };
  /** Refused: the server closes the connection (MQTT 3.1.1 has no negative SUBACK or PUBACK). */
  const refusedSubscribe = async (d: TestDevice, filter: string): Promise<void> => {
    const c = await connect(d);
    c.subscribe(filter, { qos: 1 });
    await closed(c);
  };
  const refusedPublish = async (d: TestDevice, topic: string): Promise<void> => {
    const c = await connect(d);
    c.publish(topic, 'x', { qos: 1 });
    await closed(c);
  };

  before(async () => {
    h = await startBroker({}, undefined, { audit: { record: (e) => audited.push(e) } });
    // Each refusal is tried on a fresh connection of the same device: more than a real one makes.
    await h.service.patchRegistry(REG, { rateLimits: { connectionsPerSecond: 100 } }, ['rate_limits']);
    for (const [type, document] of Object.entries(SMART_BUILDING_POLICIES)) {
      await h.policies.createPolicy(REG, type, document);
      await h.policies.attachPolicy(REG, type, { deviceType: type });
    }
    await device('temp-1', 'temperature-sensor');
    await device('temp-2', 'temperature-sensor');
    await device('temp-3', 'temperature-sensor', '2');
    await device('lock-1', 'lock');
    await device('hvac-1', 'hvac-controller');
    await device('hvac-2', 'hvac-controller', '2');
    await device('light-1', 'smart-light');
    // Locks take commands from one controller device (a device-level grant, wider than lint likes).
    await device('controller', 'controller');
    await h.policies.createPolicy(
      REG,
      'floor-1-controller',
      { version: '2026-01-01', statements: [{ effect: 'Allow', actions: ['publish'], resources: [`${FLOOR1}/+/+/cmd`] }] },
      { force: true },
    );
    await h.policies.attachPolicy(REG, 'floor-1-controller', { deviceId: 'controller' });
  });

  after(async () => {
    for (const c of clients) c.end(true);
    await h.close();
  });

  test("each device type does what its policy grants: a sensor's reading reaches its floor's HVAC, a lock gets its commands", async () => {
    const hvac1 = await connect(devices['hvac-1'] as TestDevice);
    const hvac2 = await connect(devices['hvac-2'] as TestDevice);
    const lock = await connect(devices['lock-1'] as TestDevice);
    const temp1 = await connect(devices['temp-1'] as TestDevice);
    const temp3 = await connect(devices['temp-3'] as TestDevice);
    const controller = await connect(devices.controller as TestDevice);
    const atHvac1 = inbox(hvac1);
    const atHvac2 = inbox(hvac2);
    const atLock = inbox(lock);
    assert.deepEqual((await hvac1.subscribeAsync(`${FLOOR1}/temp/+`, { qos: 1 })).map((g) => g.qos), [1]);
    await hvac2.subscribeAsync(`${FLOOR2}/temp/+`, { qos: 1 });
    await lock.subscribeAsync(`${FLOOR1}/lock/lock-1/cmd`, { qos: 1 });

    await temp1.publishAsync(`${FLOOR1}/temp/temp-1`, '21.5', { qos: 1 });
    await temp3.publishAsync(`${FLOOR2}/temp/temp-3`, '19.0', { qos: 0 });
    await controller.publishAsync(`${FLOOR1}/lock/lock-1/cmd`, 'unlock', { qos: 1 });
    await eventually(() => {
      assert.deepEqual(atHvac1.map((m) => [m.topic, m.payload.toString()]), [[`${FLOOR1}/temp/temp-1`, '21.5']], 'floor 1 HVAC gets floor 1 readings only');
      assert.deepEqual(atHvac2.map((m) => [m.topic, m.payload.toString()]), [[`${FLOOR2}/temp/temp-3`, '19.0']], 'floor 2 HVAC gets floor 2 readings only');
      assert.deepEqual(atLock.map((m) => [m.topic, m.payload.toString(), m.qos]), [[`${FLOOR1}/lock/lock-1/cmd`, 'unlock', 1]], 'the lock gets its command');
    });
    // Its Cloud IoT Core topics stay granted by the built-in document.
    await lock.publishAsync('/devices/lock-1/events', 'door opened', { qos: 1 });
    await lock.publishAsync(`${FLOOR1}/lock/lock-1/audit`, 'opened by controller', { qos: 1 });
    assert.equal(lock.connected, true);
  });

  test('a compromised temperature sensor reaches nothing but its own topic', async () => {
    const temp1 = devices['temp-1'] as TestDevice;
    await refusedSubscribe(temp1, `${FLOOR1}/lock/lock-1/cmd`);
    await refusedSubscribe(temp1, `${FLOOR1}/lock/+/cmd`);
    await refusedSubscribe(temp1, `${FLOOR1}/temp/+`);
    await refusedSubscribe(temp1, '#');
    await refusedPublish(temp1, `${FLOOR1}/temp/temp-2`);
    await refusedPublish(temp1, `${FLOOR1}/lock/lock-1/cmd`);
    await refusedPublish(temp1, `${FLOOR2}/temp/temp-1`);
    await refusedSubscribe(temp1, `${FLOOR2}/temp/+`);
    await refusedPublish(temp1, '/devices/temp-2/events');
    const denial = audited.find((e) => e.kind === 'device.authorize' && e.subject === `${FLOOR1}/lock/lock-1/cmd`);
    assert.equal(denial?.outcome, 'denied', 'the refused subscribe is audited');
    assert.equal(denial?.reason, 'not granted by the device policy');
    // And what it may do still works.
    const c = await connect(temp1);
    await c.publishAsync(`${FLOOR1}/temp/temp-1`, '22', { qos: 1 });
    assert.equal(c.connected, true);
  });

  test('the AWS bypass: a Deny on a/b refuses a subscribe to a/# and a/+', async () => {
    const d = await device('bypass', 'plain');
    await h.policies.createPolicy(
      REG,
      'bypass-probe',
      {
        version: '2026-01-01',
        statements: [
          { effect: 'Allow', actions: ['subscribe', 'receive'], resources: ['a/#'] },
          { effect: 'Deny', actions: ['subscribe', 'receive'], resources: ['a/b'] },
        ],
      },
      { force: true },
    );
    await h.policies.attachPolicy(REG, 'bypass-probe', { deviceId: 'bypass' });
    await refusedSubscribe(d, 'a/#');
    await refusedSubscribe(d, 'a/+');
    await refusedSubscribe(d, 'a/b');
    const c = await connect(d);
    assert.deepEqual((await c.subscribeAsync('a/c/#', { qos: 0 })).map((g) => g.qos), [0]);
  });

  test('an explicit Deny takes a Cloud IoT Core topic away; a Deny on connect refuses the CONNECT', async () => {
    const d = await device('no-state', 'plain');
    await h.policies.createPolicy(REG, 'no-state', {
      version: '2026-01-01',
      statements: [{ effect: 'Deny', actions: ['publish'], resources: ['/devices/${device.id}/state'] }],
    });
    await h.policies.attachPolicy(REG, 'no-state', { deviceId: 'no-state' });
    const c = await connect(d);
    await c.publishAsync('/devices/no-state/events', 'still fine', { qos: 1 });
    await refusedPublish(d, '/devices/no-state/state');
    assert.ok(
      audited.some((e) => e.kind === 'device.authorize' && e.subject === '/devices/no-state/state' && e.reason === 'denied by the device policy'),
      'the denied state publish is audited',
    );

    const blocked = await device('no-connect', 'plain');
    await h.policies.createPolicy(REG, 'no-connect', {
      version: '2026-01-01',
      statements: [{ effect: 'Deny', actions: ['connect'], resources: ['${device.id}'] }],
    });
    await h.policies.attachPolicy(REG, 'no-connect', { deviceId: 'no-connect' });
    await assert.rejects(connectDevice(h, blocked), refusedWith(5));
  });

  test("another registry's devices never share the topic space", async () => {
    await addRegistry(h, 'other');
    await h.policies.createPolicy({ ...REG, registry: 'other' }, 'hvac-controller', SMART_BUILDING_POLICIES['hvac-controller']);
    await h.policies.attachPolicy({ ...REG, registry: 'other' }, 'hvac-controller', { deviceType: 'hvac-controller' });
    const foreign = await connect(await device('hvac-x', 'hvac-controller', '1', 'other'));
    const atForeign = inbox(foreign);
    await foreign.subscribeAsync(`${FLOOR1}/temp/+`, { qos: 1 });
    const temp2 = await connect(devices['temp-2'] as TestDevice);
    assert.equal(await delivered(temp2, `${FLOOR1}/temp/temp-2`, atForeign, 150), false, 'a reading crossed into another registry');
  });

  /** Connects hvac-1 subscribed to floor 1's readings and temp-2 publishing them. */
  const liveSubscriber = async () => {
    const hvac = await connect(devices['hvac-1'] as TestDevice);
    const received = inbox(hvac);
    await hvac.subscribeAsync(`${FLOOR1}/temp/+`, { qos: 1 });
    const temp = await connect(devices['temp-2'] as TestDevice);
    assert.equal(await delivered(temp, `${FLOOR1}/temp/temp-2`, received), true, 'delivered before the change');
    return { hvac, temp, received };
  };
  /** Waits for deliveries to stop after a change; fails if that takes a second or more. */
  const cutOffWithinOneSecond = async (temp: MqttClient, received: Message[], change: () => Promise<unknown>): Promise<void> => {
    const start = Date.now();
    await change();
    await eventually(async () => assert.equal(await delivered(temp, `${FLOOR1}/temp/temp-2`, received, 20), false, 'still delivered'), 2000, 0);
    const elapsed = Date.now() - start;
    assert.ok(elapsed < 1000, `the subscriber was cut off only after ${elapsed} ms`);
  };

  test('detaching a policy cuts a live subscriber off within one second', async () => {
    const { hvac, temp, received } = await liveSubscriber();
    await cutOffWithinOneSecond(temp, received, () => h.policies.detachPolicy(REG, 'hvac-controller', { deviceType: 'hvac-controller' }));
    assert.equal(hvac.connected, true, 'the connection itself stays');
    await h.policies.attachPolicy(REG, 'hvac-controller', { deviceType: 'hvac-controller' });
  });

  test('a new default version that no longer grants receive cuts a live subscriber off within one second', async () => {
    const { temp, received } = await liveSubscriber();
    const narrowed = {
      version: '2026-01-01',
      statements: [
        { effect: 'Allow', actions: ['subscribe'], resources: [`building/\${device.metadata.building}/floor/\${device.metadata.floor}/temp/+`] },
      ],
    };
    await cutOffWithinOneSecond(temp, received, () => h.policies.createPolicyVersion(REG, 'hvac-controller', narrowed, { setAsDefault: true, force: true }));
    await h.policies.setDefaultPolicyVersion(REG, 'hvac-controller', 1);
  });

  test("changing a device's type label moves it to the other policy live", async () => {
    const d = await device('shifty', 'smart-light');
    const light = await connect(d);
    const atLight = inbox(light);
    await light.subscribeAsync(`${FLOOR1}/light/shifty/cmd`, { qos: 1 });
    const controller = await connect(devices.controller as TestDevice);
    assert.equal(await delivered(controller, `${FLOOR1}/light/shifty/cmd`, atLight), true, 'a light gets its commands');
    const hvac = await connect(devices['hvac-1'] as TestDevice);
    const atHvac = inbox(hvac);
    await hvac.subscribeAsync(`${FLOOR1}/temp/+`, { qos: 1 });

    const start = Date.now();
    await h.service.patchDevice(d.name, { metadata: { type: 'temperature-sensor', building: 'b1', floor: '1' } }, ['metadata']);
    await eventually(async () => assert.equal(await delivered(controller, `${FLOOR1}/light/shifty/cmd`, atLight, 20), false, 'still a light'), 2000, 0);
    assert.ok(Date.now() - start < 1000, `the type change took ${Date.now() - start} ms`);
    // Same connection, now a temperature sensor: its reading reaches the floor's HVAC.
    await light.publishAsync(`${FLOOR1}/temp/shifty`, '20', { qos: 1 });
    await eventually(() => assert.ok(atHvac.some((m) => m.topic === `${FLOOR1}/temp/shifty`), 'the reading of the retyped device arrives'));
    light.publish(`${FLOOR1}/light/shifty/status`, 'on', { qos: 1 });
    await closed(light);
  });
});
