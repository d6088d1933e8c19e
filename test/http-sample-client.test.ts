/**
 * The HTTP bridge as Google's sample clients call it (reference §6.2, §6.4, §6.6), from a device
 * program of its own (support/fetch-device.mjs) run by `node` in a child process with nothing but
 * Node's global `fetch`: it trusts the server through NODE_EXTRA_CA_CERTS, as a device's trust
 * store would, fetches its config with `local_version=0`, publishes events with `binary_data` in
 * the Node sample's standard or the Python sample's URL-safe base64, and sets its state.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { connectClient, deviceKeys, devicePath, validToken } from './support/devices.js';
import { PROJECT, REGION, createDevice, createRegistry, devicePathUrl, eventually } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/server.js';

const REGISTRY = 'samples';
const DEVICE_PROGRAM = fileURLToPath(new URL('./support/fetch-device.mjs', import.meta.url));
const NUM_MESSAGES = 3;

interface Reply {
  readonly status: number;
  readonly contentType: string | null;
  readonly body: unknown;
}
interface Summary {
  readonly config?: Reply;
  readonly events?: ReadonlyArray<Reply & { payload: string; binary_data: string }>;
  readonly state?: Reply & { payload: string };
  readonly error?: string;
  readonly code?: string | null;
}

/** Runs the device program with exactly `env` (nothing of the test process's but PATH) and parses its summary. */
function runDevice(env: Record<string, string>): Promise<Summary> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [DEVICE_PROGRAM], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`the device program failed: ${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as Summary);
    });
  });
}

describe('a device program using only fetch, as the sample clients do', () => {
  let ts: TestServer;
  let backend: MqttClient;
  const received: Array<{ topic: string; payload: Buffer }> = [];

  before(async () => {
    ts = await startTestServer();
    await createRegistry(ts, REGISTRY);
    backend = await connectClient(ts.mqttPort, ts.ca, { clientId: 'sample-backend', protocolVersion: 5, ...(await ts.backend(PROJECT)) });
    backend.on('message', (topic, payload) => received.push({ topic, payload }));
    await backend.subscribeAsync(`registries/${REGISTRY}/devices/+/events/#`, { qos: 1 });
  });
  after(async () => {
    backend?.end(true);
    await ts?.close();
  });

  /** A device with a config of its own (version 2), and the environment the program needs to act as it. */
  async function sampleDevice(id: string): Promise<Record<string, string>> {
    const keys = deviceKeys('es256');
    await createDevice(ts, REGISTRY, id, keys);
    const modified = await ts.api('POST', `${devicePathUrl(REGISTRY, id)}:modifyCloudToDeviceConfig`, {
      binaryData: Buffer.from(`config of ${id}`).toString('base64'),
    });
    assert.equal(modified.status, 200, JSON.stringify(modified.body));
    assert.ok(ts.server.caCertPath, 'the test server serves the development CA');
    return {
      NODE_EXTRA_CA_CERTS: ts.server.caCertPath,
      KEYWAY_BRIDGE: `127.0.0.1:${ts.server.httpPort}`,
      KEYWAY_DEVICE_PATH: devicePath(PROJECT, REGION, REGISTRY, id),
      KEYWAY_DEVICE_JWT: validToken(keys, PROJECT),
      KEYWAY_NUM_MESSAGES: String(NUM_MESSAGES),
    };
  }

  for (const [alphabet, sample] of [['standard', 'Node'], ['urlsafe', 'Python']] as const) {
    test(`${sample} sample's base64 (${alphabet}): config, events and state all answer 200 and land`, async () => {
      const id = `fetch-${alphabet}`;
      const summary = await runDevice({ ...(await sampleDevice(id)), KEYWAY_BASE64: alphabet });
      assert.equal(summary.error, undefined, `the program reached the server: ${summary.error} (${summary.code})`);
      const { config, events = [], state } = summary;

      assert.equal(config?.status, 200, JSON.stringify(config));
      assert.match(config?.contentType ?? '', /^application\/json/);
      assert.deepEqual(config?.body, { version: '2', binaryData: Buffer.from(`config of ${id}`).toString('base64') }, 'the current config');

      assert.equal(events.length, NUM_MESSAGES);
      for (const e of events) {
        assert.equal(e.status, 200, JSON.stringify(e));
        assert.deepEqual(e.body, {});
        // The payloads are chosen so that the alphabet shows: standard has + and /, URL-safe - and _.
        assert.match(e.binary_data, alphabet === 'urlsafe' ? /^-_-_.*=$/ : /^\+\/\+\/.*=$/, 'the alphabet under test, padded');
      }
      const topic = `registries/${REGISTRY}/devices/${id}/events`;
      await eventually(() =>
        assert.deepEqual(
          received.filter((m) => m.topic === topic).map((m) => m.payload.toString('hex')),
          events.map((e) => e.payload),
          'every event reached the backend subscriber, in order, byte for byte',
        ),
      );

      assert.equal(state?.status, 200, JSON.stringify(state));
      assert.deepEqual(state?.body, {});
      const states = await ts.api('GET', `${devicePathUrl(REGISTRY, id)}/states`);
      assert.equal(states.status, 200, JSON.stringify(states.body));
      assert.equal(Buffer.from(states.body.deviceStates[0].binaryData, 'base64').toString('hex'), state?.payload, 'the state is stored');
    });
  }

  test('without the CA in its trust store the program cannot talk to the server', async () => {
    const { NODE_EXTRA_CA_CERTS: _ca, ...env } = await sampleDevice('fetch-untrusting');
    const summary = await runDevice({ ...env, KEYWAY_BASE64: 'standard' });
    assert.equal(summary.config, undefined, 'no request got an answer');
    assert.match(summary.code ?? '', /CERT|ISSUER|VERIFY/, `a certificate verification failure: ${JSON.stringify(summary)}`);
  });
});
