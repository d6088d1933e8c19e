/**
 * A registry's MQTT access changed while its devices are connected (mqttConfig switched off,
 * deviceAuthMethod narrowed), over real TLS and WebSockets with the real device manager: every
 * connection the registry would now refuse ends within a second with DISCONNECT 0x98 and the
 * reason logged, devices attached to its gateways are detached with the gateway told why, other
 * registries are untouched, reconnects are refused, and switching back admits them again.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { formatDevice, type RegistryName } from '../domain/names.js';
import type { GatewayAuthMethod, RegistryCredential } from '../domain/resources.js';
import { signDeviceJwt } from '../identity/device-jwt.js';
import { capturingLogger } from '../../test/support/log-capture.js';
import { errorQueue } from '../../test/support/gateway-errors.js';
import { issue, makeRoot, type TestCert } from '../../test/support/test-pki.js';
import type { WebSocketService } from './broker.js';
import {
  addDevice,
  keyPair,
  LOCATION,
  mqttConnect,
  pki,
  PROJECT,
  REG,
  refusedWith,
  startBroker,
  type Harness,
  type TestDevice,
  holdingDecisions,
} from './broker-harness.test.js';

interface LogLine {
  readonly msg: string;
  readonly device?: string;
  readonly reason?: string;
  readonly [key: string]: unknown;
}

const regOf = (registry: string): RegistryName => ({ ...REG, registry });
const clientIdOf = (registry: string, id: string): string => `projects/${PROJECT}/locations/${LOCATION}/registries/${registry}/devices/${id}`;
const caCredential = (pem: string): RegistryCredential => ({ publicKeyCertificate: { format: 'X509_CERTIFICATE_PEM', certificate: pem } });

/** How a connection ended: the MQTT 5 DISCONNECT reason (if one came) and when the socket closed. */
interface Ending {
  readonly reason: Promise<number | undefined>;
  readonly closedAt: Promise<number>;
}

/** Watches `client` from now on; `closedAt` fails if it is still open after `timeoutMs`. */
function ending(client: MqttClient, timeoutMs = 5000): Ending {
  const reason = new Promise<number | undefined>((resolve) => {
    client.once('disconnect', (packet) => resolve(packet.reasonCode));
    client.once('close', () => resolve(undefined));
  });
  const closedAt = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms`)), timeoutMs);
    client.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now());
    });
  });
  // Awaited later, or not at all when an earlier assertion fails.
  closedAt.catch(() => undefined);
  return { reason, closedAt };
}

/** Awaits every connection's close and returns the longest time since `start`, in ms. */
async function closedWithin(start: number, endings: readonly Ending[]): Promise<number> {
  const times = await Promise.all(endings.map((e) => e.closedAt));
  return Math.max(...times) - start;
}

describe("a registry's MQTT access, changed while its devices are connected", () => {
  let h: Harness;
  let lines: LogLine[];
  let root: TestCert;
  let server: HttpsServer;
  let wsPort: number;
  let ws: WebSocketService;
  const clients: MqttClient[] = [];
  const track = (c: MqttClient): MqttClient => {
    clients.push(c);
    return c;
  };
  /** The next JWT verdict waits, once made, until released: a change landing meanwhile must count. */
  const verdicts = holdingDecisions('authenticateJwt');
  const holdNextVerdict = verdicts.holdNext;

  before(async () => {
    const captured = capturingLogger<LogLine>();
    lines = captured.lines;
    h = await startBroker(
      {},
      verdicts.wrap,
      { logger: captured.logger },
    );
    root = await makeRoot({ subject: 'CN=Access Root' });
    for (const id of ['access-a', 'access-b', 'access-auth', 'access-gw', 'access-race']) await h.service.createRegistry(REG, id, {});
    // An HTTPS server like the device HTTPS listener, serving MQTT over WebSockets from the same broker.
    server = createServer({ cert: pki.certPem, key: pki.keyPem, minVersion: 'TLSv1.2', requestCert: true, rejectUnauthorized: false }, (_req, res) =>
      res.writeHead(404).end(),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    wsPort = (server.address() as AddressInfo).port;
    ws = h.broker.serveWebSockets(server);
  });
  after(async () => {
    for (const c of clients) c.end(true);
    await ws.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await h.close();
  });

  /** Gives `registry` the test CA; its devices with raw keys must be made before (a registry with a CA wants certificates). */
  const trustRoot = (registry: string): Promise<unknown> => h.service.patchRegistry(regOf(registry), { credentials: [caCredential(root.pem)] }, ['credentials']);

  /** A device of `registry` with a certificate of the registry's CA registered to it. */
  async function certificateDevice(registry: string, id: string, gatewayAuthMethod?: GatewayAuthMethod): Promise<TestCert> {
    const reg = regOf(registry);
    await h.service.createDevice(reg, id, gatewayAuthMethod ? { gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod } } : {});
    const leaf = await issue(root, { subject: `CN=${id}` });
    await h.service.registerDeviceCertificate({ ...reg, device: id }, leaf.pem);
    return leaf;
  }

  const connectJwt = async (d: TestDevice, options: IClientOptions = {}): Promise<MqttClient> =>
    track(await mqttConnect(h.port, { clientId: d.clientId, username: 'unused', password: await d.token(), protocolVersion: 5, ...options }));

  const connectCertificate = async (registry: string, id: string, leaf: TestCert, options: IClientOptions = {}): Promise<MqttClient> =>
    track(await mqttConnect(h.port, { clientId: clientIdOf(registry, id), key: leaf.keyPem, cert: leaf.pem, protocolVersion: 5, ...options }));

  /** A JWT device over `wss://` on the broker's WebSocket service. */
  const connectWebSocket = async (d: TestDevice): Promise<MqttClient> => {
    const password = await d.token();
    return track(
      await new Promise<MqttClient>((resolve, reject) => {
        const client = mqtt.connect({
          protocol: 'wss',
          host: '127.0.0.1',
          port: wsPort,
          path: '/mqtt',
          ca: [pki.caCertPem],
          protocolVersion: 5,
          reconnectPeriod: 0,
          connectTimeout: 5000,
          clientId: d.clientId,
          username: 'unused',
          password,
        });
        client.once('connect', () => resolve(client));
        client.once('error', (e) => {
          client.end(true);
          reject(e);
        });
      }),
    );
  };

  const disconnectedFor = (registry: string, id: string): LogLine | undefined =>
    lines.find((l) => l.msg === 'device disconnected: its registry no longer admits it over MQTT' && l.device === clientIdOf(registry, id));

  it('switching MQTT off ends every device connection of the registry within a second (0x98), and only those; switching it on admits them again', async () => {
    const jwtDevice = await addDevice(h, 'off-jwt', { registry: 'access-a' });
    const wsDevice = await addDevice(h, 'off-ws', { registry: 'access-a' });
    await trustRoot('access-a');
    const leaf = await certificateDevice('access-a', 'off-cert');
    const other = await addDevice(h, 'off-other', { registry: 'access-b' });
    const jwtClient = await connectJwt(jwtDevice);
    const certClient = await connectCertificate('access-a', 'off-cert', leaf);
    const wsClient = await connectWebSocket(wsDevice);
    const otherClient = await connectJwt(other);
    const endings = [jwtClient, certClient, wsClient].map((c) => ending(c));

    const start = performance.now();
    await h.service.patchRegistry(regOf('access-a'), { mqttEnabledState: 'MQTT_DISABLED' }, ['mqtt_config']);
    const elapsed = await closedWithin(start, endings);
    assert.ok(elapsed < 1000, `closed ${Math.round(elapsed)} ms after the change`);
    for (const e of endings) assert.equal(await e.reason, 0x98, 'DISCONNECT 0x98 administrative action');
    for (const id of ['off-jwt', 'off-cert', 'off-ws'])
      assert.match(disconnectedFor('access-a', id)?.reason ?? '', /MQTT is disabled for the registry/, `the reason is logged for ${id}`);

    assert.ok(otherClient.connected, "another registry's device stays");
    await otherClient.publishAsync(`/devices/${other.id}/events`, 'still here', { qos: 1 });
    assert.equal(disconnectedFor('access-b', 'off-other'), undefined);

    // Reconnecting is refused, by JWT (0x86, as every JWT refusal) and by certificate (0x87).
    await assert.rejects(connectJwt(jwtDevice), refusedWith(0x86));
    await assert.rejects(connectJwt(jwtDevice, { protocolVersion: 4 }), refusedWith(5));
    await assert.rejects(connectCertificate('access-a', 'off-cert', leaf), refusedWith(0x87));

    await h.service.patchRegistry(regOf('access-a'), { mqttEnabledState: 'MQTT_ENABLED' }, ['mqtt_config.mqtt_enabled_state']);
    const again = [await connectJwt(jwtDevice), await connectCertificate('access-a', 'off-cert', leaf), await connectWebSocket(wsDevice)];
    assert.ok(again.every((c) => c.connected), 'admitted again once MQTT is on');
    for (const c of [...again, otherClient]) await c.endAsync();
  });

  it('CERTIFICATE_ONLY ends JWT connections of the registry, JWT_ONLY certificate connections', async () => {
    const registry = 'access-auth';
    const jwtDevice = await addDevice(h, 'auth-jwt', { registry });
    await trustRoot(registry);
    const leaf = await certificateDevice(registry, 'auth-cert');
    const other = await addDevice(h, 'auth-other', { registry: 'access-b' });
    const otherClient = await connectJwt(other);

    let jwtClient = await connectJwt(jwtDevice);
    let certClient = await connectCertificate(registry, 'auth-cert', leaf);
    let jwtEnding = ending(jwtClient);
    let start = performance.now();
    await h.service.patchRegistry(regOf(registry), { deviceAuthMethod: 'CERTIFICATE_ONLY' }, ['device_auth_method']);
    let elapsed = await closedWithin(start, [jwtEnding]);
    assert.ok(elapsed < 1000, `the JWT connection closed ${Math.round(elapsed)} ms after the change`);
    assert.equal(await jwtEnding.reason, 0x98);
    assert.match(disconnectedFor(registry, 'auth-jwt')?.reason ?? '', /accepts only certificate authentication/);
    await certClient.publishAsync('/devices/auth-cert/events', 'certificate still in', { qos: 1 });
    assert.ok(certClient.connected, 'the certificate connection stays');
    await assert.rejects(connectJwt(jwtDevice), refusedWith(0x86), 'a JWT is refused now');

    const certEnding = ending(certClient);
    start = performance.now();
    await h.service.patchRegistry(regOf(registry), { deviceAuthMethod: 'JWT_ONLY' }, ['device_auth_method']);
    elapsed = await closedWithin(start, [certEnding]);
    assert.ok(elapsed < 1000, `the certificate connection closed ${Math.round(elapsed)} ms after the change`);
    assert.equal(await certEnding.reason, 0x98);
    assert.match(disconnectedFor(registry, 'auth-cert')?.reason ?? '', /accepts only JWT authentication/);
    await assert.rejects(connectCertificate(registry, 'auth-cert', leaf), refusedWith(0x87), 'a certificate is refused now');
    jwtClient = await connectJwt(jwtDevice);
    jwtEnding = ending(jwtClient);

    await h.service.patchRegistry(regOf(registry), { deviceAuthMethod: 'JWT_OR_CERTIFICATE' }, ['device_auth_method']);
    certClient = await connectCertificate(registry, 'auth-cert', leaf);
    await jwtClient.publishAsync('/devices/auth-jwt/events', 'both in', { qos: 1 });
    assert.ok(jwtClient.connected && certClient.connected, 'both admitted under JWT_OR_CERTIFICATE');
    assert.ok(otherClient.connected, "another registry's device stays through it all");
    for (const c of [jwtClient, certClient, otherClient]) await c.endAsync();
  });

  it('a device whose JWT was being checked when MQTT was switched off is refused', async () => {
    const registry = 'access-race';
    const d = await addDevice(h, 'race-jwt', { registry });
    const { arrived, release } = holdNextVerdict();
    const connecting = connectJwt(d);
    connecting.catch(() => undefined);
    await arrived;
    // The verdict was made with MQTT on; the change lands before the connection is admitted.
    await h.service.patchRegistry(regOf(registry), { mqttEnabledState: 'MQTT_DISABLED' }, ['mqtt_config']);
    release();
    await assert.rejects(connecting, refusedWith(0x86));
    assert.ok(
      lines.some((l) => l.msg === 'connection refused' && l.clientId === d.clientId && /revoked while authenticating/.test(l.reason ?? '')),
      'refused for the change that landed while authenticating',
    );
    await h.service.patchRegistry(regOf(registry), { mqttEnabledState: 'MQTT_ENABLED' }, ['mqtt_config']);
    await (await connectJwt(d)).endAsync();
  });

  it('devices attached to gateways of the registry are detached and the gateway told; a gateway refused is disconnected too', async () => {
    const registry = 'access-gw';
    const reg = regOf(registry);
    // A JWT gateway with a device attached by association; a certificate gateway with one attached by its own JWT.
    const keys = keyPair();
    await h.service.createDevice(reg, 'gw-jwt', {
      credentials: [{ publicKey: { format: keys.format, key: keys.publicPem } }],
      gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: 'ASSOCIATION_ONLY' },
    });
    const jwtGateway: TestDevice = {
      id: 'gw-jwt',
      name: { ...reg, device: 'gw-jwt' },
      clientId: clientIdOf(registry, 'gw-jwt'),
      privatePem: keys.privatePem,
      fingerprint: keys.fingerprint,
      token: (lifetimeSeconds = 3600) => signDeviceJwt(keys.privatePem, { audience: PROJECT, lifetimeSeconds }),
    };
    const bound = await addDevice(h, 'gw-bound', { registry });
    await h.service.bindDeviceToGateway(reg, 'gw-jwt', 'gw-bound');
    const byToken = await addDevice(h, 'gw-token', { registry });
    await trustRoot(registry);
    const gatewayLeaf = await certificateDevice(registry, 'gw-cert', 'DEVICE_AUTH_TOKEN_ONLY');

    const jwtGatewayClient = await connectJwt(jwtGateway);
    const jwtGatewayErrors = errorQueue(jwtGatewayClient, 'gw-jwt');
    await jwtGatewayClient.subscribeAsync('/devices/gw-jwt/errors', { qos: 0 });
    await jwtGatewayClient.publishAsync(`/devices/${bound.id}/attach`, '{}', { qos: 1 });
    const certGatewayClient = await connectCertificate(registry, 'gw-cert', gatewayLeaf);
    const certGatewayErrors = errorQueue(certGatewayClient, 'gw-cert');
    await certGatewayClient.subscribeAsync('/devices/gw-cert/errors', { qos: 0 });
    await certGatewayClient.publishAsync(`/devices/${byToken.id}/attach`, JSON.stringify({ authorization: await byToken.token() }), { qos: 1 });

    // CERTIFICATE_ONLY: the JWT gateway goes; the certificate gateway stays, the device it attached by JWT does not.
    const jwtGatewayEnding = ending(jwtGatewayClient);
    const start = performance.now();
    await h.service.patchRegistry(reg, { deviceAuthMethod: 'CERTIFICATE_ONLY' }, ['device_auth_method']);
    const detached = await certGatewayErrors.next(1000);
    const elapsed = Math.max(performance.now() - start, await closedWithin(start, [jwtGatewayEnding]));
    assert.ok(elapsed < 1000, `detached and disconnected ${Math.round(elapsed)} ms after the change`);
    assert.equal(detached.error_type, 'GATEWAY_DETACHMENT_DEVICE_ERROR');
    assert.equal(detached.device_id, byToken.id);
    assert.match(detached.description, /accepts only certificate authentication/);
    assert.equal(await jwtGatewayEnding.reason, 0x98, 'the JWT gateway is disconnected');
    assert.ok(certGatewayClient.connected, 'the certificate gateway stays');
    await assert.rejects(certGatewayClient.publishAsync(`/devices/${byToken.id}/state`, 'after', { qos: 1 }), refusedWith(0x87), 'PUBACK 0x87');
    assert.equal((await certGatewayErrors.next()).error_type, 'GATEWAY_DEVICE_NOT_FOUND', 'the device is no longer attached');
    assert.equal(jwtGatewayErrors.pending, 0, 'a device attached by association presented no JWT: it went with its gateway');

    // MQTT off: the certificate gateway is told of its attached device, then disconnected.
    await h.service.patchRegistry(reg, { deviceAuthMethod: 'JWT_OR_CERTIFICATE' }, ['device_auth_method']);
    await h.service.patchDevice({ ...reg, device: 'gw-cert' }, { gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: 'ASSOCIATION_ONLY' } }, ['gateway_config.gateway_auth_method']);
    await h.service.bindDeviceToGateway(reg, 'gw-cert', 'gw-bound');
    await certGatewayClient.publishAsync(`/devices/${bound.id}/attach`, '{}', { qos: 1 });
    const certGatewayEnding = ending(certGatewayClient);
    await h.service.patchRegistry(reg, { mqttEnabledState: 'MQTT_DISABLED' }, ['mqtt_config']);
    const told = await certGatewayErrors.next(1000);
    assert.equal(told.error_type, 'GATEWAY_DETACHMENT_DEVICE_ERROR');
    assert.equal(told.device_id, bound.id);
    assert.match(told.description, /MQTT is disabled for the registry/);
    assert.equal(await certGatewayEnding.reason, 0x98);
    assert.ok(
      lines.some((l) => l.msg === 'device detached from its gateway' && l.device === formatDevice(bound.name) && /MQTT is disabled/.test(l.reason ?? '')),
      'the detachment is logged with its reason',
    );
  });
});
