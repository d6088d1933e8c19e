/**
 * The example programs under examples/ run as the README says, each by `node` in a child process
 * against a real server, with nothing of the test process's environment but PATH; what they did
 * is checked through the admin API and a backend subscriber, so the examples stay true.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { connectClient, deviceKeys, type DeviceKeys } from './support/devices.js';
import { PROJECT, REGION, createDevice, createRegistry, devicePathUrl, eventually, registryPath } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/server.js';

const REGISTRY = 'examples';
const example = (name: string): string => fileURLToPath(new URL(`../examples/${name}`, import.meta.url));

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function runExample(name: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [example(name), ...args], { env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const ran = (run: Run): string => `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;

describe('examples', () => {
  let ts: TestServer;
  let dir: string;
  let caFile: string;
  let backend: MqttClient;
  const received: Array<{ topic: string; payload: string }> = [];

  before(async () => {
    ts = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), 'keyway-examples-'));
    caFile = join(dir, 'ca.crt');
    writeFileSync(caFile, ts.ca);
    await createRegistry(ts, REGISTRY);
    backend = await connectClient(ts.mqttPort, ts.ca, { clientId: 'examples-backend', ...(await ts.backend(PROJECT)) });
    backend.on('message', (topic, payload) => received.push({ topic, payload: payload.toString() }));
    await backend.subscribeAsync(`registries/${REGISTRY}/devices/+/events/#`, { qos: 1 });
  });
  after(async () => {
    backend?.end(true);
    await ts?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A device with its private key in a file, as `keyway keys generate` leaves it. */
  async function device(id: string, type: 'es256' | 'rs256' = 'es256', body: Record<string, unknown> = {}): Promise<{ keys: DeviceKeys; keyFile: string }> {
    const keys = deviceKeys(type);
    await createDevice(ts, REGISTRY, id, keys, body);
    const keyFile = join(dir, `${id}.pem`);
    writeFileSync(keyFile, keys.privatePem, { mode: 0o600 });
    return { keys, keyFile };
  }

  /** The answer's body, as the caller says it is shaped. */
  async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await ts.api(method, path, body);
    assert.equal(res.status, 200, `${method} ${path}: ${JSON.stringify(res.body)}`);
    return res.body as T;
  }
  interface DescribedDevice {
    lastEventTime?: string;
    lastConfigSendTime?: string;
    gatewayConfig?: { lastAccessedGatewayId?: string };
  }
  const describeDevice = (id: string) => api<DescribedDevice>('GET', devicePathUrl(REGISTRY, id));

  /** The device's stored states, oldest first (the API lists the newest first). */
  async function statesOf(id: string): Promise<string[]> {
    const { deviceStates = [] } = await api<{ deviceStates?: Array<{ binaryData: string }> }>('GET', `${devicePathUrl(REGISTRY, id)}/states`);
    return deviceStates.map((s) => Buffer.from(s.binaryData, 'base64').toString()).reverse();
  }
  const eventsOf = (id: string): string[] => received.filter((m) => m.topic === `registries/${REGISTRY}/devices/${id}/events`).map((m) => m.payload);
  const payloads = (id: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${REGISTRY}/${id}-payload-${i + 1}`);

  describe('http-device.mjs', () => {
    const http = (id: string, keyFile: string, ...more: string[]): Promise<Run> =>
      runExample('http-device.mjs', [
        ...['--project', PROJECT, '--region', REGION, '--registry', REGISTRY, '--device', id, '--private-key', keyFile],
        ...['--ca', caFile, '--host', `127.0.0.1:${ts.server.httpPort}`, '--interval-seconds', '0', ...more],
      ]);

    test('publishes events (RS256) that reach backends, and fetches its config by local_version', async () => {
      const { keyFile } = await device('http-events', 'rs256');
      await api('POST', `${devicePathUrl(REGISTRY, 'http-events')}:modifyCloudToDeviceConfig`, { binaryData: Buffer.from('{"interval":10}').toString('base64') });
      const run = await http('http-events', keyFile, '--num-messages', '3', '--message-type', 'events');
      assert.equal(run.code, 0, ran(run));
      assert.match(run.stdout, /signed a new RS256 token/, 'the algorithm follows the key');
      assert.equal(run.stdout.match(/config version 2: \{"interval":10\}/g)?.length, 1, `the config is printed once, later fetches carry local_version=2: ${ran(run)}`);
      await eventually(() => assert.deepEqual(eventsOf('http-events'), payloads('http-events', 3), 'every event reached the backend, in order'));
      const described = await describeDevice('http-events');
      assert.ok(described.lastEventTime, 'lastEventTime is set');
      assert.ok(described.lastConfigSendTime, 'the config fetch is recorded');
    });

    test('sets its state past the rate limit by honouring Retry-After', async () => {
      const { keyFile } = await device('http-state');
      // The default limit is one state a second with a burst of three: six at once meet a 429.
      const run = await http('http-state', keyFile, '--num-messages', '6', '--message-type', 'state');
      assert.equal(run.code, 0, ran(run));
      assert.match(run.stdout, /:setState: 429; retrying in 1\.0 s/, `the 429 is retried after Retry-After: ${ran(run)}`);
      assert.deepEqual(await statesOf('http-state'), payloads('http-state', 6), 'every state is stored, in order');
    });

    test('stops at once with a clear message when its token is refused (401) or it is blocked (403)', async () => {
      const { keyFile: wrongKey } = await device('http-other');
      await device('http-refused');
      const refused = await http('http-refused', wrongKey, '--num-messages', '3');
      assert.equal(refused.code, 1, ran(refused));
      assert.match(refused.stderr, /refused the device's token \(401\)/, ran(refused));
      assert.doesNotMatch(refused.stdout, /retrying|published/, 'nothing is retried or published');

      const { keyFile } = await device('http-blocked', 'es256', { blocked: true });
      const blocked = await http('http-blocked', keyFile, '--num-messages', '3');
      assert.equal(blocked.code, 1, ran(blocked));
      assert.match(blocked.stderr, /may not do this \(403\).*blocked/, ran(blocked));
      assert.doesNotMatch(blocked.stdout, /retrying|published/, 'nothing is retried or published');
    });
  });

  describe('mqtt-gateway.mjs', () => {
    const gatewayRun = (gateway: string, keyFile: string, ...more: string[]): Promise<Run> =>
      runExample('mqtt-gateway.mjs', [
        ...['--project', PROJECT, '--region', REGION, '--registry', REGISTRY, '--gateway', gateway, '--private-key', keyFile],
        ...['--ca', caFile, '--host', '127.0.0.1', '--port', String(ts.mqttPort), '--interval-seconds', '0', ...more],
      ]);
    const gateway = (id: string, method: string) => device(id, 'es256', { gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: method } });
    const bind = (gatewayId: string, deviceId: string) => api('POST', `${registryPath(REGISTRY)}:bindDeviceToGateway`, { gatewayId, deviceId });

    test('attaches bound devices by association, sets their state and detaches them', async () => {
      const gw = await gateway('gw-assoc', 'ASSOCIATION_ONLY');
      for (const id of ['leaf-a', 'leaf-b']) {
        await device(id);
        await bind('gw-assoc', id);
      }
      const run = await gatewayRun('gw-assoc', gw.keyFile, '--device-ids', 'leaf-a,leaf-b', '--num-messages', '2', '--message-type', 'state');
      assert.equal(run.code, 0, ran(run));
      for (const id of ['leaf-a', 'leaf-b']) {
        assert.match(run.stdout, new RegExp(`attached ${id}\\n`), ran(run));
        assert.match(run.stdout, new RegExp(`detached ${id}\\n`), ran(run));
        assert.deepEqual(await statesOf(id), payloads(id, 2), `${id}'s states are stored, in order`);
        await eventually(async () =>
          assert.equal((await describeDevice(id)).gatewayConfig?.lastAccessedGatewayId, 'gw-assoc', `${id} came through the gateway`),
        );
      }
    });

    test('attaches devices with their own JWTs (token auth) and publishes their events', async () => {
      const gw = await gateway('gw-token', 'DEVICE_AUTH_TOKEN_ONLY');
      const es = await device('leaf-es');
      const rs = await device('leaf-rs', 'rs256');
      const run = await gatewayRun(
        'gw-token',
        gw.keyFile,
        ...['--device-ids', 'leaf-es,leaf-rs', '--device-private-keys', `${es.keyFile},${rs.keyFile}`, '--num-messages', '3', '--message-type', 'events'],
      );
      assert.equal(run.code, 0, ran(run));
      for (const id of ['leaf-es', 'leaf-rs']) {
        await eventually(() => assert.deepEqual(eventsOf(id), payloads(id, 3), `${id}'s events reached the backend, in order`));
      }
    });

    test('prints the errors the server sends it and carries on with the devices it could attach', async () => {
      const gw = await gateway('gw-errors', 'ASSOCIATION_ONLY');
      await device('leaf-bound');
      await bind('gw-errors', 'leaf-bound');
      await device('leaf-unbound');
      const run = await gatewayRun('gw-errors', gw.keyFile, '--device-ids', 'leaf-unbound,leaf-bound', '--num-messages', '1');
      assert.equal(run.code, 1, `errors make the exit status: ${ran(run)}`);
      assert.match(run.stderr, /error for leaf-unbound: GATEWAY_ATTACHMENT_ERROR/, ran(run));
      assert.doesNotMatch(run.stdout, /attached leaf-unbound/, 'the refused device is not used');
      assert.deepEqual(await statesOf('leaf-unbound'), [], 'nothing is stored for the refused device');
      assert.deepEqual(await statesOf('leaf-bound'), payloads('leaf-bound', 1), 'the bound device went on');
    });
  });
});
