/**
 * MQTT 5.0 only: session expiry, will delay and will properties, flow control, topic aliases,
 * maximum packet size, server keep-alive, request/response, shared subscriptions, user
 * properties, message expiry, subscription options and subscription identifiers. References
 * in brackets are normative statements of MQTT 5.0.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IConnackPacket, IPublishPacket, IPubrecPacket } from 'mqtt-packet';
import { elapse, scoped, unique } from './kit.js';
import { PacketClient } from './packet-client.js';
import { startTarget, type Target } from './target.js';

let target: Target;
before(async () => {
  target = await startTarget();
});
after(() => target.close());

const test = (name: string, body: Parameters<typeof scoped>[1]) => it(name, scoped(() => target, body));
const V5 = 5 as const;
const payloadOf = (p: IPublishPacket): string => p.payload.toString();


describe('MQTT 5: sessions and wills', { concurrency: true }, () => {
  test('a session outlives its connection for the session expiry interval, then is gone', async (s) => {
    const u = unique('expiry');
    const id = u.id('c');
    s.endSessionLater(V5, id);
    const first = await s.raw(V5, { clientId: id, clean: true, properties: { sessionExpiryInterval: 1 } });
    assert.equal(first.connack.sessionPresent, false, 'clean start: no session present [MQTT-3.2.2-2]');
    await first.client.subscribe([{ topic: u.topic('t'), qos: 1 }]);
    await first.client.disconnect();

    const second = await s.raw(V5, { clientId: id, clean: false, properties: { sessionExpiryInterval: 1 } });
    assert.equal(second.connack.sessionPresent, true, 'reconnected within the interval [MQTT-3.2.2-3]');
    await second.client.disconnect();
    await elapse(2.5); // the interval under test
    const third = await s.raw(V5, { clientId: id, clean: false, properties: { sessionExpiryInterval: 0 } });
    assert.equal(third.connack.sessionPresent, false, 'expired after 1 s [MQTT-3.1.2-23]');
  });

  test('session expiry 0 ends the session with the connection, and clean start discards an existing one', async (s) => {
    const u = unique('noexpiry');
    const id = u.id('c');
    s.endSessionLater(V5, id);
    const first = await s.raw(V5, { clientId: id, clean: false, properties: { sessionExpiryInterval: 0 } });
    await first.client.subscribe([{ topic: u.topic('t'), qos: 1 }]);
    await first.client.disconnect();
    const second = await s.raw(V5, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(second.connack.sessionPresent, false, 'no session kept with expiry 0');
    await second.client.disconnect();
    const third = await s.raw(V5, { clientId: id, clean: true, properties: { sessionExpiryInterval: 60 } });
    assert.equal(third.connack.sessionPresent, false, 'clean start discards the session [MQTT-3.1.2-4]');
  });

  test('DISCONNECT with reason 0x04 publishes the will', async (s) => {
    const u = unique('will04');
    const topic = u.topic('will');
    const { client: sub } = await s.raw(V5, { clientId: u.id('sub') });
    await sub.subscribe([{ topic, qos: 1 }]);
    const { client } = await s.raw(V5, { clientId: u.id('leaving'), will: { topic, payload: 'bye', qos: 1 } });
    await client.disconnect({ reasonCode: 0x04 });
    const will = await sub.nextPublish(topic);
    assert.equal(payloadOf(will), 'bye');
    await sub.ack(will);
  });

  test('will properties are carried to the will message', async (s) => {
    const u = unique('willprops');
    const topic = u.topic('will');
    const { client: sub } = await s.raw(V5, { clientId: u.id('sub') });
    await sub.subscribe([{ topic, qos: 2 }]);
    const correlationData = Buffer.from('c0rr');
    const { client } = await s.raw(V5, {
      clientId: u.id('dying'),
      will: {
        topic,
        payload: 'gone',
        qos: 2,
        properties: {
          contentType: 'text/plain',
          responseTopic: u.topic('reply'),
          correlationData,
          userProperties: { reason: 'power' },
          payloadFormatIndicator: true,
        },
      },
    });
    await client.abort();
    const will = await sub.nextPublish(topic);
    assert.equal(will.qos, 2);
    assert.equal(will.properties?.contentType, 'text/plain');
    assert.equal(will.properties?.responseTopic, u.topic('reply'));
    assert.deepEqual(will.properties?.correlationData, correlationData);
    assert.deepEqual({ ...will.properties?.userProperties }, { reason: 'power' });
    assert.equal(will.properties?.payloadFormatIndicator, true);
    await sub.ack(will);
  });

  test('a will with a delay interval is published after the delay, not at once', async (s) => {
    const u = unique('willdelay');
    const topic = u.topic('will');
    const { client: sub } = await s.raw(V5, { clientId: u.id('sub') });
    await sub.subscribe([{ topic, qos: 1 }]);
    const id = u.id('dying');
    s.endSessionLater(V5, id);
    const { client } = await s.raw(V5, {
      clientId: id,
      properties: { sessionExpiryInterval: 30 },
      will: { topic, payload: 'late', qos: 1, properties: { willDelayInterval: 1 } },
    });
    await client.abort();
    const { client: pub } = await s.raw(V5, { clientId: u.id('pub') });
    await pub.publish({ topic, payload: 'before', qos: 1 });
    const first = await sub.nextPublish(topic);
    assert.equal(payloadOf(first), 'before', 'the will waits for its delay [MQTT-3.1.3-9]');
    await sub.ack(first);
    const will = await sub.nextPublish(topic);
    assert.equal(payloadOf(will), 'late');
    assert.equal((will.properties as Record<string, unknown> | undefined)?.willDelayInterval, undefined, 'the will delay is not a PUBLISH property');
    await sub.ack(will);
  });

  test('the will is published when the session ends, even before its delay', async (s) => {
    const u = unique('willsession');
    const topic = u.topic('will');
    const { client: sub } = await s.raw(V5, { clientId: u.id('sub') });
    await sub.subscribe([{ topic, qos: 1 }]);
    const { client } = await s.raw(V5, {
      clientId: u.id('dying'),
      properties: { sessionExpiryInterval: 1 },
      will: { topic, payload: 'session over', qos: 1, properties: { willDelayInterval: 3600 } },
    });
    await client.abort();
    const will = await sub.nextPublish(topic); // [MQTT-3.1.2-8]: the earlier of delay and session end
    assert.equal(payloadOf(will), 'session over');
    await sub.ack(will);
  });

  test('reconnecting within the will delay cancels the will', async (s) => {
    const u = unique('willcancel');
    const topic = u.topic('will');
    const { client: sub } = await s.raw(V5, { clientId: u.id('sub') });
    await sub.subscribe([{ topic, qos: 1 }]);
    const id = u.id('flaky');
    s.endSessionLater(V5, id);
    const connect = {
      clientId: id,
      clean: false,
      properties: { sessionExpiryInterval: 30 },
      will: { topic, payload: 'should not', qos: 1 as const, properties: { willDelayInterval: 1 } },
    };
    const first = await s.raw(V5, connect);
    await first.client.abort();
    const again = await s.raw(V5, connect);
    assert.equal(again.connack.sessionPresent, true);
    await elapse(2); // past the first connection's will delay
    const { client: pub } = await s.raw(V5, { clientId: u.id('pub') });
    await pub.publish({ topic, payload: 'marker', qos: 1 });
    const first2 = await sub.nextPublish(topic);
    assert.equal(payloadOf(first2), 'marker', 'no will: the client came back in time [MQTT-3.1.3-9]');
    await sub.ack(first2);
    await again.client.disconnect();
  });
});

describe('MQTT 5: flow control, aliases and sizes', { concurrency: true }, () => {
  test('the server sends at most the client\'s receive maximum of unacknowledged QoS 1 messages', async (s) => {
    const u = unique('recvmax');
    const topic = u.topic('t');
    const { client: sub } = await s.raw(V5, { clientId: u.id('sub'), properties: { receiveMaximum: 2 } });
    await sub.subscribe([{ topic, qos: 1 }]);
    const { client: pub } = await s.raw(V5, { clientId: u.id('pub') });
    for (let i = 0; i < 5; i++) await pub.publish({ topic, qos: 1, payload: `m${i}` });
    const inFlight = [await sub.nextPublish(topic), await sub.nextPublish(topic)];
    await sub.ping();
    assert.deepEqual(sub.publishes(topic).map(payloadOf), [], 'no third message before an acknowledgement [MQTT-3.3.4-9]');
    await sub.ack(inFlight[0] as IPublishPacket);
    const third = await sub.nextPublish(topic);
    await sub.ping();
    assert.deepEqual(sub.publishes(topic).map(payloadOf), [], 'one acknowledgement frees one slot');
    const rest = [inFlight[1] as IPublishPacket, third];
    for (const p of rest) await sub.ack(p);
    rest.push(await sub.nextPublish(topic), await sub.nextPublish(topic));
    assert.deepEqual([inFlight[0] as IPublishPacket, ...rest].map(payloadOf).sort(), ['m0', 'm1', 'm2', 'm3', 'm4']);
    for (const p of rest.slice(2)) await sub.ack(p);
  });

  test('a client sending more QoS 2 messages than the server\'s receive maximum is disconnected with 0x93', async (s) => {
    const u = unique('recvmaxin');
    const topic = u.topic('t');
    const { client, connack } = await s.raw(V5, { clientId: u.id('pub') });
    const receiveMaximum = connack.properties?.receiveMaximum ?? 65535;
    if (receiveMaximum >= 65535) {
      s.t.skip('a receive maximum of 65535 cannot be exceeded with distinct packet identifiers');
      return;
    }
    for (let i = 0; i < receiveMaximum; i++) {
      client.send({ cmd: 'publish', topic, qos: 2, messageId: i + 1, payload: Buffer.alloc(0), retain: false, dup: false });
    }
    for (let i = 0; i < receiveMaximum; i++) {
      const pubrec = (await client.next('pubrec')) as IPubrecPacket;
      assert.ok((pubrec.reasonCode ?? 0) < 0x80, `PUBREC ${pubrec.messageId} within the receive maximum`);
    }
    client.send({ cmd: 'publish', topic, qos: 2, messageId: receiveMaximum + 1, payload: Buffer.alloc(0), retain: false, dup: false });
    assert.equal(await client.closedByServer(), 0x93, `receive maximum ${receiveMaximum} exceeded (§3.3.4, §4.9)`);
  });

  test('a topic alias set by the client is resolved for subscribers; one beyond the maximum is a protocol error', async (s) => {
    const u = unique('alias');
    const topic = u.topic('t');
    const { client: sub } = await s.raw(V5, { clientId: u.id('sub') });
    await sub.subscribe([{ topic, qos: 1 }]);
    const { client: pub, connack } = await s.raw(V5, { clientId: u.id('pub') });
    const maximum = connack.properties?.topicAliasMaximum ?? 0;
    assert.ok(maximum >= 1, `the server accepts topic aliases (topicAliasMaximum ${maximum})`);
    await pub.publish({ topic, qos: 1, payload: 'set', properties: { topicAlias: 1 } });
    await pub.publish({ topic: '', qos: 1, payload: 'used', properties: { topicAlias: 1 } });
    const got = [await sub.nextPublish(topic), await sub.nextPublish(topic)];
    assert.deepEqual(got.map(payloadOf), ['set', 'used']);
    for (const p of got) {
      await sub.ack(p);
      assert.equal(p.properties?.topicAlias, undefined, 'the publisher\'s alias is not forwarded');
    }
    pub.send({ cmd: 'publish', topic, qos: 0, payload: 'beyond', retain: false, dup: false, properties: { topicAlias: maximum + 1 } });
    assert.equal(await pub.closedByServer(), 0x94, 'topic alias invalid [MQTT-3.3.2-9]');
  });

  test('the server never sends a packet larger than the client\'s maximum packet size', async (s) => {
    const u = unique('maxpacket');
    const topic = u.topic('t');
    const { client: sub } = await s.raw(V5, { clientId: u.id('sub'), properties: { maximumPacketSize: 128 } });
    await sub.subscribe([{ topic, qos: 1 }]);
    const { client: pub } = await s.raw(V5, { clientId: u.id('pub') });
    await pub.publish({ topic, qos: 1, payload: 'small' });
    await pub.publish({ topic, qos: 1, payload: Buffer.alloc(500, 'x') });
    await pub.publish({ topic, qos: 1, payload: 'after' });
    const got = [await sub.nextPublish(topic), await sub.nextPublish(topic)];
    assert.deepEqual(got.map(payloadOf), ['small', 'after'], 'the oversized message is discarded [MQTT-3.1.2-25]');
    for (const p of got) await sub.ack(p);
    await sub.ping();
    assert.ok(Math.max(...sub.sizes) <= 128, `largest packet ${Math.max(...sub.sizes)} bytes`);
  });

  test('a packet larger than the server\'s maximum packet size is refused with DISCONNECT 0x95', async (s) => {
    const u = unique('servermax');
    const { client, connack } = await s.raw(V5, { clientId: u.id('c') });
    const maximum = connack.properties?.maximumPacketSize;
    if (maximum === undefined) {
      s.t.skip('the server announces no maximum packet size');
      return;
    }
    assert.ok(maximum <= 16 * 1024 * 1024, `a testable maximum (${maximum} bytes)`);
    client.send({ cmd: 'publish', topic: u.topic('t'), qos: 0, payload: Buffer.alloc(maximum, 'x'), retain: false, dup: false });
    assert.equal(await client.closedByServer(), 0x95, 'packet too large [MQTT-3.2.2-15]');
  });

  test('a keep-alive the server will not honour is answered with a Server Keep Alive', async (s) => {
    const u = unique('serverka');
    const { client, connack } = await s.raw(V5, { clientId: u.id('c'), keepalive: 65535 });
    const serverKeepAlive = connack.properties?.serverKeepAlive;
    assert.equal(typeof serverKeepAlive, 'number', 'CONNACK carries Server Keep Alive');
    assert.ok((serverKeepAlive ?? 0) >= 1 && (serverKeepAlive ?? 0) < 65535, `server keep alive ${serverKeepAlive}`);
    await client.ping(); // the connection works under the server's value [MQTT-3.1.2-21]
  });
});

describe('MQTT 5: message properties and subscription options', { concurrency: true }, () => {
  test('response topic and correlation data pass through for request/response', async (s) => {
    const u = unique('reqresp');
    const [requests, responses] = [u.topic('requests'), u.topic('responses')];
    const { client: responder, inbox: toResponder } = await s.mqtt(V5, { clientId: u.id('responder') });
    await responder.subscribeAsync(requests, { qos: 1 });
    const { client: requester, inbox: toRequester } = await s.mqtt(V5, { clientId: u.id('requester') });
    await requester.subscribeAsync(responses, { qos: 1 });
    const correlationData = Buffer.from([0, 1, 2, 0xff]);
    await requester.publishAsync(requests, 'question', { qos: 1, properties: { responseTopic: responses, correlationData } });
    const [request] = await toResponder.until(requests);
    assert.equal(request?.packet.properties?.responseTopic, responses);
    assert.deepEqual(request?.packet.properties?.correlationData, correlationData);
    await responder.publishAsync(request?.packet.properties?.responseTopic ?? '', 'answer', {
      qos: 1,
      properties: { correlationData: request?.packet.properties?.correlationData ?? Buffer.alloc(0) },
    });
    const [response] = await toRequester.until(responses);
    assert.equal(response?.payload, 'answer');
    assert.deepEqual(response?.packet.properties?.correlationData, correlationData);
  });

  test('user properties, content type and payload format pass through unchanged', async (s) => {
    const u = unique('userprops');
    const topic = u.topic('t');
    const { client: sub, inbox } = await s.mqtt(V5, { clientId: u.id('sub') });
    await sub.subscribeAsync(topic, { qos: 1 });
    const { client: pub } = await s.mqtt(V5, { clientId: u.id('pub') });
    const userProperties = { colour: 'blue', size: ['small', 'large'], 'ünïcode': 'värde' };
    await pub.publishAsync(topic, '{"a":1}', {
      qos: 1,
      properties: { userProperties, contentType: 'application/json', payloadFormatIndicator: true },
    });
    const [got] = await inbox.until(topic);
    assert.deepEqual({ ...got?.packet.properties?.userProperties }, userProperties, 'order and repeats kept [MQTT-3.3.2-18]');
    assert.equal(got?.packet.properties?.contentType, 'application/json');
    assert.equal(got?.packet.properties?.payloadFormatIndicator, true);
  });

  test('message expiry: the remaining interval is forwarded, and expired messages are not delivered', async (s) => {
    const u = unique('msgexpiry');
    const [live, queued, retained] = [u.topic('live'), u.topic('queued'), u.topic('retained')];
    s.clearRetainedLater(V5, [retained]);
    const { client: sub } = await s.raw(V5, { clientId: u.id('live') });
    await sub.subscribe([{ topic: live, qos: 1 }]);
    const id = u.id('away');
    s.endSessionLater(V5, id);
    const away = await s.raw(V5, { clientId: id, clean: true, properties: { sessionExpiryInterval: 60 } });
    await away.client.subscribe([{ topic: queued, qos: 1 }]);
    await away.client.disconnect();

    const { client: pub } = await s.raw(V5, { clientId: u.id('pub') });
    await pub.publish({ topic: live, qos: 1, payload: 'live', properties: { messageExpiryInterval: 60 } });
    const got = await sub.nextPublish(live);
    const remaining = got.properties?.messageExpiryInterval ?? 0;
    assert.ok(remaining > 0 && remaining <= 60, `remaining expiry ${remaining} [MQTT-3.3.2-6]`);
    await sub.ack(got);

    await pub.publish({ topic: queued, qos: 1, payload: 'expires', properties: { messageExpiryInterval: 1 } });
    await pub.publish({ topic: retained, qos: 1, payload: 'expires', retain: true, properties: { messageExpiryInterval: 1 } });
    await elapse(2.5); // the expiry under test
    await pub.publish({ topic: queued, qos: 1, payload: 'stays' });

    const back = await s.raw(V5, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    const first = await back.client.nextPublish(queued);
    assert.equal(payloadOf(first), 'stays', 'the expired message is not sent [MQTT-3.3.2-5]');
    await back.client.ack(first);
    await back.client.subscribe([{ topic: retained, qos: 1 }]);
    await back.client.ping();
    assert.deepEqual(back.client.publishes().map(payloadOf), [], 'an expired retained message is not sent either');
  });

  test('no local: a client does not receive its own publications on such a subscription', async (s) => {
    const u = unique('nolocal');
    const topic = u.topic('t');
    const { client } = await s.raw(V5, { clientId: u.id('self') });
    await client.subscribe([{ topic, qos: 1, nl: true }]);
    await client.publish({ topic, qos: 1, payload: 'own' });
    const { client: other } = await s.raw(V5, { clientId: u.id('other') });
    await other.publish({ topic, qos: 1, payload: 'other' });
    const got = await client.nextPublish(topic);
    assert.equal(payloadOf(got), 'other', '[MQTT-3.8.3-3]');
    await client.ack(got);
    await client.ping();
    assert.deepEqual(client.publishes(topic), []);
  });

  test('retain as published keeps the retain flag on live deliveries; without it the flag is cleared', async (s) => {
    const u = unique('rap');
    const topic = u.topic('t');
    s.clearRetainedLater(V5, [topic]);
    const { client: keeps } = await s.raw(V5, { clientId: u.id('keeps') });
    await keeps.subscribe([{ topic, qos: 1, rap: true }]);
    const { client: clears } = await s.raw(V5, { clientId: u.id('clears') });
    await clears.subscribe([{ topic, qos: 1, rap: false }]);
    const { client: pub } = await s.raw(V5, { clientId: u.id('pub') });
    await pub.publish({ topic, qos: 1, payload: 'r', retain: true });
    const kept = await keeps.nextPublish(topic);
    const cleared = await clears.nextPublish(topic);
    assert.equal(kept.retain, true, '[MQTT-3.3.1-13]');
    assert.equal(cleared.retain, false, '[MQTT-3.3.1-12]');
    await keeps.ack(kept);
    await clears.ack(cleared);
  });

  test('retain handling 0 sends retained messages on every subscribe, 1 only on a new subscription, 2 never', async (s) => {
    const u = unique('rh');
    const topic = u.topic('t');
    s.clearRetainedLater(V5, [topic]);
    const { client: pub } = await s.raw(V5, { clientId: u.id('pub') });
    await pub.publish({ topic, qos: 1, payload: 'kept', retain: true });

    /** Subscribes with retain handling `rh`; checks whether the retained message is sent. */
    const subscribeExpecting = async (client: PacketClient, rh: number, sent: boolean, why: string): Promise<void> => {
      await client.subscribe([{ topic, qos: 1, rh }]);
      if (sent) await client.ack(await client.nextPublish(topic));
      await client.ping();
      assert.deepEqual(client.publishes(topic).map(payloadOf), [], why);
    };
    const { client: c0 } = await s.raw(V5, { clientId: u.id('rh0') });
    await subscribeExpecting(c0, 0, true, 'rh 0, new subscription');
    await subscribeExpecting(c0, 0, true, 'rh 0, existing subscription [MQTT-3.3.1-9]');
    const { client: c1 } = await s.raw(V5, { clientId: u.id('rh1') });
    await subscribeExpecting(c1, 1, true, 'rh 1, new subscription');
    await subscribeExpecting(c1, 1, false, 'rh 1, existing subscription [MQTT-3.3.1-10]');
    const { client: c2 } = await s.raw(V5, { clientId: u.id('rh2') });
    await subscribeExpecting(c2, 2, false, 'rh 2 [MQTT-3.3.1-11]');
  });

  test('subscription identifiers come back on matching deliveries, or are refused where unsupported', async (s) => {
    const u = unique('subid');
    const topic = u.topic('a/b');
    const { client: sub, connack } = await s.raw(V5, { clientId: u.id('sub') });
    if (connack.properties?.subscriptionIdentifiersAvailable === false) {
      sub.send({ cmd: 'subscribe', messageId: sub.packetId(), subscriptions: [{ topic, qos: 1 }], properties: { subscriptionIdentifier: 7 } });
      assert.equal(await sub.closedByServer(), 0xa1, 'subscription identifiers not supported (0xA1)');
      return;
    }
    await sub.subscribe([{ topic: u.topic('a/+'), qos: 1 }], { subscriptionIdentifier: 7 });
    await sub.subscribe([{ topic: u.topic('z'), qos: 1 }], { subscriptionIdentifier: 9 });
    const { client: pub } = await s.raw(V5, { clientId: u.id('pub') });
    await pub.publish({ topic, qos: 1, payload: 'x' });
    const got = await sub.nextPublish(topic);
    const ids = [got.properties?.subscriptionIdentifier].flat();
    assert.deepEqual(ids, [7], 'the identifier of the matching subscription [MQTT-3.3.4-3]');
    await sub.ack(got);
  });

  test('shared subscriptions split the messages between the group\'s members, each message once', async (s) => {
    const u = unique('shared');
    const topic = u.topic('t');
    const filter = `$share/${u.id('group')}/${topic}`;
    const members: PacketClient[] = [];
    for (const name of ['a', 'b']) {
      const { client, connack } = await s.raw(V5, { clientId: u.id(name) });
      assert.notEqual((connack as IConnackPacket).properties?.sharedSubscriptionAvailable, false, 'shared subscriptions available');
      const suback = await client.subscribe([{ topic: filter, qos: 1 }]);
      assert.deepEqual(suback.granted, [1]);
      members.push(client);
    }
    const { client: plain } = await s.raw(V5, { clientId: u.id('plain') });
    await plain.subscribe([{ topic, qos: 1 }]);
    const { client: pub } = await s.raw(V5, { clientId: u.id('pub') });
    const sent = Array.from({ length: 10 }, (_, i) => `m${i}`);
    for (const payload of sent) await pub.publish({ topic, qos: 1, payload });

    for (let i = 0; i < sent.length; i++) await plain.ack(await plain.nextPublish(topic));
    const groupTotal = (): number => members.reduce((n, m) => n + m.publishes(topic).length, 0);
    while (groupTotal() < sent.length) await Promise.race(members.map((m) => m.changed()));
    for (const m of members) await m.ping();
    const perMember = members.map((m) => m.publishes(topic).map(payloadOf));
    assert.deepEqual(perMember.flat().sort(), [...sent].sort(), 'each message to exactly one member of the group (§4.8.2)');
    assert.ok(perMember.every((got) => got.length > 0), `both members get a share: ${perMember.map((g) => g.length).join(' + ')}`);
    for (const m of members) for (const p of m.publishes(topic)) await m.ack(p);
  });
});
