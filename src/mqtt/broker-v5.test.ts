/**
 * MQTT 5 over real TLS: CONNACK reason codes and properties, server DISCONNECT reasons, SUBACK and
 * UNSUBACK reason codes, maximum packet size, attributes on backend deliveries, topic aliases and
 * re-authentication. Clients are mqtt.js with protocolVersion 5 and a raw MQTT 5 socket.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { IClientOptions, MqttClient } from 'mqtt';
import mqttPacket, {
  type IConnackPacket,
  type IDisconnectPacket,
  type IPublishPacket,
  type ISubackPacket,
  type IUnsubackPacket,
  type Packet,
} from 'mqtt-packet';
import { signDeviceJwt } from '../identity/device-jwt.js';
import {
  BACKEND_KEY,
  BACKEND_USER,
  LOCATION,
  PROJECT,
  REGISTRY,
  addDevice,
  closed,
  eventually,
  keyPair,
  mqttConnect,
  pki,
  refusedWith,
  sleep,
  startBroker,
  type Harness,
  type TestDevice,
} from './broker-harness.test.js';

const V5 = { protocolVersion: 5 } as const;

/** A TLS client speaking MQTT 5 packet by packet. */
class RawV5 {
  readonly packets: Packet[] = [];
  readonly closed: Promise<void>;
  readonly #parser = mqttPacket.parser(V5);

  private constructor(readonly socket: TLSSocket) {
    this.#parser.on('packet', (p: Packet) => this.packets.push(p));
    this.#parser.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.#parser.parse(chunk));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static open(port: number): Promise<RawV5> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: [pki.caCertPem] }, () =>
        resolve(new RawV5(socket)),
      );
      socket.once('error', reject);
    });
  }

  send(packet: Packet | Buffer): void {
    this.socket.write(Buffer.isBuffer(packet) ? packet : mqttPacket.generate(packet, V5));
  }

  async next(cmd: Packet['cmd'], timeoutMs = 5000): Promise<Packet> {
    return eventually(() => {
      const i = this.packets.findIndex((p) => p.cmd === cmd);
      assert.ok(i >= 0, `no ${cmd}`);
      return this.packets.splice(i, 1)[0] as Packet;
    }, timeoutMs);
  }

  end(): void {
    this.socket.destroy();
  }
}

function connectV5(port: number, options: IClientOptions): Promise<{ client: MqttClient; connack: IConnackPacket }> {
  return new Promise((resolve, reject) => {
    mqttConnect(port, { protocolVersion: 5, ...options }).then(
      (client) => resolve({ client, connack: lastConnack.get(client) as IConnackPacket }),
      reject,
    );
  });
}

// mqtt.js keeps the CONNACK on the client once connected.
const lastConnack = {
  get: (client: MqttClient): IConnackPacket | undefined => (client as unknown as { connackPacket?: IConnackPacket }).connackPacket,
};

const deviceOptions = async (d: TestDevice, extra: IClientOptions = {}): Promise<IClientOptions> => ({
  clientId: d.clientId,
  username: 'unused',
  password: await d.token(),
  ...extra,
});

const backendOptions = (extra: IClientOptions = {}): IClientOptions => ({
  clientId: `backend-${randomBytes(4).toString('hex')}`,
  username: BACKEND_USER,
  password: BACKEND_KEY,
  ...extra,
});

/** Resolves with the reason code of the DISCONNECT the server sends the client. */
const disconnectReason = (client: MqttClient, timeoutMs = 5000): Promise<number | undefined> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no DISCONNECT')), timeoutMs);
    client.once('disconnect', (packet: IDisconnectPacket) => {
      clearTimeout(timer);
      resolve(packet.reasonCode);
    });
  });

async function rawV5Device(h: Harness, d: TestDevice, properties: Record<string, unknown> = {}): Promise<RawV5> {
  const raw = await RawV5.open(h.port);
  raw.send({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 5,
    clean: true,
    clientId: d.clientId,
    keepalive: 60,
    username: 'u',
    password: Buffer.from(await d.token()),
    properties,
  });
  const connack = (await raw.next('connack')) as IConnackPacket;
  assert.equal(connack.reasonCode, 0);
  return raw;
}

interface Received {
  readonly topic: string;
  readonly payload: string;
  readonly packet: IPublishPacket;
}

function inboxV5(client: MqttClient): Received[] {
  const messages: Received[] = [];
  client.on('message', (topic, payload, packet) => messages.push({ topic, payload: payload.toString(), packet }));
  return messages;
}

describe('MQTT 5', () => {
  let h: Harness;
  const clients: MqttClient[] = [];
  const raws: RawV5[] = [];
  const track = <C extends MqttClient | RawV5>(c: C): C => {
    if (c instanceof RawV5) raws.push(c);
    else clients.push(c);
    return c;
  };
  before(async () => {
    h = await startBroker({ topicAliasMaximum: 4, receiveMaximum: 10 });
  });
  after(async () => {
    for (const c of clients) c.end(true);
    for (const r of raws) r.end();
    await h.close();
  });

  describe('CONNECT', () => {
    test('a device and a backend connect on the same listener; CONNACK announces what the server supports', async () => {
      const d = await addDevice(h, 'v5-conn');
      const { client, connack } = await connectV5(h.port, await deviceOptions(d, { keepalive: 0 }));
      track(client);
      assert.equal(connack.reasonCode, 0);
      assert.equal(connack.sessionPresent, false);
      const p = connack.properties ?? {};
      assert.equal(p.maximumPacketSize, 256 * 1024 + 4 * 1024);
      assert.equal(p.receiveMaximum, 10);
      assert.equal(p.topicAliasMaximum, 4);
      assert.equal(p.retainAvailable, true, 'retained custom topics, where the device policy grants retain');
      assert.equal(p.sharedSubscriptionAvailable, false);
      assert.equal(p.wildcardSubscriptionAvailable, true);
      assert.equal(p.serverKeepAlive, 20 * 60, 'no keep-alive is overridden by the idle limit');
      await client.publishAsync(`/devices/${d.id}/events`, 'x', { qos: 1 });

      const backend = await connectV5(h.port, backendOptions({ keepalive: 30 }));
      track(backend.client);
      assert.equal(backend.connack.properties?.wildcardSubscriptionAvailable, true);
      assert.equal(backend.connack.properties?.serverKeepAlive, undefined, 'a keep-alive kept as asked is not repeated');
    });

    test('device credential failures are all 0x86; a client with no identity we serve is 0x87', async () => {
      const d = await addDevice(h, 'v5-refused');
      const wrongKey = await signDeviceJwt(keyPair().privatePem, { audience: PROJECT });
      const wrongAudience = await signDeviceJwt(d.privatePem, { audience: 'other' });
      for (const password of [wrongKey, wrongAudience, 'not-a-jwt']) {
        await assert.rejects(connectV5(h.port, { clientId: d.clientId, username: 'u', password }), refusedWith(0x86));
      }
      await assert.rejects(connectV5(h.port, { clientId: d.clientId, username: 'u' }), refusedWith(0x86));
      const nobody = d.clientId.replace('v5-refused', 'nobody');
      await assert.rejects(connectV5(h.port, { clientId: nobody, username: 'u', password: wrongKey }), refusedWith(0x86));
      await h.service.patchDevice(d.name, { blocked: true }, ['blocked']);
      await assert.rejects(connectV5(h.port, await deviceOptions(d)), refusedWith(0x86));

      await assert.rejects(connectV5(h.port, backendOptions({ password: 'wrong' })), refusedWith(0x86));
      await assert.rejects(connectV5(h.port, { clientId: 'anonymous' }), refusedWith(0x87));
      await assert.rejects(connectV5(h.port, { clientId: d.clientId, username: BACKEND_USER, password: BACKEND_KEY }), refusedWith(0x86));
    });

    test('an authentication method other than keyway-jwt gets 0x8C; keyway-jwt takes the JWT as authentication data', async () => {
      const d = await addDevice(h, 'v5-method');
      await assert.rejects(
        connectV5(h.port, await deviceOptions(d, { properties: { authenticationMethod: 'SCRAM-SHA-1' } })),
        refusedWith(0x8c),
      );
      const raw = track(await RawV5.open(h.port));
      raw.send({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 5,
        clean: true,
        clientId: d.clientId,
        keepalive: 60,
        properties: { authenticationMethod: 'keyway-jwt', authenticationData: Buffer.from(await d.token()) },
      });
      const connack = (await raw.next('connack')) as IConnackPacket;
      assert.equal(connack.reasonCode, 0);
      assert.equal(connack.properties?.authenticationMethod, 'keyway-jwt');
    });

    test('a CONNECT over the bound gets CONNACK 0x95', async () => {
      const raw = track(await RawV5.open(h.port));
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: 'x'.repeat(20_000), keepalive: 60 });
      const connack = (await raw.next('connack')) as IConnackPacket;
      assert.equal(connack.reasonCode, 0x95);
      await raw.closed;
    });
  });

  describe('server DISCONNECT', () => {
    test('a second connection takes over with 0x8E; blocking the device disconnects with 0x98', async () => {
      const d = await addDevice(h, 'v5-takeover');
      const first = track((await connectV5(h.port, await deviceOptions(d))).client);
      const takenOver = disconnectReason(first);
      const second = track((await connectV5(h.port, await deviceOptions(d))).client);
      assert.equal(await takenOver, 0x8e);
      const blocked = disconnectReason(second);
      await h.service.patchDevice(d.name, { blocked: true }, ['blocked']);
      assert.equal(await blocked, 0x98);
      await closed(second);
    });

    test('a forbidden topic is 0x87, an invalid one 0x90, a QoS 2 publish 0x9B', async () => {
      const d = await addDevice(h, 'v5-rules');
      const cases: Array<[IPublishPacket, number]> = [
        [{ cmd: 'publish', topic: '/devices/other/events', payload: Buffer.from('x'), qos: 0, dup: false, retain: false }, 0x87],
        [{ cmd: 'publish', topic: `/devices/${d.id}/events/`, payload: Buffer.from('x'), qos: 0, dup: false, retain: false }, 0x90],
        [{ cmd: 'publish', topic: `/devices/${d.id}/events`, payload: Buffer.from('x'), qos: 2, messageId: 1, dup: false, retain: false }, 0x9b],
      ];
      for (const [packet, code] of cases) {
        const raw = track(await rawV5Device(h, d));
        raw.send(packet);
        const disconnect = (await raw.next('disconnect').catch(() => ({ reasonCode: -1 }))) as IDisconnectPacket;
        assert.equal(disconnect.reasonCode, code, `${packet.topic} QoS ${packet.qos}`);
        await raw.closed;
      }
    });

    test('a packet over the maximum packet size disconnects with 0x95 from its header', async () => {
      const d = await addDevice(h, 'v5-oversize');
      const raw = track(await rawV5Device(h, d));
      const big = mqttPacket.generate(
        { cmd: 'publish', topic: `/devices/${d.id}/events`, payload: Buffer.alloc(300 * 1024), qos: 0, dup: false, retain: false },
        V5,
      );
      raw.send(big.subarray(0, 16));
      const disconnect = (await raw.next('disconnect')) as IDisconnectPacket;
      assert.equal(disconnect.reasonCode, 0x95);
      await raw.closed;
    });

    test('token expiry disconnects with 0x87', async () => {
      const short = await startBroker({ jwtSkewSeconds: 0 });
      try {
        const d = await addDevice(short, 'v5-expiry');
        const { client } = await connectV5(short.port, await deviceOptions(d, { password: await d.token(2) }));
        try {
          assert.equal(await disconnectReason(client, 5000), 0x87);
        } finally {
          client.end(true);
        }
      } finally {
        await short.close();
      }
    });
  });

  describe('SUBSCRIBE and UNSUBSCRIBE', () => {
    test('a backend learns why a filter is refused; UNSUBACK says whether a subscription existed', async () => {
      const raw = track(await RawV5.open(h.port));
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: 'b-v5', keepalive: 60, username: BACKEND_USER, password: Buffer.from(BACKEND_KEY) });
      assert.equal(((await raw.next('connack')) as IConnackPacket).reasonCode, 0);
      const filters = [`registries/${REGISTRY}/devices/+/events`, 'secret/#', 'registries/#/x'];
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: filters.map((topic) => ({ topic, qos: 1 as const })) });
      assert.deepEqual(((await raw.next('suback')) as ISubackPacket).granted, [1, 0x87, 0x8f]);
      raw.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: [filters[0] as string, 'never/subscribed'] });
      assert.deepEqual(((await raw.next('unsuback')) as IUnsubackPacket).granted, [0x00, 0x11]);
    });
  });

  describe('backend deliveries', () => {
    test('carry the device attributes as user properties, subFolder only with a subfolder; the device cannot forge them', async () => {
      const d = await addDevice(h, 'v5-attrs');
      const { numId } = await h.service.getDevice(d.name);
      const backend = track((await connectV5(h.port, backendOptions())).client);
      const v311 = track(await mqttConnect(h.port, backendOptions()));
      const messages = inboxV5(backend);
      const plain = inboxV5(v311);
      await backend.subscribeAsync(`registries/${REGISTRY}/devices/${d.id}/#`, { qos: 1 });
      await v311.subscribeAsync(`registries/${REGISTRY}/devices/${d.id}/#`, { qos: 1 });

      const device = track((await connectV5(h.port, await deviceOptions(d))).client);
      await device.publishAsync(`/devices/${d.id}/events`, 'e0', { qos: 1 });
      await device.publishAsync(`/devices/${d.id}/events/a/b`, 'e1', {
        qos: 0,
        properties: { userProperties: { deviceId: 'forged', unit: 'C' }, messageExpiryInterval: 60, contentType: 'text/plain' },
      });
      await device.publishAsync(`/devices/${d.id}/state`, 's', { qos: 1 });
      await eventually(() => assert.equal(messages.length, 3));
      const attributes = { deviceId: d.id, deviceNumId: numId, deviceRegistryId: REGISTRY, deviceRegistryLocation: LOCATION, projectId: PROJECT };
      const [e0, e1, s] = messages as [Received, Received, Received];
      assert.deepEqual({ ...e0.packet.properties?.userProperties }, attributes);
      assert.deepEqual({ ...e1.packet.properties?.userProperties }, { ...attributes, subFolder: 'a/b', unit: 'C' });
      assert.equal(e1.packet.properties?.messageExpiryInterval, 60);
      assert.equal(e1.packet.properties?.contentType, 'text/plain');
      assert.deepEqual({ ...s.packet.properties?.userProperties }, attributes);
      assert.equal(s.topic, `registries/${REGISTRY}/devices/${d.id}/state`);
      // MQTT 3.1.1 backends get the same messages, without properties.
      await eventually(() => assert.deepEqual(plain.map((m) => m.payload), ['e0', 'e1', 's']));
    });

    test("nothing larger than a backend's maximum packet size is sent to it; a dropped QoS 1 message frees its slot", async () => {
      const d = await addDevice(h, 'v5-maxsize');
      const backend = track(
        (await connectV5(h.port, backendOptions({ properties: { maximumPacketSize: 512, receiveMaximum: 1 } }))).client,
      );
      const messages = inboxV5(backend);
      await backend.subscribeAsync(`registries/${REGISTRY}/devices/${d.id}/events`, { qos: 1 });
      const device = track((await connectV5(h.port, await deviceOptions(d))).client);
      await device.publishAsync(`/devices/${d.id}/events`, 'x'.repeat(2000), { qos: 1 });
      await device.publishAsync(`/devices/${d.id}/events`, 'y'.repeat(2000), { qos: 0 });
      await device.publishAsync(`/devices/${d.id}/events`, 'small', { qos: 1 });
      await eventually(() => assert.deepEqual(messages.map((m) => m.payload), ['small']));
    });
  });

  describe('receive maximum', () => {
    test("QoS 1 messages in flight to a device stay within its receive maximum, one slot kept for its config", async () => {
      const d = await addDevice(h, 'v5-window', { config: 'c1' });
      const raw = track(await rawV5Device(h, d, { receiveMaximum: 2 }));
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `/devices/${d.id}/commands/#`, qos: 1 }] });
      await raw.next('suback');
      for (const text of ['a', 'b', 'c']) await h.service.sendCommandToDevice(d.name, Buffer.from(text));
      raw.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: `/devices/${d.id}/config`, qos: 1 }] });
      await raw.next('suback');
      await sleep(200);
      const sent = raw.packets.filter((p): p is IPublishPacket => p.cmd === 'publish').map((p) => p.payload.toString());
      assert.deepEqual(sent, ['a', 'c1'], 'one command and the config, nothing more until acknowledged');
      const first = raw.packets.find((p): p is IPublishPacket => p.cmd === 'publish' && p.payload.toString() === 'a');
      raw.packets.length = 0;
      raw.send({ cmd: 'puback', messageId: first?.messageId as number });
      const next = (await raw.next('publish')) as IPublishPacket;
      assert.equal(next.payload.toString(), 'b');
    });
  });

  describe('topic aliases', () => {
    test('a device may publish by alias; an alias beyond the maximum disconnects with 0x94', async () => {
      const d = await addDevice(h, 'v5-alias');
      const backend = track((await connectV5(h.port, backendOptions())).client);
      const messages = inboxV5(backend);
      await backend.subscribeAsync(`registries/${REGISTRY}/devices/${d.id}/events/#`, { qos: 0 });
      const raw = track(await rawV5Device(h, d));
      const publish = (topic: string, alias: number, payload: string): void =>
        raw.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, dup: false, retain: false, properties: { topicAlias: alias } });
      publish(`/devices/${d.id}/events/t`, 1, 'one');
      publish('', 1, 'two');
      await eventually(() =>
        assert.deepEqual(
          messages.map((m) => [m.topic, m.payload]),
          [
            [`registries/${REGISTRY}/devices/${d.id}/events/t`, 'one'],
            [`registries/${REGISTRY}/devices/${d.id}/events/t`, 'two'],
          ],
        ),
      );
      publish(`/devices/${d.id}/events`, 5, 'three');
      const disconnect = (await raw.next('disconnect')) as IDisconnectPacket;
      assert.equal(disconnect.reasonCode, 0x94);
    });
  });

  describe('re-authentication', () => {
    const connectWithMethod = async (d: TestDevice, lifetimeSeconds: number): Promise<RawV5> => {
      const raw = await RawV5.open(h.port);
      raw.send({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 5,
        clean: true,
        clientId: d.clientId,
        keepalive: 60,
        username: 'u',
        password: Buffer.from(await d.token(lifetimeSeconds)),
        properties: { authenticationMethod: 'keyway-jwt' },
      });
      assert.equal(((await raw.next('connack')) as IConnackPacket).reasonCode, 0);
      return raw;
    };
    const reauth = (raw: RawV5, token: string): void =>
      raw.send({
        cmd: 'auth',
        reasonCode: 0x19,
        properties: { authenticationMethod: 'keyway-jwt', authenticationData: Buffer.from(token) },
      });

    test('a fresh JWT in AUTH extends the connection past the first token', async () => {
      const short = await startBroker({ jwtSkewSeconds: 0 });
      try {
        const d = await addDevice(short, 'v5-reauth');
        const raw = await RawV5.open(short.port);
        try {
          raw.send({
            cmd: 'connect',
            protocolId: 'MQTT',
            protocolVersion: 5,
            clean: true,
            clientId: d.clientId,
            keepalive: 60,
            username: 'u',
            password: Buffer.from(await d.token(2)),
            properties: { authenticationMethod: 'keyway-jwt' },
          });
          assert.equal(((await raw.next('connack')) as IConnackPacket).reasonCode, 0);
          reauth(raw, await d.token(3600));
          const reply = await raw.next('auth');
          assert.equal((reply as { reasonCode?: number }).reasonCode ?? 0, 0);
          await sleep(3000);
          assert.equal(raw.packets.filter((p) => p.cmd === 'disconnect').length, 0, 'still connected after the first token expired');
          raw.send({ cmd: 'pingreq' });
          await raw.next('pingresp');
        } finally {
          raw.end();
        }
      } finally {
        await short.close();
      }
    });

    test("a bad token, or another device's, in AUTH disconnects with 0x87", async () => {
      const d = await addDevice(h, 'v5-reauth-bad');
      const other = await addDevice(h, 'v5-reauth-other');
      for (const token of [await signDeviceJwt(keyPair().privatePem, { audience: PROJECT }), await other.token()]) {
        const raw = track(await connectWithMethod(d, 3600));
        reauth(raw, token);
        const disconnect = (await raw.next('disconnect')) as IDisconnectPacket;
        assert.equal(disconnect.reasonCode, 0x87);
        await raw.closed;
      }
    });

    test('AUTH on a connection that did not use keyway-jwt is a protocol error (0x82)', async () => {
      const d = await addDevice(h, 'v5-reauth-none');
      const raw = track(await rawV5Device(h, d));
      reauth(raw, await d.token());
      const disconnect = (await raw.next('disconnect')) as IDisconnectPacket;
      assert.equal(disconnect.reasonCode, 0x82);
    });
  });
});
