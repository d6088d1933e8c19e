/**
 * A web application showing live device data: a page in a real browser (Chromium, driven by
 * playwright-core) runs mqtt.js over `wss://…/mqtt` as a backend service account, subscribes to a
 * device's events, and writes each one into the page; a device publishes over MQTT/TLS. The
 * browser trusts the server's key, checked against the development CA, rather than ignoring
 * every certificate error. With `http.clientCertificates: request` (the default) the page makes
 * an ordinary request first, as the README says; with `off` it connects directly.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { ClientCertificateMode } from '../src/config/config.js';
import { startTestServer, type TestServer } from './support/server.js';
import { connectClient, deviceKeys, devicePath, validToken } from './support/devices.js';
import { PROJECT, REGION, createDevice, createRegistry } from './support/fixtures.js';

const CHROMIUM = process.env.KEYWAY_CHROMIUM ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM}: install Debian's chromium (apt-get install chromium) or set KEYWAY_CHROMIUM to a Chromium binary`;
const REGISTRY = 'dashboard';
// mqtt's package exports do not list its browser bundle.
const MQTT_BROWSER_BUNDLE = fileURLToPath(new URL('../node_modules/mqtt/dist/mqtt.min.js', import.meta.url));

/** What a web application would run: connect as the backend, subscribe, show every event. */
const PAGE_SCRIPT = `
  window.startDashboard = async ({ url, username, password, topic, requestFirst }) => {
    const status = document.getElementById('status');
    const events = document.getElementById('events');
    // Chromium cancels a WebSocket whose server asks for a client certificate, until an ordinary
    // request has settled, for that host and port, that none is sent.
    if (requestFirst) await fetch(new URL('/', url.replace(/^wss:/, 'https:')), { mode: 'no-cors' }).catch(() => undefined);
    const client = mqtt.connect(url, { username, password, clientId: 'dashboard-' + Math.random().toString(16).slice(2), protocolVersion: 5, reconnectPeriod: 0 });
    client.on('connect', () =>
      client.subscribe(topic, { qos: 1 }, (err) => { status.textContent = err ? 'subscribe failed: ' + err.message : 'live'; }));
    client.on('error', (err) => { status.textContent = 'error: ' + err.message; });
    client.on('close', () => { if (status.textContent !== 'live') status.textContent = 'closed'; });
    client.on('message', (topic, payload) => {
      const item = document.createElement('li');
      item.textContent = topic + ' ' + payload.toString();
      events.appendChild(item);
    });
  };
`;

/**
 * The base64 SHA-256 of the public key of the certificate the server at `port` presents, once
 * Node has verified it against the development CA: what Chromium's SPKI allow-list takes (it
 * matches keys of the chain the server sends, which does not hold the CA itself).
 */
function trustedServerKey(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: [ca] }, () => {
      const spki = socket.getPeerX509Certificate()?.publicKey.export({ type: 'spki', format: 'der' });
      socket.destroy();
      if (spki) resolve(createHash('sha256').update(spki).digest('base64'));
      else reject(new Error('no server certificate'));
    });
    socket.once('error', reject);
  });
}

const VARIANTS: ReadonlyArray<{ readonly clientCertificates: ClientCertificateMode; readonly requestFirst: boolean; readonly title: string }> = [
  { clientCertificates: 'request', requestFirst: true, title: 'client certificates requested, an ordinary request first' },
  { clientCertificates: 'off', requestFirst: false, title: 'client certificates off, connecting directly' },
];

for (const { clientCertificates, requestFirst, title } of VARIANTS) {
  describe(`a web page shows live device data over MQTT over WebSockets (${title})`, { skip }, () => {
    let ts: TestServer;
    let browser: Browser;

    before(async () => {
      ts = await startTestServer({ httpClientCertificates: clientCertificates });
      await createRegistry(ts, REGISTRY);
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', `--ignore-certificate-errors-spki-list=${await trustedServerKey(ts.server.httpPort, ts.ca)}`],
      });
    });
    after(async () => {
      await browser?.close();
      await ts?.close();
    });

    async function dashboard(topic: string): Promise<Page> {
      const page = await browser.newPage();
      await page.setContent('<!doctype html><title>Fleet</title><p id="status">connecting</p><ul id="events"></ul>');
      await page.addScriptTag({ path: MQTT_BROWSER_BUNDLE });
      await page.addScriptTag({ content: PAGE_SCRIPT });
      const login = await ts.backend(PROJECT);
      const url = `wss://127.0.0.1:${ts.server.httpPort}/mqtt`;
      await page.evaluate((o) => (window as unknown as { startDashboard(o: unknown): Promise<void> }).startDashboard(o), { url, ...login, topic, requestFirst });
      await page.waitForFunction(() => document.getElementById('status')?.textContent !== 'connecting', undefined, { timeout: 10_000 });
      assert.equal(await page.textContent('#status'), 'live', 'the page connected and subscribed');
      return page;
    }

    test("a device's event published over MQTT/TLS appears in the page", async () => {
      const keys = deviceKeys('es256');
      await createDevice(ts, REGISTRY, 'thermo-1', keys);
      const page = await dashboard(`registries/${REGISTRY}/devices/+/events/#`);
      const device = await connectClient(ts.mqttPort, ts.ca, {
        clientId: devicePath(PROJECT, REGION, REGISTRY, 'thermo-1'),
        username: 'unused',
        password: validToken(keys, PROJECT),
      });
      await device.publishAsync('/devices/thermo-1/events/temperature', '{"celsius":21.5}', { qos: 1 });
      await page.waitForSelector('#events li', { timeout: 10_000 });
      assert.equal(
        await page.textContent('#events li'),
        `registries/${REGISTRY}/devices/thermo-1/events/temperature {"celsius":21.5}`,
        'the event is shown',
      );
      await device.endAsync();
      await page.close();
    });
  });
}
