/**
 * MQTT over secure WebSockets, end to end: the broker serving WebSockets on an HTTPS server of
 * the test's own (asking for client certificates without requiring them, as the device HTTPS
 * listener does), with the real device manager. Clients are mqtt.js over `wss://` (devices with a
 * JWT or a client certificate, backends with an API key) and, where a test must control every
 * frame, a raw `ws` client speaking mqtt-packet.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { WebSocket, type ClientOptions } from 'ws';
import type { DeviceName } from '../domain/names.js';
import { capturingLogger } from '../../test/support/log-capture.js';
import { issue, makeRoot, type TestCert } from '../../test/support/test-pki.js';
import { RawClient } from '../../test/support/raw-client.js';
import type { WebSocketService } from './broker.js';
import {
  addDevice,
  BACKEND_KEY,
  BACKEND_USER,
  closed,
  connectBackend,
  connectDevice,
  eventually,
  inbox,
  LOCATION,
  pki,
  PROJECT,
  REG,
  REGISTRY,
  refusedWith,
  startBroker,
  type Harness,
} from './broker-harness.test.js';
import { maxMessageBytes } from './websocket-listener.js';
import { DEFAULT_LIMITS } from './limits.js';

/** An HTTPS server like the device HTTPS listener: client certificates asked for, not required. */
interface Site {
  readonly server: HttpsServer;
  readonly port: number;
  readonly ws: WebSocketService;
  close(): Promise<void>;
}

async function serveSite(h: Harness): Promise<Site> {
  const server = createServer(
    { cert: pki.certPem, key: pki.keyPem, minVersion: 'TLSv1.2', requestCert: true, rejectUnauthorized: false },
    (_req, res) => res.writeHead(404).end(),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const ws = h.broker.serveWebSockets(server);
  return {
    server,
    port: (server.address() as AddressInfo).port,
    ws,
    close: async () => {
      await ws.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Connects mqtt.js over `wss://`; resolves on CONNACK 0, rejects with the refusal otherwise. */
function wssConnect(site: Site, options: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({
      protocol: 'wss',
      host: '127.0.0.1',
      port: site.port,
      path: '/mqtt',
      ca: [pki.caCertPem],
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      // Devices' user names are ignored; MQTT 3.1.1 sends no password without one.
      username: 'unused',
      ...options,
    });
    client.once('connect', () => resolve(client));
    client.once('error', (e) => {
      client.end(true);
      reject(e);
    });
    // mqtt.js reports some transport failures (an upgrade refused) by closing alone.
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

/** A raw WebSocket client: frames as the test writes them, MQTT packets parsed from what comes back. */
class RawWs {
  readonly packets: Packet[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #parser: ReturnType<typeof mqttPacket.parser>;

  private constructor(
    readonly ws: WebSocket,
    version: 4 | 5,
  ) {
    this.#parser = mqttPacket.parser({ protocolVersion: version });
    this.#parser.on('packet', (p: Packet) => this.packets.push(p));
    this.#parser.on('error', () => undefined);
    ws.on('message', (data: Buffer) => this.#parser.parse(data));
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** `version`: how the server's packets are parsed. */
  static open(site: Site, version: 4 | 5 = 4, options: ClientOptions = {}): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`wss://127.0.0.1:${site.port}/mqtt`, ['mqtt'], { ca: [pki.caCertPem], ...options });
      ws.once('open', () => resolve(new RawWs(ws, version)));
      ws.once('error', reject);
    });
  }

  sendConnect(clientId: string, password: string | undefined, protocolVersion: 4 | 5 = 4): void {
    // The user name of a device is ignored, and MQTT 3.1.1 sends no password without one.
    this.ws.send(
      mqttPacket.generate(
        { cmd: 'connect', protocolId: 'MQTT', protocolVersion, clean: true, clientId, keepalive: 60, username: 'unused', ...(password ? { password: Buffer.from(password) } : {}) },
        { protocolVersion },
      ),
    );
  }
}

/** What an upgrade request to `path` offering `protocols` gets: 101, or the status it was refused with. */
function upgradeStatus(site: Site, path: string, protocols: string[] = ['mqtt']): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://127.0.0.1:${site.port}${path}`, protocols, { ca: [pki.caCertPem] });
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('error', (e) => reject(e));
  });
}

const clientIdOf = (registry: string, id: string): string => `projects/${PROJECT}/locations/${LOCATION}/registries/${registry}/devices/${id}`;

interface LogLine {
  readonly msg: string;
  readonly [key: string]: unknown;
}

let h: Harness;
let site: Site;
let log: { lines: LogLine[]; raw: string[] };

before(async () => {
  const captured = capturingLogger<LogLine>();
  log = captured;
  h = await startBroker({}, undefined, { logger: captured.logger });
  site = await serveSite(h);
});
after(async () => {
  await site.close();
  await h.close();
});

describe('MQTT over secure WebSockets', () => {
  it('a device with a JWT publishes over wss:// and a backend over TLS gets the event', async () => {
    const d = await addDevice(h, 'ws-jwt');
    const backend = await connectBackend(h);
    const got = inbox(backend);
    await backend.subscribeAsync(`registries/${REGISTRY}/devices/ws-jwt/events/#`, { qos: 1 });
    const device = await wssConnect(site, { clientId: d.clientId, password: await d.token() });
    await device.publishAsync('/devices/ws-jwt/events/temp', '21.5', { qos: 1 });
    await eventually(() => assert.equal(got[0]?.payload.toString(), '21.5', 'the backend got the event'));
    assert.equal(got[0]?.topic, `registries/${REGISTRY}/devices/ws-jwt/events/temp`);
    await device.endAsync();
    await backend.endAsync();
  });

  it('a backend over wss:// gets the events a device publishes over TLS (MQTT 5)', async () => {
    const d = await addDevice(h, 'ws-watched');
    const backend = await wssConnect(site, { clientId: 'ws-backend-1', username: BACKEND_USER, password: BACKEND_KEY, protocolVersion: 5 });
    const got = inbox(backend);
    await backend.subscribeAsync(`registries/${REGISTRY}/devices/+/events/#`, { qos: 1 });
    const device = await connectDevice(h, d);
    await device.publishAsync('/devices/ws-watched/events', 'live reading', { qos: 1 });
    await eventually(() => assert.equal(got[0]?.payload.toString(), 'live reading', 'the WebSocket backend got the event'));
    await device.endAsync();
    await backend.endAsync();
  });

  it("a device over wss:// gets its config, and is closed for subscribing to another device's", async () => {
    const d = await addDevice(h, 'ws-config', { config: 'cfg-1' });
    await addDevice(h, 'ws-other');
    const device = await wssConnect(site, { clientId: d.clientId, password: await d.token(), protocolVersion: 5 });
    const got = inbox(device);
    await device.subscribeAsync('/devices/ws-config/config', { qos: 1 });
    await eventually(() => assert.equal(got[0]?.payload.toString(), 'cfg-1', 'the config arrived'));
    const gone = closed(device);
    device.subscribe('/devices/ws-other/config', { qos: 1 }, () => undefined);
    await gone;
  });

  it('refuses a device with a bad JWT and a backend with a wrong API key, as over TLS', async () => {
    const d = await addDevice(h, 'ws-badjwt');
    await assert.rejects(wssConnect(site, { clientId: d.clientId, password: 'not.a.jwt' }), refusedWith(5), 'CONNACK 5');
    await assert.rejects(
      wssConnect(site, { clientId: 'ws-backend-bad', username: BACKEND_USER, password: 'kwk_wrong', protocolVersion: 5 }),
      refusedWith(0x86),
      'bad user name or password',
    );
  });

  describe('client certificates', () => {
    const registry = 'ws-certs';
    let root: TestCert;

    before(async () => {
      root = await makeRoot({ subject: 'CN=WebSocket Devices Root' });
      await h.service.createRegistry(REG, registry, {
        credentials: [{ publicKeyCertificate: { format: 'X509_CERTIFICATE_PEM', certificate: root.pem } }],
      });
    });

    async function certificateDevice(id: string): Promise<TestCert> {
      const leaf = await issue(root, { subject: `CN=${id}` });
      const name: DeviceName = { ...REG, registry, device: id };
      await h.service.createDevice({ ...REG, registry }, id, {});
      await h.service.registerDeviceCertificate(name, leaf.pem);
      return leaf;
    }

    it('a device presenting a certificate in the HTTPS handshake is authenticated by it', async () => {
      const leaf = await certificateDevice('ws-cert1');
      const backend = await connectBackend(h);
      const got = inbox(backend);
      await backend.subscribeAsync(`registries/${registry}/devices/ws-cert1/events/#`, { qos: 1 });
      // No password at all: only the certificate can have let it in.
      const device = await wssConnect(site, { clientId: clientIdOf(registry, 'ws-cert1'), key: leaf.keyPem, cert: leaf.pem, protocolVersion: 5 });
      await device.publishAsync('/devices/ws-cert1/events', 'from a certificate', { qos: 1 });
      await eventually(() => assert.equal(got[0]?.payload.toString(), 'from a certificate', 'the backend got the event'));
      await device.endAsync();
      await backend.endAsync();
    });

    it('a certificate from a CA the registry does not trust is refused', async () => {
      const stranger = await makeRoot({ subject: 'CN=Stranger Root' });
      const leaf = await issue(stranger, { subject: 'CN=ws-cert2' });
      await h.service.createDevice({ ...REG, registry }, 'ws-cert2', {});
      await assert.rejects(
        wssConnect(site, { clientId: clientIdOf(registry, 'ws-cert2'), key: leaf.keyPem, cert: leaf.pem, protocolVersion: 5 }),
        refusedWith(0x87),
        'not authorised',
      );
    });

    it('a certificate never authenticates a WebSocket a web page opened (Origin header)', async () => {
      const leaf = await certificateDevice('ws-cert3');
      const clientId = clientIdOf(registry, 'ws-cert3');
      const page = { origin: 'https://some-page.example', key: leaf.keyPem, cert: leaf.pem, ca: [pki.caCertPem] };
      await assert.rejects(
        wssConnect(site, { clientId, protocolVersion: 5, wsOptions: page }),
        refusedWith(0x86),
        'without its certificate the device has no credential: bad user name or password',
      );
      // The same certificate, without an Origin, is accepted: the refusal was the Origin's.
      const device = await wssConnect(site, { clientId, key: leaf.keyPem, cert: leaf.pem });
      await device.endAsync();
    });
  });

  describe('what is refused', () => {
    it('any other path gets 404, and the path is logged without its query', async () => {
      assert.equal(await upgradeStatus(site, '/'), 404);
      assert.equal(await upgradeStatus(site, '/mqtt/extra'), 404);
      assert.equal(await upgradeStatus(site, '/other?token=secret-in-query'), 404);
      assert.equal(await upgradeStatus(site, '/mqtt?client=1'), 101, 'a query on the MQTT path is allowed');
      await eventually(() => assert.ok(log.lines.some((l) => l.path === '/other'), 'the refusal is logged with the path'));
      assert.ok(!log.raw.some((line) => line.includes('secret-in-query')), 'the query is never logged');
    });

    it('a client that does not offer the subprotocol mqtt gets 400', async () => {
      assert.equal(await upgradeStatus(site, '/mqtt', []), 400, 'no subprotocol');
      assert.equal(await upgradeStatus(site, '/mqtt', ['mqttv3.1']), 400, 'MQTT 3.1 only');
      assert.equal(await upgradeStatus(site, '/mqtt', ['wamp', 'mqtt']), 101, 'mqtt among others');
      const raw = await RawWs.open(site);
      assert.equal(raw.ws.protocol, 'mqtt', 'the server selects mqtt');
      raw.ws.terminate();
    });

    it('mqtt.js asking for MQTT 3.1 (subprotocol mqttv3.1) is refused at the upgrade', async () => {
      await assert.rejects(wssConnect(site, { clientId: 'old', protocolId: 'MQIsdp', protocolVersion: 3 }), /closed before CONNACK/);
    });

    it('a plaintext WebSocket (ws://) to the HTTPS port never opens', async () => {
      const opened = await new Promise<boolean>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${site.port}/mqtt`, ['mqtt']);
        ws.once('open', () => {
          ws.terminate();
          resolve(true);
        });
        ws.once('error', () => resolve(false));
      });
      assert.equal(opened, false, 'no WebSocket without TLS');
      await assert.rejects(
        new Promise((resolve, reject) => {
          const client = mqtt.connect({ protocol: 'ws', host: '127.0.0.1', port: site.port, path: '/mqtt', reconnectPeriod: 0, connectTimeout: 5000 });
          client.once('connect', () => resolve(client.end(true)));
          client.once('error', (e) => reject(e));
          client.once('close', () => reject(new Error('closed')));
        }),
        'mqtt.js over ws:// fails',
      );
    });

    it('a frame over the message bound closes the WebSocket (1009) before it is read', async () => {
      const raw = await RawWs.open(site);
      raw.ws.send(Buffer.alloc(maxMessageBytes(DEFAULT_LIMITS) + 1));
      assert.equal((await raw.closed).code, 1009, 'message too big');
    });

    it('a text frame closes the WebSocket (1003, MQTT-6.0.0-1)', async () => {
      const raw = await RawWs.open(site);
      raw.ws.send('hello');
      const { code, reason } = await raw.closed;
      assert.equal(code, 1003, 'unsupported data');
      assert.match(reason, /binary/);
    });

    it('a text frame after CONNECT closes an authenticated connection too', async () => {
      const d = await addDevice(h, 'ws-text');
      const raw = await RawWs.open(site);
      raw.sendConnect(d.clientId, await d.token());
      await eventually(() => assert.equal(raw.packets[0]?.cmd, 'connack', 'CONNACK'));
      raw.ws.send(mqttPacket.generate({ cmd: 'pingreq' }).toString('latin1'));
      assert.equal((await raw.closed).code, 1003);
    });

    it('garbage in a binary frame closes the connection without a reply, and the broker goes on', async () => {
      const raw = await RawWs.open(site);
      raw.ws.send(Buffer.from('GET / HTTP/1.1\r\n\r\n garbage \x00\xff'));
      await raw.closed;
      assert.equal(raw.packets.length, 0, 'nothing is sent back');
      const d = await addDevice(h, 'ws-after-garbage');
      const device = await wssConnect(site, { clientId: d.clientId, password: await d.token() });
      await device.endAsync();
    });

    it('a CONNECT of an unknown protocol level gets CONNACK 1, then the close', async () => {
      const raw = await RawWs.open(site);
      const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'x', keepalive: 60 });
      connect[8] = 9; // the protocol level byte
      raw.ws.send(connect);
      await raw.closed;
      const connack = raw.packets[0];
      assert.equal(connack?.cmd, 'connack');
      assert.equal((connack as { returnCode?: number }).returnCode, 1, 'unacceptable protocol version');
    });

    it('an MQTT 5 CONNECT over the pre-authentication bound gets CONNACK 0x95', async () => {
      const raw = await RawWs.open(site, 5);
      raw.sendConnect('projects/x/big', 'x'.repeat(DEFAULT_LIMITS.maxConnectPacketBytes + 10), 5);
      await raw.closed;
      assert.equal((raw.packets[0] as { reasonCode?: number } | undefined)?.reasonCode, 0x95, 'packet too large');
    });
  });

  describe('framing', () => {
    it('packets split over frames and several packets in one frame are read (MQTT-6.0.0-2)', async () => {
      const d = await addDevice(h, 'ws-frames');
      const backend = await connectBackend(h);
      const got = inbox(backend);
      await backend.subscribeAsync(`registries/${REGISTRY}/devices/ws-frames/events/#`, { qos: 0 });
      const raw = await RawWs.open(site);
      const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: d.clientId, keepalive: 60, username: 'unused', password: Buffer.from(await d.token()) });
      for (let i = 0; i < connect.length; i += 7) raw.ws.send(connect.subarray(i, i + 7));
      await eventually(() => assert.equal((raw.packets[0] as { returnCode?: number } | undefined)?.returnCode, 0, 'CONNACK 0'));
      const publish = (n: number): Buffer => mqttPacket.generate({ cmd: 'publish', topic: '/devices/ws-frames/events', payload: Buffer.from(`m${n}`), qos: 0, dup: false, retain: false });
      raw.ws.send(Buffer.concat([publish(1), publish(2), publish(3).subarray(0, 4)]));
      raw.ws.send(publish(3).subarray(4));
      await eventually(() => assert.deepEqual(got.map((m) => m.payload.toString()), ['m1', 'm2', 'm3'], 'every packet, in order'));
      raw.ws.close();
      await backend.endAsync();
    });
  });
});

describe('bounds and shutdown of MQTT over WebSockets', () => {
  it('the broker\'s connection bound counts TLS and WebSocket connections together (503 over it)', async () => {
    const small = await startBroker({ maxConnections: 1 });
    const smallSite = await serveSite(small);
    try {
      const tls = await RawClient.open(small.port, pki.caCertPem);
      await eventually(() => assert.equal(small.broker.connectionCount, 1, 'the TLS connection is counted'));
      assert.equal(await upgradeStatus(smallSite, '/mqtt'), 503, 'no room left');
      tls.socket.destroy();
      await eventually(() => assert.equal(small.broker.connectionCount, 0, 'the TLS connection is gone'));
      const raw = await RawWs.open(smallSite);
      await eventually(() => assert.equal(small.broker.connectionCount, 1, 'the WebSocket connection is counted'));
      assert.equal(await upgradeStatus(smallSite, '/mqtt'), 503, 'no room left beside the WebSocket');
      raw.ws.terminate();
    } finally {
      await smallSite.close();
      await small.close();
    }
  });

  it('a WebSocket that sends no CONNECT is closed after the connect timeout', async () => {
    const quick = await startBroker({ connectTimeoutMs: 200 });
    const quickSite = await serveSite(quick);
    try {
      const raw = await RawWs.open(quickSite);
      await raw.closed;
      assert.equal(raw.packets.length, 0);
    } finally {
      await quickSite.close();
      await quick.close();
    }
  });

  it('broker.close ends WebSocket connections (MQTT 5: DISCONNECT 0x8B) and refuses new ones', async () => {
    const own = await startBroker();
    const ownSite = await serveSite(own);
    const d = await addDevice(own, 'ws-shutdown');
    const device = await wssConnect(ownSite, { clientId: d.clientId, password: await d.token(), protocolVersion: 5 });
    const disconnect = new Promise<number | undefined>((resolve) => device.once('disconnect', (p) => resolve(p.reasonCode)));
    await own.close();
    assert.equal(await disconnect, 0x8b, 'server shutting down');
    await closed(device);
    assert.equal(own.broker.connectionCount, 0);
    assert.notEqual(await upgradeStatus(ownSite, '/mqtt').catch(() => 0), 101, 'no WebSocket after the shutdown');
    await ownSite.close();
  });

  it("the service's close ends its WebSocket connections, so the HTTPS server can close", async () => {
    const own = await startBroker();
    try {
      const ownSite = await serveSite(own);
      const d = await addDevice(own, 'ws-service');
      const device = await wssConnect(ownSite, { clientId: d.clientId, password: await d.token() });
      await ownSite.ws.close();
      await closed(device);
      await new Promise((resolve) => ownSite.server.close(resolve));
    } finally {
      await own.close();
    }
  });

  it('serving WebSockets needs a started broker', async () => {
    const stopped = await startBroker();
    await stopped.close();
    const server = createServer({ cert: pki.certPem, key: pki.keyPem });
    assert.throws(() => stopped.broker.serveWebSockets(server), /not running/);
  });
});
