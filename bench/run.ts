/**
 * `npm run bench`: one load generator against Keyway and then Mosquitto 2 on this machine.
 *
 *   fan-in  BENCH_DEVICES devices publish BENCH_PAYLOAD-byte events over TLS, QoS 0 and then QoS 1,
 *           as fast as they can; one backend subscriber receives them all: delivered messages per
 *           second, then p50/p99 publish-to-delivery latency in a second pass at half that rate
 *   storm   BENCH_STORM devices connect over TLS (Keyway: each with its own ES256 key and JWT):
 *           connections per second
 *   storm-x509  the same storm with mutual TLS: each device presents its own P-256 client
 *           certificate (leaf + batch intermediate, under one root made for the run); Keyway
 *           checks it against the registry's CA and the device's registered certificates,
 *           Mosquitto (require_certificate) only verifies the chain
 *   fanin-wss  the fan-in with the devices on MQTT over secure WebSockets (the subscriber stays on TLS)
 *   http    Keyway only: BENCH_DEVICES devices post BENCH_PAYLOAD-byte events to the HTTPS device
 *           bridge (`:publishEvent`, a JWT on every request, keep-alive), one request in flight
 *           each: requests per second, p50/p99 request latency, broker CPU per request, and the
 *           events delivered to the backend subscriber
 *   memory  BENCH_IDLE idle authenticated TLS connections to a freshly started broker: resident
 *           memory per connection (VmRSS before and after)
 *
 * See bench/README.md for the options; BENCH_QUICK=1 is a smoke run of a few seconds.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import mqttPacket from 'mqtt-packet';
import { SignJWT } from 'jose';
import { makeBenchPki, type BenchPki } from './device-certificates.js';
import { httpLoad } from './http-load.js';
import { RATE_LIMIT_MAXIMA } from '../src/domain/rate-limits.js';
import type { DeviceSpec, WorkerCommand, WorkerReply, WorkerSetup } from './load-worker.js';
import { Subscriber } from './subscriber.js';
import {
  apiCall, mosquittoAvailable, openFileLimit, residentBytes, startKeyway, startMosquitto, X509_REGISTRY, type KeywayTarget, type Target,
} from './targets.js';

const QUICK = process.env.BENCH_QUICK === '1';
const num = (name: string, full: number, quick: number): number => {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? (QUICK ? quick : full) : Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, not ${raw}`);
  return value;
};
const O = {
  devices: num('BENCH_DEVICES', 100, 20),
  payload: Math.max(8, num('BENCH_PAYLOAD', 64, 64)),
  seconds: num('BENCH_SECONDS', 10, 2),
  warmup: num('BENCH_WARMUP', 2, 1),
  window: Math.max(1, num('BENCH_WINDOW', 64, 64)),
  storm: num('BENCH_STORM', 5000, 200),
  stormConcurrency: Math.max(1, num('BENCH_STORM_CONCURRENCY', 100, 50)),
  idle: num('BENCH_IDLE', 10_000, 500),
  settle: num('BENCH_SETTLE', 5, 1),
  workers: Math.max(1, num('BENCH_WORKERS', 1, 1)),
  provisionConcurrency: Math.max(1, num('BENCH_PROVISION_CONCURRENCY', 64, 16)),
  /** Messages per second of the paced latency pass; 0: half the delivered rate of the flat-out pass. */
  latencyRate: num('BENCH_LATENCY_RATE', 0, 0),
  targets: (process.env.BENCH_TARGETS ?? 'keyway,mosquitto').split(','),
  scenarios: (process.env.BENCH_SCENARIOS ?? 'fanin,fanin-wss,http,storm,storm-x509,memory').split(','),
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const percentile = (sorted: ArrayLike<number>, p: number): number =>
  sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] as number);
const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await work(items[next++] as T);
  }));
}

/** Worker threads of the load generator, driven one command at a time. */
class Generator {
  readonly #workers: Worker[];
  readonly #pending = new Map<Worker, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  #counts: number[];

  constructor(target: Target, count: number, port = target.port, websocket?: { path: string }) {
    const setup: WorkerSetup = { port, ca: target.ca, ...(websocket ? { websocket } : {}) };
    const url = new URL('./load-worker.ts', import.meta.url).href;
    // Workers do not inherit tsx from --import on Node 20, so the worker registers it itself.
    const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url)}); });`;
    this.#workers = Array.from({ length: count }, () => {
      const w = new Worker(boot, { eval: true, workerData: setup });
      w.on('message', (reply: WorkerReply) => {
        const p = this.#pending.get(w);
        this.#pending.delete(w);
        if (reply.type === 'error') p?.reject(new Error(reply.message));
        else p?.resolve(reply);
      });
      w.on('error', (e) => {
        this.#pending.get(w)?.reject(e);
        this.#pending.delete(w);
      });
      return w;
    });
    this.#counts = this.#workers.map(() => 0);
  }

  #send(w: Worker, command: WorkerCommand, timeoutMs: number): Promise<WorkerReply> {
    return new Promise((resolveReply, reject) => {
      const timer = setTimeout(() => reject(new Error(`load generator: no answer to ${command.type} within ${timeoutMs} ms`)), timeoutMs);
      this.#pending.set(w, {
        resolve: (r) => (clearTimeout(timer), resolveReply(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      w.postMessage(command);
    });
  }

  /** Connects the devices, spread over the workers, and keeps them open. */
  async connect(devices: DeviceSpec[], concurrency: number, timeoutMs: number) {
    const n = this.#workers.length;
    const replies = await Promise.all(this.#workers.map((w, i) => {
      const mine = devices.filter((_, j) => j % n === i);
      this.#counts[i] = mine.length;
      return this.#send(w, { type: 'connect', devices: mine, concurrency: Math.ceil(concurrency / n), timeoutMs }, timeoutMs * (mine.length + 1));
    }));
    const connected = replies.filter((r): r is Extract<WorkerReply, { type: 'connected' }> => r.type === 'connected');
    const start = connected.reduce((m, r) => (r.startNs < m ? r.startNs : m), connected[0]?.startNs ?? 0n);
    const end = connected.reduce((m, r) => (r.endNs > m ? r.endNs : m), 0n);
    const latencies = new Float64Array(connected.flatMap((r) => r.latenciesMs)).sort();
    return {
      seconds: Number(end - start) / 1e9,
      ok: connected.reduce((s, r) => s + r.ok, 0),
      failed: connected.reduce((s, r) => s + r.failed, 0),
      firstError: connected.find((r) => r.firstError)?.firstError,
      latencies,
    };
  }

  /** rate: messages per second over all devices (0 = as fast as possible). */
  async publish(qos: 0 | 1, payloadBytes: number, rate: number, window: number): Promise<void> {
    const total = this.#counts.reduce((a, b) => a + b, 0) || 1;
    await Promise.all(this.#workers.map((w, i) =>
      this.#send(w, { type: 'publish', qos, payloadBytes, rate: (rate * (this.#counts[i] ?? 0)) / total, window }, 10_000)));
  }

  async stop(): Promise<{ sent: number; lost: number }> {
    const replies = await Promise.all(this.#workers.map((w) => this.#send(w, { type: 'stop' }, 10_000)));
    let sent = 0;
    let lost = 0;
    for (const r of replies) {
      if (r.type !== 'stopped') continue;
      sent += r.sent;
      lost += r.lost;
    }
    return { sent, lost };
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => this.#send(w, { type: 'close' }, 30_000)));
  }

  async terminate(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}

interface Identity {
  readonly clientId: string;
  readonly username?: string;
  readonly password?: string;
  readonly topic: string;
}

function connectPacket(identity: Identity): Uint8Array {
  return mqttPacket.generate({
    cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 600, clientId: identity.clientId,
    username: identity.username, password: identity.password === undefined ? undefined : Buffer.from(identity.password),
  });
}

async function specs(target: Target, ids: string[]): Promise<DeviceSpec[]> {
  const identities = await Promise.all(ids.map((id) => target.device(id)));
  return identities.map((identity) => ({ connect: connectPacket(identity), topic: identity.topic }));
}

/** CPU time (user + system, in clock ticks) a process has used so far, from /proc/<pid>/stat. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * Waits until the broker has worked off what the generator queued in socket buffers: deliveries
 * stop arriving and the broker is (nearly) idle. At most `ms`.
 */
async function drained(sub: Subscriber, pid: number, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  let [lastReceived, lastTicks] = [-1, -1];
  for (;;) {
    const [received, ticks] = [sub.received, cpuTicks(pid)];
    // Clock ticks are 10 ms: at most 5 % of a core over the last half second.
    if (received === lastReceived && ticks - lastTicks <= 2) return;
    if (Date.now() > deadline) throw new Error(`broker still busy ${ms / 1000} s after the load stopped`);
    [lastReceived, lastTicks] = [received, ticks];
    await sleep(500);
  }
}

interface FanIn {
  messagesPerSecond: number;
  /** What the devices wrote per second in the flat-out pass (QoS 0: the broker may drop the excess). */
  offeredPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Rate actually delivered during the latency pass. */
  halfRateDelivered: number;
  deviceConnectionsLost: number;
  /** Set when the broker closed the backend subscriber during the flat-out pass (e.g. as a slow consumer). */
  subscriberClosed?: string;
}

async function fanIn(target: Target, qos: 0 | 1, transport: 'tls' | 'wss' = 'tls'): Promise<FanIn> {
  const backend = await target.backend();
  const open = (): Promise<Subscriber> => Subscriber.open({ port: target.port, ca: target.ca, clientId: `bench-backend-${qos}`, ...backend, qos });
  const ws = transport === 'wss' ? target.websocket : undefined;
  if (transport === 'wss' && !ws) throw new Error(`${target.name} serves no MQTT over WebSockets`);
  const label = transport === 'wss' ? `QoS ${qos} over WSS` : `QoS ${qos}`;
  let sub = await open();
  const gen = ws ? new Generator(target, O.workers, ws.port, { path: ws.path }) : new Generator(target, O.workers);
  try {
    const devices = await specs(target, Array.from({ length: O.devices }, (_, i) => `dev${i}`));
    const c = await gen.connect(devices, 50, 30_000);
    if (c.failed) throw new Error(`${c.failed} of ${O.devices} devices could not connect: ${c.firstError}`);

    // Pass 1: flat out.
    const p0 = now();
    await gen.publish(qos, O.payload, 0, O.window);
    await sleep(O.warmup * 1000);
    const [c0, t0] = [sub.received, now()];
    await sleep(O.seconds * 1000);
    const [c1, t1] = [sub.received, now()];
    const first = await gen.stop();
    const offered = (first.sent * 1000) / (now() - p0);
    let lost = first.lost;
    const rate = ((c1 - c0) * 1000) / (t1 - t0);
    await drained(sub, target.pid);
    const receivedInAll = sub.received;
    const subscriberClosed = sub.failure;
    if (subscriberClosed) {
      // The rate until then stands; the latency pass gets a new subscriber.
      console.warn(`${target.name}: ${label} flat out: the broker closed the backend subscriber (${subscriberClosed})`);
      sub = await open();
    }
    console.log(`${target.name}: ${label} fan-in ${Math.round(rate)} msg/s delivered (${first.sent} sent, ${receivedInAll} received in all)`);

    // Pass 2: half that rate (or BENCH_LATENCY_RATE), paced, for latency.
    const paced = O.latencyRate > 0 ? O.latencyRate : rate / 2;
    await gen.publish(qos, O.payload, paced, O.window);
    await sleep(O.warmup * 1000);
    sub.record(true);
    const [d0, u0] = [sub.received, now()];
    await sleep(O.seconds * 1000);
    sub.record(false);
    const [d1, u1] = [sub.received, now()];
    lost += (await gen.stop()).lost;
    await drained(sub, target.pid);
    if (sub.failure) throw new Error(`backend subscriber: ${sub.failure}`);
    const latencies = sub.latencies();
    console.log(`${target.name}: ${label} at ${Math.round(paced)} msg/s: p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms`);
    return {
      messagesPerSecond: Math.round(rate),
      offeredPerSecond: Math.round(offered),
      p50Ms: round(percentile(latencies, 50), 2),
      p99Ms: round(percentile(latencies, 99), 2),
      halfRateDelivered: Math.round(((d1 - d0) * 1000) / (u1 - u0)),
      deviceConnectionsLost: lost,
      ...(subscriberClosed ? { subscriberClosed } : {}),
    };
  } finally {
    await gen.close().catch(() => {});
    await gen.terminate();
    sub.close();
  }
}

interface HttpBridge {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** The broker's CPU time per successful request. */
  brokerCpuMicrosPerRequest: number;
  /** Events the backend subscriber received per second in the same window. */
  deliveredPerSecond: number;
  failed: number;
}

/** Keyway's HTTPS device bridge under BENCH_DEVICES devices, one request in flight each. */
async function httpBridge(target: KeywayTarget, sign: (id: string) => Promise<string>): Promise<HttpBridge> {
  const backend = await target.backend();
  const sub = await Subscriber.open({ port: target.port, ca: target.ca, clientId: 'bench-backend-http', ...backend, qos: 0 });
  try {
    const devices = await Promise.all(
      Array.from({ length: O.devices }, async (_, i) => ({ path: `projects/bench/locations/local/registries/bench/devices/dev${i}`, token: await sign(`dev${i}`) })),
    );
    let [ticks, received] = [0, 0];
    const r = await httpLoad(
      { port: target.httpPort, ca: target.ca, devices, payloadBytes: O.payload, warmupSeconds: O.warmup, seconds: O.seconds },
      (phase) => {
        if (phase === 'start') [ticks, received] = [cpuTicks(target.pid), sub.received];
        else [ticks, received] = [cpuTicks(target.pid) - ticks, sub.received - received];
      },
    );
    const cpuMicros = (ticks * 10_000) / Math.max(1, r.ok);
    console.log(
      `${target.name} http: ${Math.round(r.requestsPerSecond)} publishEvent/s, ${r.failed} failed${r.firstError ? ` (${r.firstError})` : ''}; ` +
        `broker CPU ${Math.round(cpuMicros)} µs per request; p50 ${percentile(r.latencies, 50).toFixed(2)} ms, p99 ${percentile(r.latencies, 99).toFixed(2)} ms`,
    );
    if (r.ok === 0) throw new Error(`no request succeeded: ${r.firstError}`);
    return {
      requestsPerSecond: Math.round(r.requestsPerSecond),
      p50Ms: round(percentile(r.latencies, 50), 2),
      p99Ms: round(percentile(r.latencies, 99), 2),
      brokerCpuMicrosPerRequest: Math.round(cpuMicros),
      deliveredPerSecond: Math.round(received / O.seconds),
      failed: r.failed,
    };
  } finally {
    sub.close();
  }
}

interface Storm {
  connectionsPerSecond: number;
  /** The broker's CPU time (all its threads) per connection: steadier than the rate on a busy machine. */
  brokerCpuMicrosPerConnection: number;
  connackP50Ms: number;
  connackP99Ms: number;
  failed: number;
}

/** The storm's devices, authenticated by their JWTs (or, for Mosquitto, anonymous). */
const jwtStorm = async (target: Target): Promise<Storm> =>
  // CONNECT packets (JWTs included) are ready before the clock starts.
  storm(target, await specs(target, Array.from({ length: O.storm }, (_, i) => `dev${i}`)), target.port);

/** The storm's devices, each presenting its own client certificate and no password. */
function x509Storm(target: Target, pki: BenchPki): Promise<Storm> {
  const certificates = target.certificates;
  if (!certificates) throw new Error(`${target.name} was started without the device CA`);
  const devices = pki.devices.slice(0, O.storm).map((clientCertificate, i): DeviceSpec => {
    const identity = certificates.device(`dev${i}`);
    return { connect: connectPacket(identity), topic: identity.topic, clientCertificate };
  });
  return storm(target, devices, certificates.port, 'storm-x509');
}

async function storm(target: Target, devices: DeviceSpec[], port: number, label = 'storm'): Promise<Storm> {
  const gen = new Generator(target, O.workers, port);
  try {
    const ticks = cpuTicks(target.pid);
    const c = await gen.connect(devices, O.stormConcurrency, 30_000);
    // Clock ticks are 10 ms each.
    const cpuMicros = ((cpuTicks(target.pid) - ticks) * 10_000) / Math.max(1, c.ok);
    console.log(
      `${target.name} ${label}: ${c.ok} connections in ${c.seconds.toFixed(2)} s, ${c.failed} failed${c.firstError ? ` (${c.firstError})` : ''}; ` +
        `broker CPU ${Math.round(cpuMicros)} µs per connection`,
    );
    if (c.ok === 0) throw new Error(`no device connected: ${c.firstError}`);
    return {
      connectionsPerSecond: Math.round(c.ok / c.seconds),
      brokerCpuMicrosPerConnection: Math.round(cpuMicros),
      connackP50Ms: round(percentile(c.latencies, 50), 2),
      connackP99Ms: round(percentile(c.latencies, 99), 2),
      failed: c.failed,
    };
  } finally {
    await gen.close().catch(() => {});
    await gen.terminate();
  }
}

interface Memory {
  connections: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  kibPerConnection: number;
  failed: number;
}

async function memory(target: Target, count: number): Promise<Memory> {
  const devices = await specs(target, Array.from({ length: count }, (_, i) => `dev${i}`));
  await sleep(O.settle * 1000);
  const before = residentBytes(target.pid);
  const gen = new Generator(target, O.workers);
  try {
    const c = await gen.connect(devices, O.stormConcurrency, 60_000);
    await sleep(O.settle * 1000);
    const after = residentBytes(target.pid);
    console.log(`${target.name}: ${c.ok} idle connections, RSS ${(before / 2 ** 20).toFixed(1)} → ${(after / 2 ** 20).toFixed(1)} MiB`);
    if (c.ok === 0) throw new Error(`no device connected: ${c.firstError}`);
    return {
      connections: c.ok,
      rssBeforeMiB: round(before / 2 ** 20),
      rssAfterMiB: round(after / 2 ** 20),
      kibPerConnection: round((after - before) / c.ok / 1024, 2),
      failed: c.failed,
    };
  } finally {
    await gen.close().catch(() => {});
    await gen.terminate();
  }
}

type Outcome<T> = T | { error: string };
interface TargetResult {
  fanInQos0?: Outcome<FanIn>;
  fanInQos1?: Outcome<FanIn>;
  fanInWssQos0?: Outcome<FanIn>;
  fanInWssQos1?: Outcome<FanIn>;
  http?: Outcome<HttpBridge>;
  storm?: Outcome<Storm>;
  stormX509?: Outcome<Storm>;
  memory?: Outcome<Memory>;
}

async function attempt<T>(what: string, work: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return await work();
  } catch (e) {
    console.error(`${what}: ${(e as Error).message}`);
    return { error: (e as Error).message };
  }
}

/** How many idle connections fit in this process's and the broker's open-file limits. */
function idleCount(brokerPid: number, name: string, notes: string[]): number {
  const headroom = 200; // listeners, database, workers, the backend subscriber
  const fit = Math.min(openFileLimit('self'), openFileLimit(brokerPid)) - headroom;
  if (fit >= O.idle) return O.idle;
  notes.push(`${name}: open-file limit allows ${fit} idle connections, not ${O.idle}`);
  console.warn(notes.at(-1));
  return Math.max(0, fit);
}

async function runScenarios(
  target: Target,
  restart: () => Promise<Target>,
  notes: string[],
  pki: BenchPki | undefined,
  /** The HTTP bridge scenario, for a target that has one. */
  http?: () => Promise<HttpBridge>,
): Promise<TargetResult> {
  const r: TargetResult = {};
  const has = (s: string): boolean => O.scenarios.includes(s);
  try {
    if (has('fanin')) {
      r.fanInQos0 = await attempt(`${target.name} fan-in QoS 0`, () => fanIn(target, 0));
      r.fanInQos1 = await attempt(`${target.name} fan-in QoS 1`, () => fanIn(target, 1));
    }
    if (has('fanin-wss')) {
      r.fanInWssQos0 = await attempt(`${target.name} fan-in over WSS QoS 0`, () => fanIn(target, 0, 'wss'));
      r.fanInWssQos1 = await attempt(`${target.name} fan-in over WSS QoS 1`, () => fanIn(target, 1, 'wss'));
    }
    if (has('http') && http) r.http = await attempt(`${target.name} http`, http);
    if (has('storm')) r.storm = await attempt(`${target.name} storm`, () => jwtStorm(target));
    if (pki) r.stormX509 = await attempt(`${target.name} storm-x509`, () => x509Storm(target, pki));
  } finally {
    await target.stop();
  }
  if (has('memory')) {
    // A fresh process, so garbage from the other scenarios does not hide in the baseline.
    const fresh = await restart();
    try {
      const count = idleCount(fresh.pid, fresh.name, notes);
      r.memory = await attempt(`${fresh.name} memory`, () => memory(fresh, count));
    } finally {
      await fresh.stop();
    }
  }
  return r;
}

/**
 * The bench measures how fast the broker goes, not its rate limits: the registries allow the most
 * each limit may be set to (the defaults, 100 msg/s per connection, would cap every device).
 */
const BENCH_RATE_LIMITS = RATE_LIMIT_MAXIMA;

async function provision(keyway: KeywayTarget, publicPems: string[]): Promise<void> {
  const t0 = now();
  await apiCall(keyway.apiPort, keyway.ca, keyway.adminToken, 'POST', '/v1/projects/bench/locations/local/registries', { id: 'bench', rateLimits: BENCH_RATE_LIMITS });
  await pool(publicPems.map((key, i) => ({ id: `dev${i}`, key })), O.provisionConcurrency, async ({ id, key }) => {
    await apiCall(keyway.apiPort, keyway.ca, keyway.adminToken, 'POST', '/v1/projects/bench/locations/local/registries/bench/devices', {
      id, credentials: [{ publicKey: { format: 'ES256_PEM', key } }],
    });
  });
  console.log(`keyway: ${publicPems.length} devices provisioned in ${((now() - t0) / 1000).toFixed(1)} s`);
}

/**
 * storm-x509 on Keyway: a registry whose CA credential is the bench's root, and every device
 * created with its certificate (leaf + intermediate, so the chain reaches the root) registered ACTIVE.
 */
async function provisionCertificates(keyway: KeywayTarget, pki: BenchPki): Promise<void> {
  const t0 = now();
  const call = (method: string, path: string, body: unknown): Promise<unknown> =>
    apiCall(keyway.apiPort, keyway.ca, keyway.adminToken, method, `/v1/projects/bench/locations/local/registries${path}`, body);
  await call('POST', '', {
    id: X509_REGISTRY,
    rateLimits: BENCH_RATE_LIMITS,
    credentials: [{ publicKeyCertificate: { format: 'X509_CERTIFICATE_PEM', certificate: pki.rootPem } }],
  });
  const devices = pki.devices.slice(0, O.storm).map((d, i) => ({ id: `dev${i}`, certificatePem: d.chainPem }));
  await pool(devices, O.provisionConcurrency, async ({ id, certificatePem }) => {
    await call('POST', `/${X509_REGISTRY}/devices`, { id });
    await call('POST', `/${X509_REGISTRY}/devices/${id}/certificates`, { certificatePem });
  });
  console.log(`keyway: ${devices.length} devices with certificates provisioned in ${((now() - t0) / 1000).toFixed(1)} s`);
}

/** How the latency pass was paced, for the table's row names. */
const PACE = O.latencyRate > 0 ? `${O.latencyRate} msg/s` : 'half rate';

const metrics: Array<{ metric: string; pick: (r: TargetResult) => number | undefined; better: 'higher' | 'lower' }> = [
  { metric: 'fan-in QoS 0, msg/s', pick: (r) => ok(r.fanInQos0)?.messagesPerSecond, better: 'higher' },
  { metric: `fan-in QoS 0, p50 ms at ${PACE}`, pick: (r) => ok(r.fanInQos0)?.p50Ms, better: 'lower' },
  { metric: `fan-in QoS 0, p99 ms at ${PACE}`, pick: (r) => ok(r.fanInQos0)?.p99Ms, better: 'lower' },
  { metric: 'fan-in QoS 1, msg/s', pick: (r) => ok(r.fanInQos1)?.messagesPerSecond, better: 'higher' },
  { metric: `fan-in QoS 1, p50 ms at ${PACE}`, pick: (r) => ok(r.fanInQos1)?.p50Ms, better: 'lower' },
  { metric: `fan-in QoS 1, p99 ms at ${PACE}`, pick: (r) => ok(r.fanInQos1)?.p99Ms, better: 'lower' },
  { metric: 'fan-in over WSS QoS 0, msg/s', pick: (r) => ok(r.fanInWssQos0)?.messagesPerSecond, better: 'higher' },
  { metric: `fan-in over WSS QoS 0, p99 ms at ${PACE}`, pick: (r) => ok(r.fanInWssQos0)?.p99Ms, better: 'lower' },
  { metric: 'fan-in over WSS QoS 1, msg/s', pick: (r) => ok(r.fanInWssQos1)?.messagesPerSecond, better: 'higher' },
  { metric: `fan-in over WSS QoS 1, p99 ms at ${PACE}`, pick: (r) => ok(r.fanInWssQos1)?.p99Ms, better: 'lower' },
  { metric: 'HTTP publishEvent, req/s', pick: (r) => ok(r.http)?.requestsPerSecond, better: 'higher' },
  { metric: 'HTTP publishEvent, p99 ms', pick: (r) => ok(r.http)?.p99Ms, better: 'lower' },
  { metric: 'HTTP publishEvent, broker CPU µs/req', pick: (r) => ok(r.http)?.brokerCpuMicrosPerRequest, better: 'lower' },
  { metric: 'connection storm, conn/s', pick: (r) => ok(r.storm)?.connectionsPerSecond, better: 'higher' },
  { metric: 'connection storm, CONNACK p99 ms', pick: (r) => ok(r.storm)?.connackP99Ms, better: 'lower' },
  { metric: 'connection storm, broker CPU µs/conn', pick: (r) => ok(r.storm)?.brokerCpuMicrosPerConnection, better: 'lower' },
  { metric: 'connection storm (X.509), conn/s', pick: (r) => ok(r.stormX509)?.connectionsPerSecond, better: 'higher' },
  { metric: 'connection storm (X.509), CONNACK p99 ms', pick: (r) => ok(r.stormX509)?.connackP99Ms, better: 'lower' },
  { metric: 'connection storm (X.509), broker CPU µs/conn', pick: (r) => ok(r.stormX509)?.brokerCpuMicrosPerConnection, better: 'lower' },
  { metric: 'idle connection, KiB RSS each', pick: (r) => ok(r.memory)?.kibPerConnection, better: 'lower' },
];
function ok<T extends object>(o: Outcome<T> | undefined): T | undefined {
  return o && !('error' in o) ? o : undefined;
}

/** Share of CPU time the whole machine spent idle over `ms`, from /proc/stat. */
async function machineIdle(ms: number): Promise<number> {
  const sample = (): number[] => (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 8).map(Number);
  const a = sample();
  await sleep(ms);
  const b = sample();
  const total = b.reduce((s, v, i) => s + v - (a[i] ?? 0), 0);
  return total > 0 ? ((b[3] ?? 0) - (a[3] ?? 0)) / total : 1;
}

async function main(): Promise<void> {
  console.log(`bench: ${JSON.stringify(O)}; ${cpus().length} CPUs, Node ${process.version}`);
  const notes: string[] = [];
  // Other work on the machine skews every figure: say so rather than publish it silently.
  const idleBefore = await machineIdle(2000);
  if (idleBefore < 0.8) {
    notes.push(`the machine was only ${Math.round(idleBefore * 100)} % idle before the run: other processes compete with the brokers`);
    console.warn(`bench: ${notes.at(-1)}`);
  }
  const deviceCount = Math.max(O.devices, O.storm, O.idle);

  // Every device its own P-256 key; every JWT signed now, outside all measured windows.
  const keys: KeyObject[] = [];
  const publicPems: string[] = [];
  for (let i = 0; i < deviceCount; i++) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    keys.push(privateKey);
    publicPems.push(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  }
  const iat = Math.floor(Date.now() / 1000);
  const tokens = new Map<string, string>();
  await pool(keys.map((key, i) => ({ key, id: `dev${i}` })), 64, async ({ key, id }) => {
    tokens.set(id, await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuedAt(iat).setExpirationTime(iat + 3 * 3600).setAudience('bench').sign(key));
  });
  const sign = async (id: string): Promise<string> => {
    const token = tokens.get(id);
    if (!token) throw new Error(`no token for ${id}`);
    return token;
  };
  console.log(`bench: ${deviceCount} device keys generated and JWTs signed`);
  // storm-x509: a root, a batch intermediate and a certificate per storm device, also made up front.
  const x509 = O.scenarios.includes('storm-x509') ? await makeBenchPki(O.storm) : undefined;
  if (x509) console.log(`bench: ${O.storm} device certificates issued under one batch intermediate`);

  const results: Record<string, TargetResult> = {};
  // Keyway always starts first: its development CA issues the certificate both brokers serve.
  const keyway = await startKeyway(sign);
  const pki = join(keyway.dataDir, 'pki');
  if (O.targets.includes('keyway')) {
    try {
      await provision(keyway, publicPems);
      if (x509) await provisionCertificates(keyway, x509);
    } catch (e) {
      await keyway.stop();
      throw e;
    }
    results.keyway = await runScenarios(keyway, () => startKeyway(sign, keyway.dataDir), notes, x509, () => httpBridge(keyway, sign));
  } else await keyway.stop();

  if (O.targets.includes('mosquitto')) {
    if (!mosquittoAvailable()) notes.push('mosquitto: skipped (apt-get install mosquitto)');
    else {
      // The memory restart needs no certificate listener.
      results.mosquitto = await runScenarios(await startMosquitto(pki, x509?.rootPem), () => startMosquitto(pki), notes, x509);
      if (x509 && ok(results.mosquitto.stormX509))
        notes.push('mosquitto storm-x509: Mosquitto has no per-device certificate registration; it verifies the chain against the root (require_certificate, use_identity_as_username) and nothing else');
    }
  }

  const k = results.keyway ?? {};
  const m = results.mosquitto ?? {};
  const table = metrics.map(({ metric, pick, better }) => {
    const [kv, mv] = [pick(k), pick(m)];
    return { metric, keyway: kv ?? '-', mosquitto: mv ?? '-', ratio: kv !== undefined && mv ? round(kv / mv, 2) : '-', better };
  });
  console.table(table);
  for (const [name, r] of Object.entries(results)) {
    for (const [scenario, outcome] of Object.entries(r)) {
      if (outcome && 'error' in outcome) notes.push(`${name} ${scenario}: ${outcome.error}`);
      if (outcome && 'subscriberClosed' in outcome) notes.push(`${name} ${scenario}: the broker closed the backend subscriber in the flat-out pass (${outcome.subscriberClosed})`);
    }
  }
  for (const note of notes) console.log(`note: ${note}`);
  const out = resolve(import.meta.dirname, '..', '.bench');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'results.json'), JSON.stringify({
    at: new Date().toISOString(), cpus: cpus().length, node: process.version, options: O, table, results, notes,
  }, null, 2));
  console.log('written to .bench/results.json');
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
await main();
// Keep-alive API sockets or a stuck worker must not hold the process open.
process.exit(0);
