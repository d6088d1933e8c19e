/**
 * MQTT behaviour common to 3.1.1 and 5.0, checked for both protocol versions: publish and
 * subscribe at every QoS, ordering, exactly-once, retained messages, wills, client identifiers
 * and takeover, persistent sessions, overlapping and repeated subscriptions, keep-alive,
 * redelivery both ways, `$` topics, unsubscribe and refused subscriptions. References in
 * brackets are the normative statements of the specifications.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IConnackPacket, IPublishPacket } from 'mqtt-packet';
import { scoped, unique, versionName } from './kit.js';
import { PacketClient, type Version } from './packet-client.js';
import { startTarget, type Target } from './target.js';

let target: Target;
before(async () => {
  target = await startTarget();
});
after(() => target.close());

const test = (name: string, body: Parameters<typeof scoped>[1]) => it(name, scoped(() => target, body));
const connackCode = (c: IConnackPacket): number | undefined => c.reasonCode ?? c.returnCode;
/** Session expiry that keeps a v5 session across a disconnect; 3.1.1 sessions persist with clean session 0. */
const persistent = (v: Version) => (v === 5 ? { clean: false, properties: { sessionExpiryInterval: 60 } } : { clean: false });

for (const v of [4, 5] as const) {
  describe(`${versionName(v)}: core behaviour`, { concurrency: true }, () => {
    test('publish and subscribe at QoS 0, 1 and 2 deliver each message once at the publish QoS', async (s) => {
      const u = unique('basic');
      const topic = u.topic('t');
      const { client: sub, inbox } = await s.mqtt(v, { clientId: u.id('sub') });
      const granted = await sub.subscribeAsync(topic, { qos: 2 });
      assert.deepEqual(granted.map((g) => g.qos), [2]);
      const { client: pub } = await s.mqtt(v, { clientId: u.id('pub') });
      for (const qos of [0, 1, 2] as const) await pub.publishAsync(topic, `qos${qos}`, { qos });
      await pub.publishAsync(topic, 'marker', { qos: 2 }); // same publisher and topic: arrives last
      const got = await inbox.until(topic, 4);
      assert.deepEqual(
        got.map((m) => [m.payload, m.packet.qos]),
        [['qos0', 0], ['qos1', 1], ['qos2', 2], ['marker', 2]],
        'each message exactly once, at its QoS',
      );
    });

    test('a message is delivered at the lower of publish and subscription QoS', async (s) => {
      const u = unique('downgrade');
      const topic = u.topic('t');
      const { client: sub } = await s.raw(v, { clientId: u.id('sub') });
      await sub.subscribe([{ topic, qos: 1 }]);
      const { client: pub } = await s.raw(v, { clientId: u.id('pub') });
      await pub.publish({ topic, qos: 2, payload: 'two' });
      const got = await sub.nextPublish(topic);
      assert.equal(got.qos, 1); // [MQTT-3.8.4-6]
      await sub.ack(got);
    });

    test('messages from one publisher on one topic arrive in order', async (s) => {
      const u = unique('order');
      const topic = u.topic('t');
      const { client: sub } = await s.raw(v, { clientId: u.id('sub') });
      await sub.subscribe([{ topic, qos: 1 }]);
      const { client: pub } = await s.raw(v, { clientId: u.id('pub') });
      const sent = Array.from({ length: 20 }, (_, i) => `m${i}`);
      for (const payload of sent) pub.send({ cmd: 'publish', topic, qos: 1, messageId: pub.packetId(), payload, retain: false, dup: false });
      const got: string[] = [];
      for (const _ of sent) {
        const p = await sub.nextPublish(topic);
        got.push(p.payload.toString());
        await sub.ack(p);
      }
      assert.deepEqual(got, sent, 'ordered topic [MQTT-4.6.0-5]');
    });

    test('a QoS 2 message its publisher sends again before PUBREL is delivered once', async (s) => {
      const u = unique('exactlyonce');
      const topic = u.topic('t');
      const { client: sub } = await s.raw(v, { clientId: u.id('sub') });
      await sub.subscribe([{ topic, qos: 2 }]);
      const { client: pub } = await s.raw(v, { clientId: u.id('pub') });
      const messageId = pub.packetId();
      const publish = { cmd: 'publish', topic, qos: 2, messageId, payload: 'once', retain: false } as const;
      pub.send({ ...publish, dup: false });
      await pub.next('pubrec');
      pub.send({ ...publish, dup: true }); // as after a lost PUBREC
      await pub.next('pubrec');
      pub.send({ cmd: 'pubrel', messageId });
      await pub.next('pubcomp');
      const { client: marker } = await s.raw(v, { clientId: u.id('marker') });
      await marker.publish({ topic, qos: 2, payload: 'marker' });
      const got: string[] = [];
      while (!got.includes('marker')) {
        const p = await sub.nextPublish(topic);
        got.push(p.payload.toString());
        await sub.ack(p);
      }
      assert.deepEqual(got, ['once', 'marker'], 'exactly once [MQTT-4.3.3-2]');
    });

    test('subscribing again to the same filter replaces the subscription and its QoS', async (s) => {
      const u = unique('resubscribe');
      const topic = u.topic('t');
      const { client: sub } = await s.raw(v, { clientId: u.id('sub') });
      await sub.subscribe([{ topic, qos: 0 }]);
      const suback = await sub.subscribe([{ topic, qos: 2 }]);
      assert.deepEqual(suback.granted, [2]);
      const { client: pub } = await s.raw(v, { clientId: u.id('pub') });
      await pub.publish({ topic, qos: 2, payload: 'x' });
      const got = await sub.nextPublish(topic);
      assert.equal(got.qos, 2, 'the new QoS applies [MQTT-3.8.4-3]');
      await sub.ack(got);
      await sub.ping();
      assert.deepEqual(sub.publishes(topic), [], 'one subscription, one copy');
    });

    test('a QoS 1 message the client sends again after reconnecting is acknowledged', async (s) => {
      const u = unique('clientresend');
      const topic = u.topic('t');
      const id = u.id('pub');
      s.endSessionLater(v, id);
      const { client: sub } = await s.raw(v, { clientId: u.id('sub') });
      await sub.subscribe([{ topic, qos: 1 }]);
      const first = await s.raw(v, { clientId: id, ...persistent(v) });
      const messageId = first.client.packetId();
      const publish = { cmd: 'publish', topic, qos: 1, messageId, payload: 'again', retain: false } as const;
      first.client.send({ ...publish, dup: false });
      await first.client.abort(); // whether the PUBACK was sent or not, the client never saw it
      const { client: back } = await s.raw(v, { clientId: id, ...persistent(v) });
      back.send({ ...publish, dup: true }); // [MQTT-4.4.0-1]
      await back.next('puback', (p) => p.messageId === messageId);
      const got = await sub.nextPublish(topic);
      assert.equal(got.payload.toString(), 'again');
      await sub.ack(got);
    });

    test('a second connection with the same client id takes over the first', async (s) => {
      const u = unique('takeover');
      const id = u.id('c');
      const { client: first } = await s.raw(v, { clientId: id });
      const { connack } = await s.raw(v, { clientId: id });
      assert.equal(connackCode(connack), 0);
      const reason = await first.closedByServer(); // [MQTT-3.1.4-2]
      if (v === 5 && reason !== undefined) assert.equal(reason, 0x8e, 'session taken over');
    });

    test('a PUBLISH with a wildcard in its topic name closes the connection', async (s) => {
      const u = unique('wildpub');
      const { client } = await s.raw(v, { clientId: u.id('c') });
      client.send({ cmd: 'publish', topic: u.topic('+'), qos: 0, payload: 'x', retain: false, dup: false });
      const reason = await client.closedByServer(); // [MQTT-3.3.2-2]
      if (v === 5 && reason !== undefined) assert.ok(reason >= 0x80, `an error reason code (0x90 topic name invalid); got ${reason}`);
    });

    test('retained messages are set, replaced, cleared by an empty payload and sent on subscribe with the retain flag', async (s) => {
      const u = unique('retained');
      const [kept, cleared, marker] = [u.topic('kept'), u.topic('cleared'), u.topic('marker')];
      s.clearRetainedLater(v, [kept, cleared, marker]);
      const { client: pub } = await s.raw(v, { clientId: u.id('pub') });
      await pub.publish({ topic: kept, payload: 'first', qos: 1, retain: true });
      await pub.publish({ topic: kept, payload: 'second', qos: 1, retain: true }); // replaces [MQTT-3.3.1-5]
      await pub.publish({ topic: cleared, payload: 'gone', qos: 1, retain: true });
      await pub.publish({ topic: cleared, payload: Buffer.alloc(0), qos: 1, retain: true }); // clears [MQTT-3.3.1-10]

      const { client: sub } = await s.raw(v, { clientId: u.id('sub') });
      await sub.subscribe([{ topic: u.topic('#'), qos: 1 }]);
      const got = await sub.nextPublish(kept);
      assert.equal(got.payload.toString(), 'second');
      assert.equal(got.retain, true, 'sent because of a new subscription: retain flag set [MQTT-3.3.1-8]');
      await sub.ack(got);

      // A retained publish to an existing subscription arrives without the retain flag [MQTT-3.3.1-9].
      await pub.publish({ topic: marker, payload: 'live', qos: 1, retain: true });
      const live = await sub.nextPublish(marker);
      assert.equal(live.retain, false);
      await sub.ack(live);
      await sub.ping();
      assert.deepEqual(sub.publishes(cleared), [], 'a cleared retained message is not sent');
    });

    test('the will is published when the connection drops without DISCONNECT', async (s) => {
      const u = unique('will');
      const topic = u.topic('will');
      const { client: sub } = await s.raw(v, { clientId: u.id('sub') });
      await sub.subscribe([{ topic, qos: 1 }]);
      const { client: dying } = await s.raw(v, { clientId: u.id('dying'), will: { topic, payload: 'lost', qos: 1, retain: false } });
      await dying.abort();
      const will = await sub.nextPublish(topic);
      assert.equal(will.payload.toString(), 'lost'); // [MQTT-3.1.2-8]
      assert.equal(will.qos, 1);
      await sub.ack(will);
    });

    test('a will with the retain flag is kept as a retained message', async (s) => {
      const u = unique('willretain');
      const topic = u.topic('will');
      s.clearRetainedLater(v, [topic]);
      const { client: watcher } = await s.raw(v, { clientId: u.id('watcher') });
      await watcher.subscribe([{ topic, qos: 1 }]);
      const { client: dying } = await s.raw(v, { clientId: u.id('dying'), will: { topic, payload: 'last words', qos: 1, retain: true } });
      await dying.abort();
      await watcher.ack(await watcher.nextPublish(topic)); // the will is out
      const { client: late } = await s.raw(v, { clientId: u.id('late') });
      await late.subscribe([{ topic, qos: 1 }]);
      const will = await late.nextPublish(topic);
      assert.equal(will.payload.toString(), 'last words');
      assert.equal(will.retain, true, 'kept as retained [MQTT-3.1.2-17]');
      await late.ack(will);
    });

    test('the will is not published after a normal DISCONNECT', async (s) => {
      const u = unique('nowill');
      const topic = u.topic('will');
      const { client: sub } = await s.raw(v, { clientId: u.id('sub') });
      await sub.subscribe([{ topic, qos: 1 }]);
      const { client: leaving } = await s.raw(v, { clientId: u.id('leaving'), will: { topic, payload: 'lost', qos: 1, retain: false } });
      await leaving.disconnect(); // [MQTT-3.1.2-10], [MQTT-3.14.4-3]
      const { client: pub } = await s.raw(v, { clientId: u.id('pub') });
      await pub.publish({ topic, payload: 'marker', qos: 1 });
      const first = await sub.nextPublish(topic);
      assert.equal(first.payload.toString(), 'marker', 'no will before the marker');
      await sub.ack(first);
      await sub.ping();
      assert.deepEqual(sub.publishes(topic), []);
    });

    if (v === 4) {
      test('a zero-length client id is accepted with clean session 1 and refused with clean session 0 (CONNACK 2)', async (s) => {
        const { client: clean, connack } = await s.raw(v, { clientId: '', clean: true });
        assert.equal(connackCode(connack), 0); // [MQTT-3.1.3-6]
        await clean.disconnect();
        // Written by hand: the codec refuses to encode this CONNECT.
        const refused = await PacketClient.open(target, v);
        s.defer(() => refused.abort());
        refused.send(Buffer.from([0x10, 12, 0, 4, ...Buffer.from('MQTT'), 4, 0x00, 0, 60, 0, 0]));
        const no = (await refused.next('connack')) as IConnackPacket;
        assert.equal(connackCode(no), 2, 'identifier rejected [MQTT-3.1.3-8]');
        await refused.closed; // [MQTT-3.2.2-5]
      });
    } else {
      test('a zero-length client id gets an assigned client identifier', async (s) => {
        const { client, connack } = await s.raw(v, { clientId: '', clean: true });
        assert.equal(connackCode(connack), 0);
        const assigned = connack.properties?.assignedClientIdentifier;
        assert.equal(typeof assigned, 'string', 'CONNACK carries an Assigned Client Identifier [MQTT-3.2.2-16]');
        assert.notEqual(assigned, '');
        await client.disconnect();
      });
    }

    test('a persistent session receives the QoS 1 and 2 messages published while it was away', async (s) => {
      const u = unique('offline');
      const topic = u.topic('t');
      const id = u.id('sub');
      s.endSessionLater(v, id);
      const first = await s.raw(v, { clientId: id, ...persistent(v) });
      await first.client.subscribe([{ topic, qos: 2 }]);
      await first.client.disconnect();

      const { client: pub } = await s.raw(v, { clientId: u.id('pub') });
      for (const qos of [0, 1, 2] as const) await pub.publish({ topic, qos, payload: `qos${qos}` });

      const { client: back, connack } = await s.raw(v, { clientId: id, ...persistent(v) });
      assert.equal(connack.sessionPresent, true, 'session present [MQTT-3.2.2-2]');
      const q1 = await back.next('publish', (p) => (p as IPublishPacket).payload.toString() === 'qos1');
      const q2 = await back.next('publish', (p) => (p as IPublishPacket).payload.toString() === 'qos2');
      assert.equal((q1 as IPublishPacket).qos, 1);
      assert.equal((q2 as IPublishPacket).qos, 2);
      await back.ack(q1 as IPublishPacket);
      await back.ack(q2 as IPublishPacket);
    });

    test('overlapping subscriptions deliver the message at the highest matching QoS', async (s) => {
      const u = unique('overlap');
      const topic = u.topic('a/b');
      const { client: sub } = await s.raw(v, { clientId: u.id('sub') });
      const suback = await sub.subscribe([
        { topic: u.topic('#'), qos: 2 },
        { topic: u.topic('a/+'), qos: 1 },
      ]);
      assert.deepEqual(suback.granted, [2, 1]);
      const { client: pub } = await s.raw(v, { clientId: u.id('pub') });
      await pub.publish({ topic, qos: 2, payload: 'both' });
      const first = await sub.nextPublish(topic);
      await sub.ack(first);
      await sub.ping();
      const copies = [first, ...sub.publishes(topic)];
      assert.ok(copies.some((p) => p.qos === 2), `a copy at QoS 2 [MQTT-3.3.5-1]; got QoS ${copies.map((p) => p.qos).join(', ')}`);
      assert.ok(copies.length <= 2, `at most one copy per matching subscription; got ${copies.length}`);
    });

    test('the server closes a connection silent for 1.5 times its keep-alive', async (s) => {
      const u = unique('keepalive');
      const { client, connack } = await s.raw(v, { clientId: u.id('quiet'), keepalive: 1 });
      assert.equal(connackCode(connack), 0);
      assert.equal(connack.properties?.serverKeepAlive ?? 1, 1, 'no server keep-alive overrides a 1 s keep-alive');
      const reason = await client.closedByServer(15_000); // [MQTT-3.1.2-24]
      if (v === 5 && reason !== undefined) assert.equal(reason, 0x8d, 'keep alive timeout');
    });

    test('a PUBREL the client did not complete is sent again on reconnect', async (s) => {
      const u = unique('pubrel');
      const topic = u.topic('t');
      const id = u.id('sub');
      s.endSessionLater(v, id);
      const first = await s.raw(v, { clientId: id, ...persistent(v) });
      await first.client.subscribe([{ topic, qos: 2 }]);
      const { client: pub } = await s.raw(v, { clientId: u.id('pub') });
      await pub.publish({ topic, qos: 2, payload: 'two' });
      const publish = await first.client.nextPublish(topic);
      first.client.send({ cmd: 'pubrec', messageId: publish.messageId as number });
      await first.client.next('pubrel', (p) => p.messageId === publish.messageId);
      await first.client.abort(); // no PUBCOMP

      const { client: back, connack } = await s.raw(v, { clientId: id, ...persistent(v) });
      assert.equal(connack.sessionPresent, true);
      await back.next('pubrel', (p) => p.messageId === publish.messageId); // [MQTT-4.4.0-1]
      back.send({ cmd: 'pubcomp', messageId: publish.messageId as number });
      await back.ping();
      assert.deepEqual(back.publishes(topic), [], 'the message itself is not sent again after PUBREC');
    });

    test('unacknowledged QoS 1 and 2 messages are sent again with DUP on reconnect', async (s) => {
      const u = unique('redeliver');
      const topic = u.topic('t');
      const id = u.id('sub');
      s.endSessionLater(v, id);
      const first = await s.raw(v, { clientId: id, ...persistent(v) });
      await first.client.subscribe([{ topic, qos: 2 }]);
      const { client: pub } = await s.raw(v, { clientId: u.id('pub') });
      await pub.publish({ topic, qos: 1, payload: 'one' });
      await pub.publish({ topic, qos: 2, payload: 'two' });
      const one = await first.client.nextPublish(topic);
      const two = await first.client.nextPublish(topic);
      await first.client.abort(); // neither acknowledged

      const { client: back, connack } = await s.raw(v, { clientId: id, ...persistent(v) });
      assert.equal(connack.sessionPresent, true);
      const again = [await back.nextPublish(topic), await back.nextPublish(topic)];
      for (const [before, resent] of [[one, again[0]], [two, again[1]]] as const) {
        assert.equal(resent?.payload.toString(), before.payload.toString());
        assert.equal(resent?.messageId, before.messageId, 'original packet identifier [MQTT-4.4.0-1]');
        assert.equal(resent?.dup, true, 'DUP set on a re-delivery [MQTT-3.3.1-1]');
        assert.equal(resent?.qos, before.qos);
      }
      for (const p of again) if (p) await back.ack(p);
    });

    test('topic filters starting with a wildcard do not match topics starting with $', async (s) => {
      const u = unique('dollar');
      const dollarTopic = `$kwtest/${u.topic('x')}`;
      const { client: all } = await s.raw(v, { clientId: u.id('all') });
      // QoS 0: '#' also receives every other test's traffic, which must not fill its in-flight window.
      await all.subscribe([{ topic: '#', qos: 0 }, { topic: '+/+/+/x', qos: 0 }]);
      const { client: dollar } = await s.raw(v, { clientId: u.id('dollar') });
      await dollar.subscribe([{ topic: `$kwtest/${u.topic('#')}`, qos: 1 }]);
      const { client: pub } = await s.raw(v, { clientId: u.id('pub') });
      await pub.publish({ topic: dollarTopic, qos: 1, payload: 'system' });
      await dollar.nextPublish(dollarTopic); // routed to an explicit $ subscription
      await pub.publish({ topic: u.topic('marker'), qos: 1, payload: 'marker' });
      await all.nextPublish(u.topic('marker'));
      await all.ping();
      assert.deepEqual(
        all.publishes().filter((p) => p.topic.startsWith('$')).map((p) => p.topic),
        [],
        '# and + do not match $ topics [MQTT-4.7.2-1]',
      );
    });

    test('after UNSUBSCRIBE the client no longer receives messages on that filter', async (s) => {
      const u = unique('unsubscribe');
      const [gone, kept] = [u.topic('gone'), u.topic('kept')];
      const { client: sub } = await s.raw(v, { clientId: u.id('sub') });
      await sub.subscribe([{ topic: gone, qos: 1 }, { topic: kept, qos: 1 }]);
      const unsuback = await sub.unsubscribe([gone]);
      if (v === 5) assert.deepEqual(unsuback.granted, [0]);
      const absent = await sub.unsubscribe([u.topic('never')]);
      if (v === 5) assert.ok([0, 0x11].includes((absent.granted as number[])[0] ?? -1), 'success or no subscription existed');
      const { client: pub } = await s.raw(v, { clientId: u.id('pub') });
      await pub.publish({ topic: gone, qos: 1, payload: 'gone' });
      await pub.publish({ topic: kept, qos: 1, payload: 'kept' });
      await sub.ack(await sub.nextPublish(kept));
      await sub.ping();
      assert.deepEqual(sub.publishes(gone), [], '[MQTT-3.10.4-2]');
    });

    test('a refused subscription is answered with a failure code in the SUBACK, and the rest still works', async (s) => {
      const u = unique('subfail');
      const ok = u.topic('ok');
      const { client: sub } = await s.raw(v, { clientId: u.id('sub') });
      const suback = await sub.subscribe([{ topic: 'test/nosubscribe', qos: 2 }, { topic: ok, qos: 1 }]);
      const [refused, granted] = suback.granted as number[];
      if (v === 4) assert.equal(refused, 0x80, 'failure [MQTT-3.9.3]');
      else assert.ok((refused ?? 0) >= 0x80, `a v5 failure reason code; got ${refused}`);
      assert.equal(granted, 1);
      const { client: pub } = await s.raw(v, { clientId: u.id('pub') });
      await pub.publish({ topic: 'test/nosubscribe', qos: 1, payload: 'nobody' });
      await pub.publish({ topic: ok, qos: 1, payload: 'ok' });
      await sub.ack(await sub.nextPublish(ok));
      await sub.ping();
      assert.deepEqual(sub.publishes('test/nosubscribe'), []);
    });
  });
}
