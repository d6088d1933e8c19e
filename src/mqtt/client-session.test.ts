import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPublishPacket, Packet } from 'mqtt-packet';
import { ClientSession } from './client-session.js';
import { FakeConnection } from './fake-connection.test.js';
import { Message } from './message.js';
import type { QoS } from './topic-trie.js';

const BOUNDS = { sessionQueueMessages: 100, sessionQueueBytes: 1_000_000 };
const msg = (payload: string, qos: QoS, expiresAt = Infinity): Message =>
  new Message('t', Buffer.from(payload), qos, false, expiresAt, undefined);
const publishes = (packets: Packet[]): IPublishPacket[] => packets.filter((p): p is IPublishPacket => p.cmd === 'publish');

describe('ClientSession', () => {
  test('at most `window` QoS 1 and 2 messages in flight; the rest wait and follow acknowledgements in order', () => {
    const session = new ClientSession('c', BOUNDS);
    const conn = new FakeConnection();
    session.attach(conn.asConnection, 2);
    for (const p of ['a', 'b', 'c', 'd']) session.deliver(msg(p, 1), 1, false, undefined);
    session.deliver(msg('zero', 0), 0, false, undefined);
    const sent = publishes(conn.take());
    assert.deepEqual(sent.map((p) => p.payload.toString()), ['a', 'b', 'zero'], 'QoS 0 is not held back by the window');
    assert.equal(session.queued, 2);
    assert.equal(session.acknowledged(sent[0]?.messageId as number), true);
    assert.equal(session.acknowledged(sent[0]?.messageId as number), false, 'an id is acknowledged once');
    assert.deepEqual(publishes(conn.take()).map((p) => p.payload.toString()), ['c']);
  });

  test('outbound QoS 2: PUBREC releases (PUBREL), PUBCOMP completes and frees the slot; a failed PUBREC ends the flow', () => {
    const session = new ClientSession('c', BOUNDS);
    const conn = new FakeConnection(true);
    session.attach(conn.asConnection, 1);
    session.deliver(msg('a', 2), 2, false, undefined);
    session.deliver(msg('b', 2), 2, false, undefined);
    const [a] = publishes(conn.take());
    const id = a?.messageId as number;
    assert.equal(a?.qos, 2);
    assert.equal(session.completed(id), false, 'PUBCOMP before PUBREC is not a completion');
    assert.equal(session.acknowledged(id), false, 'PUBACK does not complete QoS 2');
    assert.equal(session.received(id, false), true);
    assert.equal(session.inflight, 1);
    assert.equal(session.completed(id), true);
    const [b] = publishes(conn.take());
    assert.equal(b?.payload.toString(), 'b');
    assert.equal(session.received(b?.messageId as number, true), true);
    assert.equal(session.inflight, 0);
  });

  test('on reconnect, messages in flight are sent again with DUP (released ones as PUBREL), then the queue', () => {
    const session = new ClientSession('c', BOUNDS);
    const first = new FakeConnection();
    session.attach(first.asConnection, 2);
    session.deliver(msg('one', 1), 1, false, undefined);
    session.deliver(msg('two', 2), 2, false, undefined);
    const sent = publishes(first.take());
    session.received(sent[1]?.messageId as number, false);
    first.isOpen = false;
    session.detach(first.asConnection);
    session.deliver(msg('three', 1), 1, false, undefined);
    session.deliver(msg('offline-zero', 0), 0, false, undefined);
    assert.equal(session.queued, 2);

    const second = new FakeConnection();
    session.attach(second.asConnection, 10);
    const packets = second.take();
    assert.deepEqual(
      packets.map((p) => (p.cmd === 'publish' ? `${p.payload.toString()}:${p.dup ? 'dup' : 'new'}:${p.messageId ?? '-'}` : `${p.cmd}:${p.messageId}`)),
      [`one:dup:${sent[0]?.messageId}`, `pubrel:${sent[1]?.messageId}`, `three:new:${(sent[1]?.messageId as number) + 1}`, 'offline-zero:new:-'],
    );
  });

  test('inbound QoS 2 ids are remembered until PUBREL', () => {
    const session = new ClientSession('c', BOUNDS);
    assert.equal(session.hasInboundQos2(7), false);
    session.addInboundQos2(7);
    assert.equal(session.hasInboundQos2(7), true);
    assert.equal(session.inboundQos2, 1);
    assert.equal(session.releaseInboundQos2(7), true);
    assert.equal(session.releaseInboundQos2(7), false);
  });

  test('expired messages are dropped from the queue; the rest carry the remaining expiry interval', (t) => {
    t.mock.timers.enable({ apis: ['Date'] });
    const session = new ClientSession('c', BOUNDS);
    session.deliver(msg('gone', 1, 50), 1, false, undefined);
    session.deliver(msg('kept', 1, 60_000), 1, false, undefined);
    t.mock.timers.tick(20_100);
    const conn = new FakeConnection(true);
    session.attach(conn.asConnection, 10);
    const sent = publishes(conn.take());
    assert.deepEqual(sent.map((p) => p.payload.toString()), ['kept']);
    assert.equal(sent[0]?.properties?.messageExpiryInterval, 40, 'whole seconds left, rounded up');
  });

  test('a message over the client’s maximum packet size is dropped as if delivered, and frees its slot', () => {
    const session = new ClientSession('c', BOUNDS);
    const conn = new FakeConnection(true);
    conn.maxPacketBytes = 20;
    session.attach(conn.asConnection, 1);
    session.deliver(msg('x'.repeat(100), 1), 1, false, undefined);
    session.deliver(msg('ok', 1), 1, false, undefined);
    assert.deepEqual(publishes(conn.take()).map((p) => p.payload.toString()), ['ok']);
  });

  test('server topic aliases: a topic goes out in full with its alias once, then as the alias alone, up to the client’s maximum', () => {
    const session = new ClientSession('c', BOUNDS);
    const conn = new FakeConnection(true);
    session.attach(conn.asConnection, 10, 1);
    const on = (topic: string, payload: string): Message => new Message(topic, Buffer.from(payload), 0, false, Infinity, undefined);
    session.deliver(on('a/b', '1'), 0, false, undefined);
    session.deliver(on('a/b', '2'), 0, false, undefined);
    session.deliver(on('c', '3'), 0, false, undefined);
    session.deliver(on('a/b', '4'), 1, false, undefined);
    const sent = publishes(conn.take());
    assert.deepEqual(
      sent.map((p) => [p.topic, p.properties?.topicAlias, p.payload.toString()]),
      [
        ['a/b', 1, '1'],
        ['', 1, '2'],
        ['c', undefined, '3'],
        ['', 1, '4'],
      ],
    );
    session.acknowledged(sent[3]?.messageId as number);
    const next = new FakeConnection(true);
    session.attach(next.asConnection, 10, 0);
    session.deliver(on('a/b', '5'), 0, false, undefined);
    assert.deepEqual(publishes(next.take()).map((p) => [p.topic, p.properties?.topicAlias]), [['a/b', undefined]], 'aliases belong to a connection');
  });

  test('a connected client is backlogged at a quarter of its queue bound and relieved at half of that', () => {
    const session = new ClientSession('c', BOUNDS);
    const conn = new FakeConnection();
    session.attach(conn.asConnection, 1);
    // One in flight, then 25 queued: a quarter of the 100-message bound.
    for (let i = 0; i < 26; i++) session.deliver(msg(`m${i}`, 1), 1, false, undefined);
    assert.equal(session.queued, 25);
    assert.equal(conn.backlogged, true, 'publishers are to wait');
    const ack = (): void => void session.acknowledged(publishes(conn.take())[0]?.messageId as number);
    while (session.queued > 13) ack();
    assert.equal(conn.backlogged, true, 'still above the low-water mark');
    ack();
    assert.equal(session.queued, 12);
    assert.equal(conn.backlogged, false, 'relieved at half the high-water mark');
  });

  test('a congested client loses QoS 0 messages (counted), never QoS 1', () => {
    const session = new ClientSession('c', BOUNDS);
    const conn = new FakeConnection();
    session.attach(conn.asConnection, 10);
    conn.congested = true;
    session.deliver(msg('a', 0), 0, false, undefined);
    session.deliver(msg('b', 1), 1, false, undefined);
    assert.equal(session.dropped, 1);
    assert.deepEqual(publishes(conn.take()).map((p) => p.payload.toString()), ['b']);
  });

  test('every delivery to a connected client names its publisher to the connection; an offline session holds no one', () => {
    const session = new ClientSession('c', BOUNDS);
    const conn = new FakeConnection();
    const publisher = new FakeConnection().asConnection;
    session.deliver(msg('offline', 1), 1, false, undefined, publisher);
    session.attach(conn.asConnection, 1);
    session.deliver(msg('first', 1), 1, false, undefined, publisher);
    session.deliver(msg('second', 1), 1, false, undefined, publisher);
    conn.congested = true;
    session.deliver(msg('congested', 0), 0, false, undefined, publisher);
    session.deliver(msg('will', 1), 1, false, undefined);
    assert.ok(conn.heldPublishers.length >= 3, 'sent or queued: the connection decides whether its publisher waits');
    assert.ok(conn.heldPublishers.every((p) => p === publisher), 'only the publisher is named');
  });

  test('a congested client gets the QoS 0 message that makes its publisher wait, and drops it when none can', () => {
    const session = new ClientSession('c', BOUNDS);
    const conn = new FakeConnection();
    const publisher = new FakeConnection().asConnection;
    session.attach(conn.asConnection, 10);
    conn.congested = true;
    session.deliver(msg('held', 0), 0, false, undefined, publisher);
    conn.holdsPublishers = false;
    session.deliver(msg('unheld', 0), 0, false, undefined, publisher);
    assert.deepEqual(publishes(conn.take()).map((p) => p.payload.toString()), ['held']);
    assert.equal(session.dropped, 1);
  });
});
