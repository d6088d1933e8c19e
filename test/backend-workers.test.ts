/**
 * Backend workers as the README shows them, with Mosquitto's own client against a real Keyway:
 * a shared subscription splits a registry's telemetry between workers, and a persistent session
 * gets the QoS 1 telemetry its worker missed while it was away.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { startTestServer, type BackendLogin, type TestServer } from './support/server.js';
import { connectClient, deviceKeys, devicePath, validToken } from './support/devices.js';
import { PROJECT, REGION, createDevice, createRegistry } from './support/fixtures.js';

const REGISTRY = 'fleet';
const hasMosquittoClients = spawnSync('mosquitto_sub', ['--help']).error === undefined;

interface Worker {
  readonly child: ChildProcess;
  /** Payloads received so far. */
  readonly payloads: string[];
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
}

describe('backend workers with mosquitto_sub', { skip: hasMosquittoClients ? false : 'mosquitto_sub not installed (apt-get install mosquitto-clients)' }, () => {
  let ts: TestServer;
  let device: MqttClient;
  const workers: Worker[] = [];

  before(async () => {
    ts = await startTestServer();
    await createRegistry(ts, REGISTRY);
    const keys = deviceKeys('es256');
    await createDevice(ts, REGISTRY, 'dev1', keys);
    login = await ts.backend(PROJECT);
    device = await connectClient(ts.mqttPort, ts.ca, { clientId: devicePath(PROJECT, REGION, REGISTRY, 'dev1'), username: 'unused', password: validToken(keys, PROJECT) });
  });
  after(async () => {
    device?.end(true);
    for (const w of workers) w.child.kill('SIGKILL');
    await ts?.close();
  });

  /** The README's command, with -d so the SUBACK shows, and each payload on a line of its own. */
  let login: BackendLogin;
  function worker(clientId: string, filter: string, extra: string[] = []): Worker {
    const args = ['-oL', 'mosquitto_sub', '-d', '--cafile', join(ts.dataDir, 'pki', 'ca.crt'), '-h', 'localhost', '-p', String(ts.mqttPort)];
    args.push('-V', 'mqttv5', '-q', '1', '-c', '-x', '3600', '-i', clientId, '-u', login.username, '-P', login.password, '-t', filter, '-F', 'MSG %p', ...extra);
    const child = spawn('stdbuf', args);
    const payloads: string[] = [];
    let out = '';
    let markReady: () => void = () => undefined;
    let failReady: (e: Error) => void = () => undefined;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    ready.catch(() => undefined); // awaited only by some tests
    const noSuback = setTimeout(() => failReady(new Error(`${clientId}: no SUBACK within 10 s`)), 10_000);
    ready.then(() => clearTimeout(noSuback), () => undefined);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (/SUBACK/.test(out)) markReady();
      const lines = out.split('\n');
      out = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('MSG ')) payloads.push(line.slice(4));
    });
    const exited = new Promise<void>((r) =>
      child.once('close', () => {
        clearTimeout(noSuback);
        r();
      }),
    );
    const w = { child, payloads, ready, exited };
    workers.push(w);
    return w;
  }

  /** Waits for a worker to exit by itself; kills it and fails if it does not. */
  const exitedWithin = async (w: Worker, what: string): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        w.child.kill('SIGKILL');
        reject(new Error(`timed out waiting for ${what} (received ${JSON.stringify(w.payloads)})`));
      }, 10_000);
    });
    await Promise.race([w.exited, timeout]).finally(() => clearTimeout(timer));
  };

  const waitFor = async (what: string, check: () => boolean): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  test('a shared subscription splits the registry’s telemetry between two workers, each event once', async () => {
    const filter = `$share/workers/registries/${REGISTRY}/devices/+/events`;
    const w1 = worker('worker-1', filter);
    const w2 = worker('worker-2', filter);
    await Promise.all([w1.ready, w2.ready]);
    const sent = Array.from({ length: 10 }, (_, i) => `e${i}`);
    for (const payload of sent) await device.publishAsync('/devices/dev1/events', payload, { qos: 1 });
    await waitFor('ten events', () => w1.payloads.length + w2.payloads.length >= sent.length);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual([...w1.payloads, ...w2.payloads].sort(), [...sent].sort(), 'each event exactly once');
    assert.ok(w1.payloads.length > 0 && w2.payloads.length > 0, `both workers get a share: ${w1.payloads.length} + ${w2.payloads.length}`);
  });

  test('a worker that comes back to its persistent session gets the events it missed', async () => {
    const filter = `registries/${REGISTRY}/devices/+/state`;
    // -E: subscribe, then disconnect normally; the session stays for its expiry (-x 3600).
    const first = worker('keeper', filter, ['-E']);
    await exitedWithin(first, 'the first worker to subscribe and leave');
    for (const payload of ['s1', 's2', 's3']) await device.publishAsync('/devices/dev1/state', payload, { qos: 1 });
    const back = worker('keeper', filter, ['-C', '3']);
    await exitedWithin(back, 'the returning worker to receive three states');
    assert.deepEqual(back.payloads, ['s1', 's2', 's3']);
  });
});
