/**
 * The broker's bounds and timers over real TLS: token expiry, keep-alive and idle limits, the
 * connect timeout, oversize packets refused from their header, outbound bounds and QoS 1 windows.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import mqttPacket, { type IPublishPacket } from 'mqtt-packet';
import { RawClient } from '../../test/support/raw-client.js';
import {
  BACKEND_KEY,
  BACKEND_USER,
  REG,
  addDevice,
  closed,
  connectBackend,
  connectDevice,
  eventually,
  lastError,
  mqttConnect,
  pki,
  rawDevice,
  sleep,
  startBroker,
} from './broker-harness.test.js';
import { TOKEN_EXPIRED_MESSAGE } from './handle-connect.js';

describe('MQTT broker limits and timers', () => {
  test('token expiry closes the connection at exp + skew and records UNAUTHENTICATED', async () => {
    const h = await startBroker({ jwtSkewSeconds: 1 });
    try {
      const d = await addDevice(h, 'timer-expiry');
      const client = await mqttConnect(h.port, { clientId: d.clientId, username: 'u', password: await d.token(1) });
      const started = Date.now();
      await closed(client);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 900 && elapsed < 3000, `closed after ${elapsed} ms`);
      assert.deepEqual(await lastError(h, d), { code: 16, message: TOKEN_EXPIRED_MESSAGE });
    } finally {
      await h.close();
    }
  });

  test('keep-alive: silence for 1.5 × keep-alive closes; pings keep the connection', async () => {
    const h = await startBroker();
    try {
      const d = await addDevice(h, 'timer-keepalive');
      const silent = await rawDevice(h, d, 1);
      const elapsed = await silent.closedWithin(3000);
      assert.ok(elapsed >= 1300, `closed after ${elapsed} ms`);

      const pinging = await rawDevice(h, d, 1);
      for (let i = 0; i < 4; i++) {
        await sleep(500);
        pinging.send({ cmd: 'pingreq' });
        await pinging.next('pingresp');
      }
      assert.equal(pinging.isClosed, false);
      await h.service.flush();
      assert.ok((await h.service.getDevice(d.name)).lastHeartbeatTime, 'PINGREQ is the heartbeat');
      pinging.end();
    } finally {
      await h.close();
    }
  });

  test('the idle limit closes a device sending no PUBLISH or PINGREQ, whatever its keep-alive', async () => {
    const h = await startBroker({ idleLimitMs: 600 });
    try {
      const d = await addDevice(h, 'timer-idle');
      const raw = await rawDevice(h, d, 0);
      const started = Date.now();
      // Other packets are not activity.
      const chatter = setInterval(() => raw.send({ cmd: 'unsubscribe', messageId: 1, unsubscriptions: ['/devices/x/config'] }), 100);
      await raw.closedWithin(2000).finally(() => clearInterval(chatter));
      assert.ok(Date.now() - started >= 500);
    } finally {
      await h.close();
    }
  });

  test('a connection that sends no CONNECT is closed after the connect timeout', async () => {
    const h = await startBroker({ connectTimeoutMs: 300 });
    try {
      const raw = await RawClient.open(h.port, pki.caCertPem);
      const elapsed = await raw.closedWithin(2000);
      assert.ok(elapsed >= 200, `closed after ${elapsed} ms`);
      assert.equal(raw.bytes.length, 0);
      await eventually(() => assert.equal(h.broker.connectionCount, 0));
    } finally {
      await h.close();
    }
  });

  test('an oversize packet is refused from its header, before the body is sent', async () => {
    const h = await startBroker({ maxPacketBytes: 4096, maxConnectPacketBytes: 1024 });
    try {
      // Before authentication the bound is the CONNECT bound: announce 10 MB and send nothing more.
      const raw = await RawClient.open(h.port, pki.caCertPem);
      raw.send(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x05]));
      await raw.closedWithin(2000);
      assert.equal(raw.bytes.length, 0);

      const tooLongConnect = await RawClient.open(h.port, pki.caCertPem);
      tooLongConnect.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'x'.repeat(2000), keepalive: 60 });
      await tooLongConnect.closedWithin(2000);
      assert.equal(tooLongConnect.bytes.length, 0);

      // After authentication the device bound applies, and the device learns why.
      const d = await addDevice(h, 'limit-oversize');
      const device = await rawDevice(h, d);
      const big = mqttPacket.generate({ cmd: 'publish', topic: `/devices/${d.id}/events`, payload: Buffer.alloc(5000), qos: 0, dup: false, retain: false });
      device.send(big.subarray(0, 8));
      await device.closedWithin(2000);
      const error = await lastError(h, d);
      assert.equal(error?.code, 3);
      assert.match(error?.message ?? '', /exceeds the maximum of 4096 bytes/);
    } finally {
      await h.close();
    }
  });

  test('garbage and malformed packets close the connection without harming the broker', async () => {
    const h = await startBroker();
    let unhandled: unknown;
    const onUnhandled = (e: unknown): void => {
      unhandled = e;
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const d = await addDevice(h, 'limit-garbage');
      const inputs: Buffer[] = [
        Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
        Buffer.from([0x30, 0x00]), // PUBLISH first
        Buffer.from([0x00, 0x00]), // reserved packet type
        Buffer.from([0x10, 0x02, 0x00, 0x04]), // truncated CONNECT
        Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x03, 0x00, 0x3c, 0x00, 0x00]), // reserved flag set
      ];
      for (const input of inputs) {
        const raw = await RawClient.open(h.port, pki.caCertPem);
        raw.send(input);
        await raw.closedWithin(2000);
      }
      // After CONNECT: invalid flags, a server-only packet, a QoS 2 flow packet, random bytes.
      const afterConnect = [
        Buffer.from([0x80, 0x00]), // SUBSCRIBE with invalid flags
        Buffer.from([0x82, 0x00]), // SUBSCRIBE without a packet id or filters
        Buffer.from([0x20, 0x02, 0x00, 0x00]), // CONNACK: server-only
        Buffer.from([0x62, 0x02, 0x00, 0x01]), // PUBREL: QoS 2 flows are not served
        Buffer.from([0x36, 0x03, 0x00, 0x01, 0x61]), // PUBLISH with both QoS bits
        Buffer.from([0xf0, 0x00]), // AUTH: reserved in 3.1.1
        Buffer.from([0x32, 0x05, 0x00, 0x09, 0x61, 0x62, 0x63]), // topic longer than the packet
      ];
      for (const input of afterConnect) {
        const raw = await rawDevice(h, d);
        raw.send(input);
        await raw.closedWithin(2000);
      }
      // Still serving.
      const client = await connectDevice(h, d);
      await client.publishAsync(`/devices/${d.id}/events`, 'alive', { qos: 1 });
      client.end(true);
      await sleep(50);
      assert.equal(unhandled, undefined);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await h.close();
    }
  });

  test('TLS below 1.2 is refused', async () => {
    const h = await startBroker();
    try {
      await assert.rejects(
        new Promise((resolve, reject) => {
          const socket = tlsConnect({
            host: '127.0.0.1',
            port: h.port,
            servername: 'localhost',
            ca: [pki.caCertPem],
            minVersion: 'TLSv1',
            maxVersion: 'TLSv1.1',
            ciphers: 'DEFAULT@SECLEVEL=0',
          });
          socket.once('secureConnect', () => {
            socket.destroy();
            resolve(undefined);
          });
          socket.once('error', reject);
        }),
      );
    } finally {
      await h.close();
    }
  });

  test('a backend that does not read is closed once its outbound buffer stays over the bound', async () => {
    const h = await startBroker({ outboundSoftBytes: 64 * 1024, outboundHardBytes: 256 * 1024, slowConsumerMs: 200 });
    try {
      const d = await addDevice(h, 'limit-slow');
      // The device must outrun the backend: lift its registry's telemetry throughput limit.
      await h.service.patchRegistry(REG, { rateLimits: { telemetryBytesPerSecond: 1024 * 1024 * 1024 } }, ['rate_limits']);
      for (const qos of [1, 0] as const) {
        const backend = await RawClient.open(h.port, pki.caCertPem);
        assert.equal((await backend.connect('slow', BACKEND_KEY, 60, BACKEND_USER)).returnCode, 0);
        backend.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'registries/#', qos }] });
        await backend.next('suback');
        backend.socket.pause();
        const device = await connectDevice(h, d);
        const payload = Buffer.alloc(200 * 1024);
        const started = Date.now();
        // A paused socket never reads the server's close: watch the broker's side instead.
        while (h.broker.connectionCount === 2 && Date.now() - started < 10_000) {
          await device.publishAsync(`/devices/${d.id}/events`, payload, { qos: 1 });
        }
        assert.equal(h.broker.connectionCount, 1, `QoS ${qos} slow consumer closed`);
        backend.end();
        assert.equal(device.connected, true, 'the publishing device is unaffected');
        device.end(true);
      }
    } finally {
      await h.close();
    }
  });

  test('a state the store does not accept is not acknowledged: the connection closes without PUBACK', async () => {
    let failing = true;
    const h = await startBroker({}, (service) =>
      new Proxy(service, {
        get(target, property, receiver) {
          if (property === 'recordState' && failing) return async () => Promise.reject(new Error('disk full'));
          const value: unknown = Reflect.get(target, property, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }),
    );
    try {
      const d = await addDevice(h, 'limit-store-fails');
      const raw = await rawDevice(h, d);
      raw.send({ cmd: 'publish', topic: `/devices/${d.id}/state`, payload: Buffer.from('s'), qos: 1, dup: false, retain: false, messageId: 9 });
      await raw.closedWithin(2000);
      assert.deepEqual(raw.packets, [], 'no PUBACK');
      failing = false;
      const again = await rawDevice(h, d);
      again.send({ cmd: 'publish', topic: `/devices/${d.id}/state`, payload: Buffer.from('s'), qos: 1, dup: false, retain: false, messageId: 9 });
      assert.equal(((await again.next('puback')) as { messageId?: number }).messageId, 9);
      again.end();
    } finally {
      await h.close();
    }
  });

  test('QoS 1 deliveries beyond the in-flight window wait for acknowledgements, in order', async () => {
    const h = await startBroker({ maxInflight: 2 });
    try {
      const d = await addDevice(h, 'limit-inflight');
      const backend = await RawClient.open(h.port, pki.caCertPem);
      assert.equal((await backend.connect('windowed', BACKEND_KEY, 60, BACKEND_USER)).returnCode, 0);
      backend.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'registries/#', qos: 1 }] });
      await backend.next('suback');
      const device = await connectDevice(h, d);
      for (let i = 0; i < 5; i++) await device.publishAsync(`/devices/${d.id}/events`, String(i), { qos: 1 });
      const first = (await backend.next('publish')) as IPublishPacket;
      const second = (await backend.next('publish')) as IPublishPacket;
      await sleep(100);
      assert.equal(backend.packets.length, 0, 'no more than two unacknowledged');
      const received = [first, second];
      for (let i = 0; i < 5; i++) {
        backend.send({ cmd: 'puback', messageId: (received[i] as IPublishPacket).messageId as number });
        if (received.length < 5) received.push((await backend.next('publish')) as IPublishPacket);
      }
      assert.deepEqual(received.map((p) => p.payload.toString()), ['0', '1', '2', '3', '4']);
      assert.equal(backend.isClosed, false);
      device.end(true);
      backend.end();
    } finally {
      await h.close();
    }
  });

  test('close() ends every connection and resolves once all sockets are closed', async () => {
    const h = await startBroker();
    const d = await addDevice(h, 'limit-close');
    const client = await connectDevice(h, d);
    const backend = await connectBackend(h);
    const idle = await RawClient.open(h.port, pki.caCertPem);
    await eventually(() => assert.equal(h.broker.connectionCount, 3));
    const gone = Promise.all([closed(client), closed(backend), idle.closed]);
    await h.close();
    await gone;
    assert.equal(h.broker.connectionCount, 0);
    await assert.rejects(RawClient.open(h.port, pki.caCertPem));
  });
});
