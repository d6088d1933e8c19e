/**
 * `npm run bench`: the same load generator against Keyway and Mosquitto on this machine.
 *
 *   connect   N devices connect over TLS (C at a time): connections per second, CONNACK latency
 *   telemetry N connected devices publish QoS 1 telemetry (one in flight each) to a backend
 *             subscriber: end-to-end messages per second and latency
 *
 * Options (environment): BENCH_DEVICES (200), BENCH_CONCURRENCY (50), BENCH_SECONDS (10),
 * BENCH_PAYLOAD (256 bytes), BENCH_TARGETS (keyway,mosquitto).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import mqtt, { type MqttClient } from 'mqtt';
import { SignJWT } from 'jose';
import { apiCall, mosquittoAvailable, startKeyway, startMosquitto, type Target } from './targets.js';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 200);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const PAYLOAD = Number(process.env.BENCH_PAYLOAD ?? 256);
const TARGETS = (process.env.BENCH_TARGETS ?? 'keyway,mosquitto').split(',');

interface Result {
  target: string;
  connectPerSecond: number;
  connectP50Ms: number;
  connectP99Ms: number;
  telemetryPerSecond: number;
  telemetryP50Ms: number;
  telemetryP99Ms: number;
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
const round = (n: number): number => Math.round(n * 10) / 10;

function connect(target: Target, options: { clientId: string; username?: string; password?: string }): Promise<MqttClient> {
  return new Promise((res, rej) => {
    const c = mqtt.connect({
      protocol: 'mqtts', host: '127.0.0.1', servername: 'localhost', port: target.port, ca: [target.ca],
      protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 30_000, keepalive: 60, ...options,
    });
    c.once('connect', () => res(c));
    c.once('error', (e) => rej(e));
  });
}

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await work(items[next++] as T);
  }));
}

async function run(target: Target): Promise<Result> {
  const ids = Array.from({ length: DEVICES }, (_, i) => `dev${i}`);
  const identities = await Promise.all(ids.map((id) => target.device(id)));

  const latencies: number[] = [];
  const clients: Array<{ client: MqttClient; topic: string }> = [];
  const start = performance.now();
  await pool(identities, CONCURRENCY, async (identity) => {
    const t0 = performance.now();
    clients.push({ client: await connect(target, identity), topic: identity.topic });
    latencies.push(performance.now() - t0);
  });
  const connectSeconds = (performance.now() - start) / 1000;
  console.log(`${target.name}: ${clients.length} devices connected in ${connectSeconds.toFixed(2)} s`);
  latencies.sort((a, b) => a - b);

  const backendIdentity = target.backend();
  const backend = await connect(target, { clientId: `bench-backend-${target.name}`, ...backendIdentity });
  await backend.subscribeAsync(backendIdentity.filter, { qos: 1 });
  const e2e: number[] = [];
  let received = 0;
  backend.on('message', (_topic, payload) => {
    received++;
    e2e.push(performance.now() - payload.readDoubleLE(0));
  });

  const deadline = performance.now() + SECONDS * 1000;
  const payload = Buffer.alloc(PAYLOAD);
  const t1 = performance.now();
  await Promise.all(clients.map(async ({ client: c, topic }) => {
    const lost = (): void => console.error(`${target.name}: a device connection closed during the run`);
    c.once('close', lost);
    while (performance.now() < deadline) {
      payload.writeDoubleLE(performance.now(), 0);
      await c.publishAsync(topic, Buffer.from(payload), { qos: 1 });
    }
    c.off('close', lost);
  }));
  await new Promise((r) => setTimeout(r, 500)); // let in-flight deliveries land
  console.log(`${target.name}: ${received} messages delivered`);
  const telemetrySeconds = (performance.now() - t1) / 1000;
  e2e.sort((a, b) => a - b);

  backend.end(true);
  for (const { client } of clients) client.end(true);
  return {
    target: target.name,
    connectPerSecond: round(DEVICES / connectSeconds),
    connectP50Ms: round(percentile(latencies, 50)),
    connectP99Ms: round(percentile(latencies, 99)),
    telemetryPerSecond: round(received / telemetrySeconds),
    telemetryP50Ms: round(percentile(e2e, 50)),
    telemetryP99Ms: round(percentile(e2e, 99)),
  };
}

async function main(): Promise<void> {
  console.log(`devices=${DEVICES} concurrency=${CONCURRENCY} seconds=${SECONDS} payload=${PAYLOAD}B`);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const sign = (): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuedAt(now).setExpirationTime(now + 3600).setAudience('bench').sign(privateKey);
  };

  const results: Result[] = [];
  const keyway = await startKeyway(sign);
  try {
    await apiCall(keyway.apiPort, keyway.ca, keyway.adminToken, 'POST', '/v1/projects/bench/locations/local/registries', { id: 'bench' });
    // Every device gets a credential; they share one key pair here only to keep provisioning fast.
    await pool(Array.from({ length: DEVICES }, (_, i) => `dev${i}`), 8, async (id) => {
      await apiCall(keyway.apiPort, keyway.ca, keyway.adminToken, 'POST', '/v1/projects/bench/locations/local/registries/bench/devices', {
        id, credentials: [{ publicKey: { format: 'ES256_PEM', key: publicPem } }],
      });
    });
    console.log(`keyway: ${DEVICES} devices provisioned`);
    if (TARGETS.includes('keyway')) results.push(await run(keyway));
    if (TARGETS.includes('mosquitto')) {
      if (!mosquittoAvailable()) console.log('mosquitto: skipped (apt-get install mosquitto)');
      else {
        const mosquitto = await startMosquitto(join(keyway.dataDir, 'pki'));
        try {
          results.push(await run(mosquitto));
        } finally {
          await mosquitto.stop();
        }
      }
    }
  } finally {
    await keyway.stop();
  }

  console.table(results);
  const out = resolve(import.meta.dirname, '..', '.bench');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'results.json'), JSON.stringify({ at: new Date().toISOString(), devices: DEVICES, concurrency: CONCURRENCY, seconds: SECONDS, payload: PAYLOAD, results }, null, 2));
  console.log(`written to .bench/results.json`);
}

await main();
