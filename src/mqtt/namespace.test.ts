import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPublishPacket } from 'mqtt-packet';
import type { ClientSession, Will } from './client-session.js';
import { FakeConnection } from './fake-connection.test.js';
import { Message } from './message.js';
import { Namespace } from './namespace.js';
import { OPEN_POLICY } from './namespace-policy.js';
import { REASON_V5 } from './reason-codes.js';

const BOUNDS = { sessionQueueMessages: 100, sessionQueueBytes: 1_000_000, maxSessions: 10, retainedMessages: 10, retainedBytes: 10_000 };

interface Client {
  readonly session: ClientSession;
  readonly conn: FakeConnection;
  readonly present: boolean;
}

function connect(ns: Namespace, id: string, options: { clean?: boolean; expiry?: number; will?: Will } = {}): Client {
  const conn = new FakeConnection(true);
  const start = ns.open(id, options.clean ?? true, conn.asConnection);
  assert.ok(start, 'a session was opened');
  const { session, present } = start;
  session.expirySeconds = options.expiry ?? 0;
  session.will = options.will;
  conn.onClose = () => ns.closed(session, conn.asConnection);
  session.attach(conn.asConnection, 100);
  return { session, conn, present };
}

const will = (delaySeconds: number, payload = 'gone'): Will => ({
  topic: 'will/x',
  payload: Buffer.from(payload),
  qos: 1,
  retain: false,
  properties: undefined,
  delaySeconds,
});

const sub = { qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, identifiers: undefined } as const;

const received = (c: Client): string[] =>
  c.conn
    .take()
    .filter((p): p is IPublishPacket => p.cmd === 'publish')
    .map((p) => p.payload.toString());

describe('Namespace sessions', () => {
  let ns: Namespace;
  let watcher: Client;

  afterEach(() => mock.timers.reset());

  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    ns = new Namespace(OPEN_POLICY, BOUNDS);
    watcher = connect(ns, 'watcher');
    ns.router.subscribe(watcher.session, 'will/#', sub);
  });

  test('the will goes out when the connection ends without DISCONNECT; a session without expiry ends with it', () => {
    const c = connect(ns, 'c', { will: will(0) });
    c.conn.close('network gone');
    assert.deepEqual(received(watcher), ['gone']);
    assert.equal(ns.session('c'), undefined);
  });

  test('a normal DISCONNECT drops the will', () => {
    const c = connect(ns, 'c', { will: will(0) });
    c.session.will = undefined;
    c.conn.close('client disconnected');
    assert.deepEqual(received(watcher), []);
  });

  test('the will delay holds the will back; it is never part of the PUBLISH', () => {
    const c = connect(ns, 'c', { expiry: 60, will: will(5) });
    c.conn.close('network gone');
    mock.timers.tick(4_999);
    assert.deepEqual(received(watcher), []);
    mock.timers.tick(1);
    const packets = watcher.conn.take() as IPublishPacket[];
    assert.equal(packets.length, 1);
    assert.equal(packets[0]?.payload.toString(), 'gone');
    assert.equal((packets[0]?.properties as Record<string, unknown> | undefined)?.['willDelayInterval'], undefined);
  });

  test('resuming the session within the will delay cancels the will', () => {
    const c = connect(ns, 'c', { expiry: 60, will: will(5) });
    c.conn.close('network gone');
    mock.timers.tick(3_000);
    const again = connect(ns, 'c', { clean: false, expiry: 60 });
    assert.equal(again.present, true);
    mock.timers.tick(120_000);
    assert.deepEqual(received(watcher), []);
    assert.equal(ns.session('c'), again.session, 'the resumed session does not expire while connected');
  });

  test('a will delay longer than the session expiry ends at the expiry, with the session', () => {
    const c = connect(ns, 'c', { expiry: 10, will: will(30) });
    c.conn.close('network gone');
    mock.timers.tick(9_999);
    assert.deepEqual(received(watcher), []);
    assert.notEqual(ns.session('c'), undefined);
    mock.timers.tick(1);
    assert.deepEqual(received(watcher), ['gone']);
    assert.equal(ns.session('c'), undefined);
  });

  test('a clean start ends the old session at once: its pending will goes out and its subscriptions are gone', () => {
    const c = connect(ns, 'c', { expiry: 60, will: will(30) });
    ns.router.subscribe(c.session, 'topic', sub);
    c.conn.close('network gone');
    const fresh = connect(ns, 'c', { clean: true });
    assert.equal(fresh.present, false);
    assert.deepEqual(received(watcher), ['gone']);
    assert.equal(ns.publish(new Message('topic', Buffer.from('m'), 1, false, Infinity, undefined)), 0);
  });

  test('a second CONNECT with the same client id takes the session over: the old connection gets 0x8E and its will goes out', () => {
    const first = connect(ns, 'c', { expiry: 60, will: will(0, 'first') });
    ns.router.subscribe(first.session, 'topic', sub);
    const second = connect(ns, 'c', { clean: false, expiry: 60 });
    assert.equal(first.conn.closedWith?.code, REASON_V5.sessionTakenOver);
    assert.equal(second.present, true);
    assert.equal(second.session, first.session);
    assert.deepEqual(received(watcher), ['first']);
    ns.publish(new Message('topic', Buffer.from('to-second'), 1, false, Infinity, undefined));
    assert.deepEqual(received(second), ['to-second']);
    assert.deepEqual(received(first), []);
  });

  test('a persistent session queues QoS 1 and 2 while offline, delivers on resume, and is gone after its expiry', () => {
    const c = connect(ns, 'c', { clean: false, expiry: 30 });
    ns.router.subscribe(c.session, 'topic', sub);
    c.conn.close('network gone');
    ns.publish(new Message('topic', Buffer.from('missed'), 1, false, Infinity, undefined));
    const back = connect(ns, 'c', { clean: false, expiry: 30 });
    assert.equal(back.present, true);
    assert.deepEqual(received(back), ['missed']);
    back.conn.close('network gone');
    mock.timers.tick(30_000);
    assert.equal(ns.session('c'), undefined);
    assert.equal(connect(ns, 'c', { clean: false }).present, false);
  });

  test('sessions are bounded per namespace', () => {
    for (let i = ns.sessionCount; i < BOUNDS.maxSessions; i++) connect(ns, `s${i}`, { expiry: 60 });
    assert.equal(ns.open('one-too-many', true, new FakeConnection().asConnection), undefined);
    assert.notEqual(ns.open('s1', false, new FakeConnection().asConnection), undefined, 'an existing session can still be resumed');
  });

  test('close stops every timer and forgets every session', () => {
    const c = connect(ns, 'c', { expiry: 60, will: will(5) });
    c.conn.close('network gone');
    ns.close();
    mock.timers.tick(120_000);
    assert.deepEqual(received(watcher), []);
    assert.equal(ns.sessionCount, 0);
  });
});
