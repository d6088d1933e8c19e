/**
 * The broker over real TLS (harness in broker-harness.test.ts): MQTT 3.1.1 devices and backends;
 * the bounds and timers are in broker-limits.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import type { IConnackPacket, IPublishPacket, ISubackPacket } from 'mqtt-packet';
import { generateAdminToken } from '../identity/admin-token.js';
import { generateApiKey } from '../identity/api-key.js';
import { signDeviceJwt } from '../identity/device-jwt.js';
import { RawClient } from '../../test/support/raw-client.js';
import {
  BACKEND_KEY,
  BACKEND_USER,
  PROJECT,
  REGISTRY,
  addDevice,
  closed,
  connectBackend,
  connectDevice,
  eventually,
  inbox,
  keyPair,
  lastError,
  mqttConnect,
  pki,
  rawDevice,
  refusedWith,
  sleep,
  startBroker,
  type Harness,
} from './broker-harness.test.js';

const utf8 = (text: string): Buffer => {
  const bytes = Buffer.from(text);
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
};

/**
 * A CONNECT with a password and no user name, which MQTT 3.1.1 forbids but device libraries send:
 * mqtt-packet will not encode it, so the bytes are laid out by hand (cleanSession 0).
 */
function passwordOnlyConnect(clientId: string, password: string): Buffer {
  const body = Buffer.concat([utf8('MQTT'), Buffer.from([4, 0x40, 0, 60]), utf8(clientId), utf8(password)]);
  const length: number[] = [];
  let n = body.length;
  do {
    length.push((n % 128) | (n >= 128 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return Buffer.concat([Buffer.from([0x10, ...length]), body]);
}


// ---- tests -------------------------------------------------------------------------------------

describe('MQTT broker', () => {
  let h: Harness;
  const clients: MqttClient[] = [];
  const raws: RawClient[] = [];
  const track = <C extends MqttClient | RawClient>(c: C): C => {
    if (c instanceof RawClient) raws.push(c);
    else clients.push(c);
    return c;
  };
  before(async () => {
    h = await startBroker({ configRetryMs: 100 });
  });
  after(async () => {
    for (const c of clients) c.end(true);
    for (const r of raws) r.end();
    await h.close();
  });

  describe('CONNECT', () => {
    test('ES256 and RS256 devices connect with their JWT as password; the user name is ignored', async () => {
      const es = await addDevice(h, 'conn-es256');
      const rs = await addDevice(h, 'conn-rs256', { type: 'rs256' });
      const a = track(await connectDevice(h, es, { username: 'whatever' }));
      const b = track(await connectDevice(h, rs));
      assert.equal(a.connected && b.connected, true);
      // Some clients send a password without a user name (and cleanSession 0).
      const raw = track(await RawClient.open(h.port, pki.caCertPem));
      raw.send(passwordOnlyConnect(es.clientId, await es.token()));
      const connack = (await raw.next('connack')) as IConnackPacket;
      assert.equal(connack.returnCode, 0);
      assert.equal(connack.sessionPresent, false, 'no session is ever kept, even for cleanSession 0');
    });

    test('a device may name itself by its numeric id', async () => {
      const d = await addDevice(h, 'conn-numeric');
      const { numId } = await h.service.getDevice(d.name);
      const client = track(await mqttConnect(h.port, { clientId: d.clientId.replace(/conn-numeric$/, numId), username: 'u', password: await d.token() }));
      await client.publishAsync(`/devices/${d.id}/events`, 'x', { qos: 1 });
    });

    test('a bad token gets CONNACK 5 and nothing else', async () => {
      const d = await addDevice(h, 'conn-bad');
      const other = keyPair();
      const wrongKey = await signDeviceJwt(other.privatePem, { audience: PROJECT });
      const wrongAudience = await signDeviceJwt(d.privatePem, { audience: 'other-project' });
      for (const password of [wrongKey, wrongAudience, 'not-a-jwt', undefined]) {
        const raw = track(await RawClient.open(h.port, pki.caCertPem));
        const connack = await raw.connect(d.clientId, password);
        assert.equal(connack.returnCode, 5, String(password));
        await raw.closedWithin(2000);
        assert.deepEqual([...Buffer.concat(raw.bytes)], [0x20, 0x02, 0x00, 0x05], 'only the CONNACK');
      }
      await assert.rejects(mqttConnect(h.port, { clientId: d.clientId, username: 'u', password: wrongKey }), refusedWith(5));
      const unknown = await signDeviceJwt(d.privatePem, { audience: PROJECT });
      await assert.rejects(mqttConnect(h.port, { clientId: d.clientId.replace('conn-bad', 'nobody'), username: 'u', password: unknown }), refusedWith(5));
    });

    test('a service account login does not turn a device client id into a backend', async () => {
      const d = await addDevice(h, 'conn-admin');
      await assert.rejects(mqttConnect(h.port, { clientId: d.clientId, username: BACKEND_USER, password: BACKEND_KEY }), refusedWith(5));
    });

    test("a backend needs a service account's user name and one of its API keys; anyone else is refused", async () => {
      track(await connectBackend(h));
      track(await mqttConnect(h.port, { clientId: '', username: BACKEND_USER, password: BACKEND_KEY }));
      await assert.rejects(mqttConnect(h.port, { clientId: 'b', username: BACKEND_USER, password: generateApiKey().key }), refusedWith(5));
      await assert.rejects(mqttConnect(h.port, { clientId: 'b', username: BACKEND_USER }), refusedWith(5));
      await assert.rejects(mqttConnect(h.port, { clientId: 'b', username: 'acme/root', password: BACKEND_KEY }), refusedWith(5));
      // The admin-token login of the foundation is gone.
      await assert.rejects(mqttConnect(h.port, { clientId: 'b', username: 'admin', password: generateAdminToken() }), refusedWith(5));
      await assert.rejects(mqttConnect(h.port, { clientId: 'anonymous' }), refusedWith(5));
    });

    test('MQTT 3.1 gets CONNACK 1 and is closed', async () => {
      await assert.rejects(mqttConnect(h.port, { clientId: 'x', protocolId: 'MQIsdp', protocolVersion: 3 }), refusedWith(1));
    });

    test('an unknown protocol level gets CONNACK 1', async () => {
      const raw = track(await RawClient.open(h.port, pki.caCertPem));
      raw.send(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x09, 0x02, 0x00, 0x3c, 0x00, 0x00]));
      await raw.closedWithin(2000);
      assert.deepEqual([...Buffer.concat(raw.bytes)], [0x20, 0x02, 0x00, 0x01]);
    });

    test('a second CONNECT closes the connection', async () => {
      const d = await addDevice(h, 'conn-twice');
      const raw = track(await rawDevice(h, d));
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: d.clientId, keepalive: 60, username: 'u', password: Buffer.from(await d.token()) });
      await raw.closedWithin(2000);
      assert.equal(raw.packets.length, 0, 'no second CONNACK');
    });

    test('a packet before CONNECT closes the connection', async () => {
      const raw = track(await RawClient.open(h.port, pki.caCertPem));
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'registries/#', qos: 0 }] });
      await raw.closedWithin(2000);
      assert.equal(raw.bytes.length, 0);
    });

    test('a will is accepted and discarded: nobody receives it', async () => {
      const d = await addDevice(h, 'conn-will');
      const backend = track(await connectBackend(h));
      await backend.subscribeAsync('registries/#', { qos: 1 });
      const got = inbox(backend);
      const client = await connectDevice(h, d, { will: { topic: `/devices/${d.id}/events`, payload: Buffer.from('bye'), qos: 1, retain: false } });
      client.stream.destroy();
      await sleep(200);
      assert.deepEqual(got, []);
    });

    test('a second connection of a device takes over: the first is closed', async () => {
      const d = await addDevice(h, 'conn-takeover');
      const first = track(await connectDevice(h, d));
      const firstClosed = closed(first);
      const second = track(await connectDevice(h, d));
      await firstClosed;
      assert.equal(second.connected, true);
      // The survivor is the device's connection: it still receives commands.
      await second.subscribeAsync(`/devices/${d.id}/commands/#`, { qos: 1 });
      const got = inbox(second);
      await h.service.sendCommandToDevice(d.name, Buffer.from('still me'));
      await eventually(() => assert.equal(got[0]?.payload.toString(), 'still me'));
    });
  });

  describe('device PUBLISH', () => {
    test('events with and without subfolders and state are acknowledged and reach backends under their registry', async () => {
      const d = await addDevice(h, 'pub-dev');
      const backend = track(await connectBackend(h));
      await backend.subscribeAsync(`registries/${REGISTRY}/devices/${d.id}/#`, { qos: 1 });
      const got = inbox(backend);
      const client = track(await connectDevice(h, d));

      await client.publishAsync(`/devices/${d.id}/events`, 'plain', { qos: 1 });
      await client.publishAsync(`/devices/${d.id}/events/alerts/high`, Buffer.from([0, 1, 255]), { qos: 1 });
      await client.publishAsync(`/devices/${d.id}/state`, '{"on":true}', { qos: 1, retain: true });
      await client.publishAsync(`/devices/${d.id}/events`, 'qos0', { qos: 0 });

      await eventually(() => assert.equal(got.length, 4));
      assert.deepEqual(
        got.map((m) => [m.topic, m.qos]),
        [
          [`registries/${REGISTRY}/devices/${d.id}/events`, 1],
          [`registries/${REGISTRY}/devices/${d.id}/events/alerts/high`, 1],
          [`registries/${REGISTRY}/devices/${d.id}/state`, 1],
          [`registries/${REGISTRY}/devices/${d.id}/events`, 0],
        ],
      );
      assert.deepEqual([...(got[1]?.payload ?? [])], [0, 1, 255]);

      const states = await h.service.listStates(d.name);
      assert.equal(states[0]?.binaryData.toString(), '{"on":true}', 'the PUBACK came after the store accepted it');
      await h.service.flush();
      const device = await h.service.getDevice(d.name);
      assert.ok(device.lastEventTime);
    });

    test('a backend gets one copy per message at min(subscription QoS, publish QoS), whatever its overlapping filters', async () => {
      const d = await addDevice(h, 'pub-overlap');
      const backend = track(await connectBackend(h));
      const granted = await backend.subscribeAsync({
        'registries/#': { qos: 0 },
        [`registries/${REGISTRY}/devices/+/events`]: { qos: 1 },
        [`registries/+/devices/${d.id}/events/#`]: { qos: 0 },
      });
      assert.deepEqual(granted.map((g) => g.qos), [0, 1, 0]);
      const got = inbox(backend);
      const client = track(await connectDevice(h, d));
      await client.publishAsync(`/devices/${d.id}/events`, 'one', { qos: 1 });
      await client.publishAsync(`/devices/${d.id}/events`, 'two', { qos: 0 });
      await client.publishAsync(`/devices/${d.id}/state`, 'three', { qos: 1 });
      await eventually(() => assert.equal(got.length, 3));
      await sleep(100);
      assert.deepEqual(got.map((m) => [m.payload.toString(), m.qos]), [['one', 1], ['two', 0], ['three', 0]]);
    });

    test("publishing to another device's topic or any foreign topic closes the connection and records why", async () => {
      const d = await addDevice(h, 'pub-foreign');
      await addDevice(h, 'pub-victim');
      for (const topic of ['/devices/pub-victim/events', '/devices/pub-victim/state', `/devices/${d.id}/config`, 'registries/fleet/devices/pub-victim/events', 'projects/acme/topics/t']) {
        const client = track(await connectDevice(h, d));
        const gone = closed(client);
        client.publish(topic, 'x', { qos: 1 });
        await gone;
        const error = await lastError(h, d);
        assert.equal(error?.code, 7, topic);
        assert.match(error?.message ?? '', /^mqtt: /);
      }
    });

    test('QoS 2 closes the connection', async () => {
      const d = await addDevice(h, 'pub-qos2');
      const client = track(await connectDevice(h, d));
      const gone = closed(client);
      client.publish(`/devices/${d.id}/events`, 'x', { qos: 2 });
      await gone;
      assert.equal((await lastError(h, d))?.code, 3);
    });

    test('events over 256 KB and state over 64 KB close the connection', async () => {
      const d = await addDevice(h, 'pub-big');
      for (const [topic, size] of [[`/devices/${d.id}/events`, 256 * 1024 + 1], [`/devices/${d.id}/state`, 64 * 1024 + 1]] as const) {
        const client = track(await connectDevice(h, d));
        const gone = closed(client);
        client.publish(topic, Buffer.alloc(size), { qos: 1 });
        await gone;
        const error = await lastError(h, d);
        assert.equal(error?.code, 3);
        assert.match(error?.message ?? '', /exceeds the limit/);
      }
      // Exactly at the limits is fine.
      const client = track(await connectDevice(h, d));
      await client.publishAsync(`/devices/${d.id}/events`, Buffer.alloc(256 * 1024), { qos: 1 });
      await client.publishAsync(`/devices/${d.id}/state`, Buffer.alloc(64 * 1024), { qos: 1 });
    });

    test('a backend may not publish', async () => {
      const backend = track(await connectBackend(h));
      const gone = closed(backend);
      backend.publish('registries/fleet/devices/x/events', 'spoof', { qos: 0 });
      await gone;
    });
  });

  describe('SUBSCRIBE', () => {
    test("a device subscribing to anything but its config and commands/# is closed without a SUBACK", async () => {
      const d = await addDevice(h, 'sub-foreign');
      await addDevice(h, 'sub-victim');
      for (const filter of ['#', '/devices/+/config', '/devices/sub-victim/config', '/devices/sub-victim/commands/#', `/devices/${d.id}/#`, 'registries/#', '$SYS/#']) {
        const raw = track(await rawDevice(h, d));
        raw.send({
          cmd: 'subscribe',
          messageId: 7,
          subscriptions: [
            { topic: `/devices/${d.id}/config`, qos: 1 },
            { topic: filter, qos: 0 },
          ],
        });
        await raw.closedWithin(2000);
        assert.deepEqual(raw.packets, [], `${filter}: no SUBACK, no config`);
        assert.equal((await lastError(h, d))?.code, 7);
      }
    });

    test('a device is granted at most QoS 1; UNSUBSCRIBE is acknowledged', async () => {
      const d = await addDevice(h, 'sub-qos');
      const client = track(await connectDevice(h, d));
      const granted = await client.subscribeAsync({ [`/devices/${d.id}/commands/#`]: { qos: 2 }, [`/devices/${d.id}/config`]: { qos: 0 } });
      assert.deepEqual(granted.map((g) => g.qos), [1, 0]);
      await client.unsubscribeAsync(`/devices/${d.id}/commands/#`);
      await assert.rejects(h.service.sendCommandToDevice(d.name, Buffer.from('x')), /not subscribed to the commands topic/);
    });

    test('a backend may subscribe only to device traffic under registries/: other filters get 0x80', async () => {
      const backend = track(await RawClient.open(h.port, pki.caCertPem));
      assert.equal((await backend.connect('backend-filters', BACKEND_KEY, 60, BACKEND_USER)).returnCode, 0);
      backend.send({
        cmd: 'subscribe',
        messageId: 3,
        subscriptions: ['#', '$SYS/#', '/devices/+/config', '/devices/#', 'registries/fleet/devices/+/commands/#', 'registries/+/devices/+/events'].map(
          (topic) => ({ topic, qos: 2 as const }),
        ),
      });
      const suback = (await backend.next('suback')) as ISubackPacket;
      assert.deepEqual(suback.granted, [128, 128, 128, 128, 128, 1]);
      // The refused filters deliver nothing, the granted one does.
      const d = await addDevice(h, 'sub-backend-dev');
      const client = track(await connectDevice(h, d));
      await client.subscribeAsync(`/devices/${d.id}/config`, { qos: 0 });
      await h.service.sendCommandToDevice(d.name, Buffer.from('c')).catch(() => undefined);
      await client.publishAsync(`/devices/${d.id}/events`, 'e', { qos: 1 });
      const publish = (await backend.next('publish')) as IPublishPacket;
      assert.equal(publish.topic, `registries/${REGISTRY}/devices/${d.id}/events`);
      await sleep(100);
      assert.deepEqual(backend.packets, []);
    });
  });

  describe('config', () => {
    test('the latest config is sent on subscribe and re-sent with DUP at QoS 1 until the PUBACK, which records the ack', async () => {
      const d = await addDevice(h, 'cfg-retry', { config: 'v1' });
      await h.service.modifyCloudToDeviceConfig(d.name, 0, Buffer.from('v2'));
      const raw = track(await rawDevice(h, d));
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `/devices/${d.id}/config`, qos: 1 }] });
      assert.deepEqual(((await raw.next('suback')) as ISubackPacket).granted, [1]);
      const first = (await raw.next('publish')) as IPublishPacket;
      const again = (await raw.next('publish')) as IPublishPacket;
      assert.equal(first.topic, `/devices/${d.id}/config`);
      assert.equal(first.payload.toString(), 'v2');
      assert.equal(first.qos, 1);
      assert.equal(first.dup, false);
      assert.equal(again.dup, true);
      assert.equal(again.messageId, first.messageId);
      assert.equal(again.payload.toString(), 'v2');

      raw.send({ cmd: 'puback', messageId: first.messageId as number });
      const acked = await eventually(async () => {
        const [latest] = await h.service.listConfigVersions(d.name, 1);
        assert.ok(latest?.deviceAckTime, 'config not acknowledged yet');
        return latest;
      });
      assert.equal(acked?.version, 2);
      await sleep(50);
      raw.packets.length = 0;
      await sleep(300);
      assert.deepEqual(raw.packets, [], 'no more re-sends after the PUBACK');
      await h.service.flush();
      const device = await h.service.getDevice(d.name);
      assert.ok(device.lastConfigSendTime && device.lastConfigAckTime);
    });

    test('a newer version replaces the unacknowledged one; a late PUBACK of the old one acknowledges nothing', async () => {
      const d = await addDevice(h, 'cfg-replace', { config: 'old' });
      const raw = track(await rawDevice(h, d));
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `/devices/${d.id}/config`, qos: 1 }] });
      const old = (await raw.next('publish')) as IPublishPacket;
      assert.equal(old.payload.toString(), 'old');
      await h.service.modifyCloudToDeviceConfig(d.name, 1, Buffer.from('new'));
      let fresh: IPublishPacket;
      do fresh = (await raw.next('publish')) as IPublishPacket;
      while (fresh.payload.toString() === 'old');
      assert.equal(fresh.payload.toString(), 'new');
      assert.equal(fresh.dup, false);
      assert.notEqual(fresh.messageId, old.messageId);
      raw.packets.length = 0;
      await sleep(250);
      const resent = raw.packets.filter((p): p is IPublishPacket => p.cmd === 'publish');
      assert.ok(resent.length >= 1);
      assert.ok(resent.every((p) => p.payload.toString() === 'new' && p.dup && p.messageId === fresh.messageId));

      raw.send({ cmd: 'puback', messageId: old.messageId as number });
      await sleep(100);
      assert.equal((await h.service.listConfigVersions(d.name))[1]?.deviceAckTime, undefined);
      raw.send({ cmd: 'puback', messageId: fresh.messageId as number });
      await eventually(async () => assert.ok((await h.service.listConfigVersions(d.name, 1))[0]?.deviceAckTime, 'not acknowledged yet'));
    });

    test('at QoS 0 each version is sent once and never re-sent', async () => {
      const d = await addDevice(h, 'cfg-qos0', { config: 'a' });
      const client = track(await connectDevice(h, d));
      const got = inbox(client);
      await client.subscribeAsync(`/devices/${d.id}/config`, { qos: 0 });
      await eventually(() => assert.equal(got.length, 1));
      await h.service.modifyCloudToDeviceConfig(d.name, 0, Buffer.from('b'));
      await eventually(() => assert.equal(got.length, 2));
      await sleep(300);
      assert.deepEqual(got.map((m) => [m.payload.toString(), m.qos]), [['a', 0], ['b', 0]]);
    });

    test('an empty config is delivered as an empty payload', async () => {
      const d = await addDevice(h, 'cfg-empty');
      const client = track(await connectDevice(h, d));
      const got = inbox(client);
      await client.subscribeAsync(`/devices/${d.id}/config`, { qos: 1 });
      await eventually(() => assert.equal(got[0]?.payload.length, 0));
    });
  });

  describe('commands', () => {
    test('reach only a connected device subscribed to commands/#, on commands[/subfolder] at its QoS', async () => {
      const d = await addDevice(h, 'cmd-dev');
      await assert.rejects(h.service.sendCommandToDevice(d.name, Buffer.from('x')), /is not connected/);
      const client = track(await connectDevice(h, d));
      await assert.rejects(h.service.sendCommandToDevice(d.name, Buffer.from('x')), /not subscribed to the commands topic/);
      await client.subscribeAsync(`/devices/${d.id}/commands/#`, { qos: 1 });
      const got = inbox(client);
      await h.service.sendCommandToDevice(d.name, Buffer.from('reboot'));
      await h.service.sendCommandToDevice(d.name, Buffer.from('off'), 'power/now');
      await eventually(() => assert.equal(got.length, 2));
      assert.deepEqual(got.map((m) => [m.topic, m.payload.toString(), m.qos]), [
        [`/devices/${d.id}/commands`, 'reboot', 1],
        [`/devices/${d.id}/commands/power/now`, 'off', 1],
      ]);
      client.end(true);
      await eventually(() => assert.rejects(h.service.sendCommandToDevice(d.name, Buffer.from('x')), /is not connected/));
    });
  });

  describe('revocation', () => {
    test('blocking a device closes its connection at once, and it cannot come back', async () => {
      const d = await addDevice(h, 'rev-block');
      const client = track(await connectDevice(h, d));
      const gone = closed(client);
      await h.service.patchDevice(d.name, { blocked: true }, ['blocked']);
      await gone;
      await assert.rejects(connectDevice(h, d), refusedWith(5));
    });

    test('replacing the credential a connection used closes it; keeping it does not', async () => {
      const d = await addDevice(h, 'rev-cred');
      const extra = keyPair();
      const current = await h.service.getDevice(d.name);
      const client = track(await connectDevice(h, d));
      // Adding a second credential keeps the one in use: the connection stays.
      await h.service.patchDevice(d.name, { credentials: [...current.credentials, { publicKey: { format: 'ES256_PEM', key: extra.publicPem } }] }, ['credentials']);
      await sleep(100);
      assert.equal(client.connected, true);
      const gone = closed(client);
      await h.service.patchDevice(d.name, { credentials: [{ publicKey: { format: 'ES256_PEM', key: extra.publicPem } }] }, ['credentials']);
      await gone;
    });

    test('deleting a device closes its connection', async () => {
      const d = await addDevice(h, 'rev-delete');
      const client = track(await connectDevice(h, d));
      const gone = closed(client);
      await h.service.deleteDevice(d.name);
      await gone;
    });
  });
});
