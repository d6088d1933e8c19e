import { describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Packet } from 'mqtt-packet';
import pino from 'pino';
import { DEFAULT_RATE_LIMITS } from '../registry/device-quotas.js';
import type { GatewayDelegatedDevice } from '../registry/device-manager.js';
import type { Connection, InflightKind } from './connection.js';
import { builtinPolicy } from './device-policies.js';
import type { DeviceSession } from './device-session.js';
import { AttachedDevices, GatewayAttachment, GatewayAttachments } from './gateway-attachments.js';
import { PacketIdWindow } from './packet-id-window.js';

const REGISTRY = 'projects/p/locations/l/registries/r';

function delegated(id: string, extra: Partial<GatewayDelegatedDevice> = {}): GatewayDelegatedDevice {
  return {
    method: 'gateway',
    key: `${REGISTRY}/devices/${id}`,
    name: { project: 'p', location: 'l', registry: 'r', device: id },
    numId: String(1000 + id.length),
    gatewayKey: `${REGISTRY}/devices/gw`,
    byAssociation: true,
    rateLimits: DEFAULT_RATE_LIMITS,
    ...extra,
  };
}

/** The part of a gateway connection attachments use, recording what is sent. */
class FakeGatewayConnection {
  readonly sent: Packet[] = [];
  readonly ids = new PacketIdWindow(16);
  isOpen = true;
  congested = false;
  exhausted = false;
  readonly log = pino({ level: 'silent' });
  send(packet: Packet): void {
    this.sent.push(packet);
  }
  allocatePacketId(kind: InflightKind): number | undefined {
    return this.exhausted ? undefined : this.ids.allocate(kind);
  }
  releasePacketId(id: number): void {
    this.ids.release(id);
  }
  /** The gateway's PUBACK: what handle-puback does with it. */
  puback(id: number, attachments: GatewayAttachments): boolean {
    return this.ids.release(id) === 'config' && attachments.configAcknowledged(id);
  }
}

function configStore() {
  const acks: Array<{ device: string; version: number }> = [];
  return {
    acks,
    gateway: {
      latestConfig: async (device: string) => ({ version: 3, binaryData: Buffer.from(`config of ${device.split('/').pop()}`) }),
      recordConfigSent: () => {},
      recordConfigAck: async (device: string, version: number) => {
        acks.push({ device, version });
      },
    },
  };
}

function setup(limit?: number) {
  const conn = new FakeGatewayConnection();
  const index = new AttachedDevices();
  const attachments = new GatewayAttachments(index, limit);
  const store = configStore();
  const overflows: string[] = [];
  const session = { key: `${REGISTRY}/devices/gw`, attachments } as unknown as DeviceSession;
  const make = (id: string, owner = attachments, on = conn) =>
    new GatewayAttachment(delegated(id), on as unknown as Connection, session, owner, {
      policy: builtinPolicy(delegated(id)),
      config: { gateway: store.gateway, retryMs: 60_000, now: () => new Date() },
      onOverflow: (a, reason) => overflows.push(`${a.deviceId}: ${reason}`),
    });
  return { conn, index, attachments, store, overflows, make };
}

const until = async (check: () => boolean): Promise<void> => {
  while (!check()) await new Promise((r) => setImmediate(r));
};

describe('gateway attachments', () => {
  test('an attachment carries its own device: topics, backend topics and attributes', () => {
    const { make } = setup();
    const a = make('sensor-1');
    assert.equal(a.key, `${REGISTRY}/devices/sensor-1`);
    assert.equal(a.registry, REGISTRY);
    assert.equal(a.topics.events, '/devices/sensor-1/events');
    assert.equal(a.backendEvents, 'registries/r/devices/sensor-1/events');
    assert.equal(a.backendState, 'registries/r/devices/sensor-1/state');
    assert.equal(a.attributes['deviceId'], 'sensor-1');
    assert.equal(a.attributes['deviceNumId'], a.device.numId);
  });

  test('held by device id, indexed by device key, up to the limit', () => {
    const { attachments, index, make } = setup(2);
    const a = make('a');
    const b = make('b');
    assert.equal(attachments.add(a), undefined);
    assert.throws(() => attachments.add(make('a')), /already attached/);
    attachments.add(b);
    assert.equal(attachments.full, true);
    assert.throws(() => attachments.add(make('c')), /too many/);
    assert.equal(attachments.get('a'), a);
    assert.equal(index.get(a.key), a);
    assert.equal(index.size, 2);
    assert.deepEqual([...attachments.values()].map((x) => x.deviceId), ['a', 'b']);
  });

  test('attaching a device another gateway holds returns that attachment, and its removal leaves the new one indexed', () => {
    const first = setup();
    const other = new GatewayAttachments(first.index);
    const onFirst = first.make('d');
    first.attachments.add(onFirst);
    const onOther = first.make('d', other);
    assert.equal(other.add(onOther), onFirst, 'the displaced attachment');
    assert.equal(first.index.get(onOther.key), onOther);
    assert.equal(first.attachments.remove(onFirst), true);
    assert.equal(onFirst.ended, true);
    assert.equal(first.index.get(onOther.key), onOther, 'the displaced one does not evict its successor');
  });

  test('removal ends everything: commands, config, the index entry, the packet id of a pending config', async () => {
    const { attachments, index, conn, make } = setup();
    const a = make('a');
    attachments.add(a);
    a.commandsQos = 1;
    a.config.subscribe(1);
    await until(() => conn.sent.length === 1);
    assert.equal(attachments.configsInFlight, 1);
    assert.equal(attachments.remove(a), true);
    assert.equal(attachments.remove(a), false, 'only once');
    assert.equal(a.commandsQos, undefined);
    assert.equal(a.config.subscribed, false);
    assert.equal(index.get(a.key), undefined);
    assert.equal(attachments.configsInFlight, 0);
    assert.equal(attachments.size, 0);
    // Its packet id is free again: the whole window can be allocated.
    for (let i = 0; i < 16; i++) assert.notEqual(conn.ids.allocate('command'), undefined, `id ${i}`);
  });

  test("the gateway's PUBACK acknowledges the config of the device it was sent for", async () => {
    const { attachments, conn, store, make } = setup();
    const a = make('a');
    const b = make('b');
    attachments.add(a);
    attachments.add(b);
    a.config.subscribe(1);
    b.config.subscribe(1);
    await until(() => conn.sent.length === 2);
    const idOf = (device: string): number => {
      const p = conn.sent.find((s) => s.cmd === 'publish' && s.topic === `/devices/${device}/config`);
      assert.ok(p?.cmd === 'publish' && p.messageId !== undefined, `a QoS 1 config for ${device}`);
      return p.messageId;
    };
    assert.equal(conn.puback(idOf('b'), attachments), true);
    await until(() => store.acks.length === 1);
    assert.deepEqual(store.acks, [{ device: b.key, version: 3 }]);
    assert.equal(conn.puback(idOf('b'), attachments), false, 'a second PUBACK of the same id is nothing');
    assert.equal(conn.puback(idOf('a'), attachments), true);
    await until(() => store.acks.length === 2);
    assert.deepEqual(store.acks[1], { device: a.key, version: 3 });
    assert.equal(attachments.configsInFlight, 0);
  });

  test('a config that finds no packet id detaches its device instead of closing the gateway', async () => {
    const { attachments, conn, overflows, make } = setup();
    const a = make('a');
    attachments.add(a);
    conn.exhausted = true;
    a.config.subscribe(1);
    await until(() => overflows.length === 1);
    assert.match(overflows[0] as string, /^a: too many unacknowledged/);
    assert.equal(conn.isOpen, true);
  });

  test('an ended attachment sends nothing more', async () => {
    const { attachments, conn, make } = setup();
    const a = make('a');
    attachments.add(a);
    a.config.subscribe(0);
    await until(() => conn.sent.length === 1);
    attachments.remove(a);
    a.config.pushed(4, Buffer.from('new'));
    assert.equal(conn.sent.length, 1);
  });

  test('removeAll ends every attachment and makes attaches in flight stale', () => {
    const { attachments, index, make } = setup();
    attachments.add(make('a'));
    attachments.add(make('b'));
    const ticket = attachments.beginAttach();
    attachments.removeAll();
    assert.equal(attachments.size, 0);
    assert.equal(index.size, 0);
    assert.equal(ticket.stale, true);
  });

  test('a change of associations makes the attaches in flight stale, not later ones', () => {
    const { attachments } = setup();
    const before = attachments.beginAttach();
    const done = attachments.beginAttach();
    attachments.finishAttach(done);
    attachments.associationsChanged();
    const after = attachments.beginAttach();
    assert.equal(before.stale, true);
    assert.equal(done.stale, false);
    assert.equal(after.stale, false);
  });

  test('the token expiry fires once, unless the attachment ended or was renewed without a token', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { attachments, make } = setup();
    const expired = mock.fn();
    const a = make('a');
    attachments.add(a);
    a.expireAfter(1000, expired);
    t.mock.timers.tick(999);
    assert.equal(expired.mock.callCount(), 0);
    t.mock.timers.tick(1);
    assert.equal(expired.mock.callCount(), 1);

    const b = make('b');
    attachments.add(b);
    b.expireAfter(1000, expired);
    b.expireAfter(undefined, expired);
    const c = make('c');
    attachments.add(c);
    c.expireAfter(1000, expired);
    attachments.remove(c);
    t.mock.timers.tick(5000);
    assert.equal(expired.mock.callCount(), 1);
  });
});

describe('AttachedDevices', () => {
  test('release forgets a key only for its holder', () => {
    const { make } = setup();
    const index = new AttachedDevices();
    const a = make('x');
    const b = make('x');
    assert.equal(index.claim(a.key, a), undefined);
    assert.equal(index.claim(a.key, a), undefined, 'claiming again displaces nothing');
    assert.equal(index.claim(b.key, b), a);
    index.release(a.key, a);
    assert.equal(index.get(a.key), b);
    index.release(b.key, b);
    assert.equal(index.size, 0);
  });
});
