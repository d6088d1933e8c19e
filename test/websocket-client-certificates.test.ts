/**
 * `http.clientCertificates` on the real server: with `request` (the default) a device presenting
 * its certificate over `wss://…/mqtt` is authenticated by it; with `off` the device HTTPS listener
 * never asks for one, so the same certificate is never seen there: the device falls back to its
 * JWT or is refused. Either way the setting survives a TLS reload, and MQTT/TLS (8883) keeps
 * asking for certificates.
 */
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { ClientCertificateMode } from '../src/config/config.js';
import { connectClient, connectWebSocketClient, devicePath, validToken, type DeviceKeys } from './support/devices.js';
import { PROJECT, REGION, createDevice, createRegistry, eventually } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/server.js';
import { issue, makeRoot, type TestCert } from './support/test-pki.js';

const REGISTRY = 'wss-certs';
/** MQTT 5's CONNACK "bad user name or password": the device brought no credential the server saw. */
const BAD_USER_NAME_OR_PASSWORD = 0x86;
const refusedWith = (code: number) => (e: unknown) => (e as { code?: number }).code === code;

interface CertificateDevice {
  readonly clientId: string;
  readonly leaf: TestCert;
  readonly token: string;
}

for (const mode of ['request', 'off'] as const satisfies readonly ClientCertificateMode[]) {
  describe(`http.clientCertificates: ${mode}`, () => {
    let ts: TestServer;
    let root: TestCert;
    const clients: MqttClient[] = [];

    before(async () => {
      ts = await startTestServer({ httpClientCertificates: mode });
      root = await makeRoot({ subject: `CN=WebSocket Devices Root (${mode})` });
      await createRegistry(ts, REGISTRY, { credentials: [{ publicKeyCertificate: { format: 'X509_CERTIFICATE_PEM', certificate: root.pem } }] });
    });
    after(async () => {
      for (const c of clients) c.end(true);
      await ts?.close();
    });

    /**
     * A device whose credential is a certificate of the registry's CA: it authenticates with the
     * certificate in the handshake, or with a JWT signed by the certificate's key.
     */
    async function certificateDevice(id: string): Promise<CertificateDevice> {
      const leaf = await issue(root, { subject: `CN=${id}` });
      const publicPem = createPublicKey(leaf.privateKey).export({ type: 'spki', format: 'pem' }).toString();
      const keys: DeviceKeys = {
        type: 'es256',
        privateKey: leaf.privateKey,
        privatePem: leaf.keyPem,
        publicPem,
        credential: { publicKey: { format: 'ES256_PEM', key: publicPem } },
      };
      await createDevice(ts, REGISTRY, id, keys, { credentials: [{ publicKey: { format: 'ES256_X509_PEM', key: leaf.pem } }] });
      return { clientId: devicePath(PROJECT, REGION, REGISTRY, id), leaf, token: validToken(keys, PROJECT) };
    }

    async function overWss(options: IClientOptions): Promise<MqttClient> {
      const client = await connectWebSocketClient(ts.server.httpPort, ts.ca, options);
      clients.push(client);
      return client;
    }

    /** Connects with the certificate alone: no password, so nothing else can let it in. */
    const certificateOnly = (d: CertificateDevice): Promise<MqttClient> => overWss({ clientId: d.clientId, key: d.leaf.keyPem, cert: d.leaf.pem });

    if (mode === 'request') {
      test('a certificate presented over WSS authenticates the device, before and after a TLS reload', async () => {
        const d = await certificateDevice('cert-request');
        const backend = await connectClient(ts.mqttPort, ts.ca, { clientId: 'backend-request', protocolVersion: 5, ...(await ts.backend(PROJECT)) });
        clients.push(backend);
        const got: string[] = [];
        backend.on('message', (_topic, payload) => got.push(payload.toString()));
        await backend.subscribeAsync(`registries/${REGISTRY}/devices/cert-request/events`, { qos: 1 });

        const device = await certificateOnly(d);
        await device.publishAsync('/devices/cert-request/events', 'by certificate', { qos: 1 });
        await eventually(() => assert.deepEqual(got, ['by certificate'], 'the certificate device published'));
        await device.endAsync();

        assert.equal(await ts.server.reloadTls(), true, 'reloaded');
        const again = await certificateOnly(d);
        await again.endAsync();
      });
    } else {
      test('a certificate presented over WSS is never seen: alone it is refused, with a JWT the JWT authenticates', async () => {
        const d = await certificateDevice('cert-off');
        await assert.rejects(certificateOnly(d), refusedWith(BAD_USER_NAME_OR_PASSWORD), 'the certificate alone is no credential');

        const withToken = await overWss({ clientId: d.clientId, key: d.leaf.keyPem, cert: d.leaf.pem, username: 'unused', password: d.token });
        await withToken.publishAsync('/devices/cert-off/events', 'by token', { qos: 1 });
        await withToken.endAsync();
      });

      test('a TLS reload keeps the listener from asking', async () => {
        const d = await certificateDevice('cert-off-reload');
        assert.equal(await ts.server.reloadTls(), true, 'reloaded');
        await assert.rejects(certificateOnly(d), refusedWith(BAD_USER_NAME_OR_PASSWORD), 'still not asked for after the reload');
      });

      test('MQTT/TLS still takes the certificate: the setting is the HTTPS listener\'s alone', async () => {
        const d = await certificateDevice('cert-off-mqtts');
        const device = await connectClient(ts.mqttPort, ts.ca, { clientId: d.clientId, key: d.leaf.keyPem, cert: d.leaf.pem, protocolVersion: 5 });
        clients.push(device);
        await device.endAsync();
      });
    }
  });
}
