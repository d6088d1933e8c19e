import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPublishPacket } from 'mqtt-packet';
import { ClientSession } from './client-session.js';
import { FakeConnection } from './fake-connection.test.js';
import { Message } from './message.js';
import { Router } from './router.js';
import type { Subscription } from './subscription.js';
import type { QoS } from './topic-trie.js';

const BOUNDS = { sessionQueueMessages: 100, sessionQueueBytes: 1_000_000 };

const sub = (qos: QoS, extra: Partial<Subscription> = {}): Subscription => ({
  qos,
  noLocal: false,
  retainAsPublished: false,
  retainHandling: 0,
  identifiers: undefined,
  ...extra,
});

function connected(id: string, v5 = true): { session: ClientSession; conn: FakeConnection } {
  const session = new ClientSession(id, BOUNDS);
  const conn = new FakeConnection(v5);
  session.attach(conn.asConnection, 100);
  return { session, conn };
}

const msg = (topic: string, qos: QoS, origin?: object, retain = false): Message =>
  new Message(topic, Buffer.from('m'), qos, retain, Infinity, origin);

const publishes = (conn: FakeConnection): IPublishPacket[] => conn.take().filter((p): p is IPublishPacket => p.cmd === 'publish');

describe('Router', () => {
  test('overlapping subscriptions give one copy at the highest granted QoS, with every subscription identifier', () => {
    const router = new Router();
    const { session, conn } = connected('a');
    router.subscribe(session, 'r/#', sub(0, { identifiers: [1] }));
    router.subscribe(session, 'r/+/x', sub(2, { identifiers: [2] }));
    router.subscribe(session, 'r/a/x', sub(1));
    assert.equal(router.publish(msg('r/a/x', 2)), 1);
    const [p, more] = publishes(conn);
    assert.equal(more, undefined, 'one copy');
    assert.equal(p?.qos, 2);
    const ids = p?.properties?.subscriptionIdentifier;
    assert.deepEqual(Array.isArray(ids) ? [...ids].sort() : ids, [1, 2]);
  });

  test('the delivered QoS is min(granted, published)', () => {
    const router = new Router();
    const { session, conn } = connected('a', false);
    router.subscribe(session, 't', sub(2));
    router.publish(msg('t', 1));
    router.publish(msg('t', 0));
    assert.deepEqual(publishes(conn).map((p) => p.qos), [1, 0]);
  });

  test('$ topics never match a leading wildcard', () => {
    const router = new Router();
    const { session, conn } = connected('a');
    router.subscribe(session, '#', sub(0));
    router.subscribe(session, '+/x', sub(0));
    assert.equal(router.publish(msg('$SYS/x', 0)), 0);
    router.subscribe(session, '$SYS/#', sub(0));
    assert.equal(router.publish(msg('$SYS/x', 0)), 1);
    assert.equal(publishes(conn).length, 1);
  });

  test('no local keeps a session’s own messages from it, only through the filters that ask', () => {
    const router = new Router();
    const a = connected('a');
    const b = connected('b');
    router.subscribe(a.session, 't', sub(0, { noLocal: true }));
    router.subscribe(b.session, 't', sub(0, { noLocal: true }));
    assert.equal(router.publish(msg('t', 0, a.session)), 1);
    assert.equal(publishes(a.conn).length, 0);
    assert.equal(publishes(b.conn).length, 1);
    router.subscribe(a.session, '#', sub(0));
    assert.equal(router.publish(msg('t', 0, a.session)), 2);
    assert.equal(publishes(a.conn).length, 1);
  });

  test('the retain flag is cleared on live delivery unless retain as published', () => {
    const router = new Router();
    const a = connected('a');
    const b = connected('b');
    router.subscribe(a.session, 't', sub(0));
    router.subscribe(b.session, 't', sub(0, { retainAsPublished: true }));
    router.publish(msg('t', 0, undefined, true));
    assert.equal(publishes(a.conn)[0]?.retain, false);
    assert.equal(publishes(b.conn)[0]?.retain, true);
  });

  test('a message published during a delivery (a will, say) waits for the current delivery to finish', () => {
    const router = new Router();
    const first = connected('first');
    const second = connected('second');
    router.subscribe(first.session, 't', sub(0));
    router.subscribe(second.session, 't', sub(0));
    router.subscribe(second.session, 'will', sub(0));
    // Writing to the first subscriber publishes another message, as a close that sends a will does.
    const write = first.conn.write.bind(first.conn);
    first.conn.write = (bytes: Buffer): boolean => {
      router.publish(msg('will', 0));
      return write(bytes);
    };
    assert.equal(router.publish(msg('t', 0)), 2);
    assert.deepEqual(publishes(second.conn).map((p) => p.topic), ['t', 'will'], 'the outer delivery completed first');
  });

  test('unsubscribe and unsubscribeAll remove plain and shared subscriptions', () => {
    const router = new Router();
    const { session, conn } = connected('a');
    router.subscribe(session, 't', sub(0));
    router.subscribeShared(session, '$share/g/t', 't', sub(0));
    assert.equal(router.publish(msg('t', 0)), 2);
    assert.equal(router.unsubscribe(session, 't'), true);
    assert.equal(router.unsubscribe(session, 't'), false);
    assert.equal(router.publish(msg('t', 0)), 1);
    router.unsubscribeAll(session);
    assert.equal(session.subscriptions.size, 0);
    assert.equal(router.publish(msg('t', 0)), 0);
    assert.equal(publishes(conn).length, 3);
  });
});

describe('shared subscriptions', () => {
  test('each message goes to one member of the group, round robin', () => {
    const router = new Router();
    const members = ['a', 'b', 'c'].map((id) => connected(id));
    for (const m of members) router.subscribeShared(m.session, '$share/workers/jobs/+', 'jobs/+', sub(1));
    for (let i = 0; i < 9; i++) assert.equal(router.publish(msg(`jobs/${i}`, 1)), 1);
    assert.deepEqual(members.map((m) => publishes(m.conn).length), [3, 3, 3]);
  });

  test('connected members are preferred; with none connected a QoS 1 message waits in a member’s session', () => {
    const router = new Router();
    const a = connected('a');
    const b = connected('b');
    router.subscribeShared(a.session, '$share/g/t', 't', sub(1));
    router.subscribeShared(b.session, '$share/g/t', 't', sub(1));
    b.conn.isOpen = false;
    b.session.detach(b.conn.asConnection);
    for (let i = 0; i < 4; i++) router.publish(msg('t', 1));
    assert.equal(publishes(a.conn).length, 4);
    assert.equal(b.session.queued, 0);
    a.conn.isOpen = false;
    a.session.detach(a.conn.asConnection);
    router.publish(msg('t', 1));
    router.publish(msg('t', 1));
    assert.equal(a.session.queued + b.session.queued, 2, 'queued, not lost');
    const again = new FakeConnection(true);
    b.session.attach(again.asConnection, 100);
    assert.equal(publishes(again).length, b.session.inflight);
  });

  test('two groups on the same filter each get the message; a plain subscriber of the same session gets its own copy', () => {
    const router = new Router();
    const a = connected('a');
    const b = connected('b');
    router.subscribeShared(a.session, '$share/g1/t', 't', sub(0));
    router.subscribeShared(b.session, '$share/g2/t', 't', sub(0));
    router.subscribe(a.session, 't', sub(0));
    assert.equal(router.publish(msg('t', 0)), 3);
    assert.equal(publishes(a.conn).length, 2);
    assert.equal(publishes(b.conn).length, 1);
  });
});
