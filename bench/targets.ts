/**
 * The brokers under test, each started as its own process on free loopback ports with
 * equivalent TLS: Keyway (its development CA and server certificate) and Mosquitto 2 using the
 * very same certificate and key.
 */
import { randomBytes } from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect as tlsConnect } from 'node:tls';

export interface Target {
  readonly name: string;
  readonly port: number;
  readonly ca: string;
  /** The broker's own process, for its resident memory. */
  readonly pid: number;
  /** Client options (besides client id) for a device, and the topic it publishes telemetry on. */
  device(id: string): Promise<{ username?: string; password?: string; clientId: string; topic: string }>;
  /**
   * Where and as whom a device authenticated by its client certificate connects (storm-x509);
   * absent when the broker was started without the bench's device CA.
   */
  readonly certificates?: {
    readonly port: number;
    device(id: string): { clientId: string; topic: string };
  };
  /** MQTT over secure WebSockets: `wss://127.0.0.1:{port}{path}`, same server certificate. */
  readonly websocket?: { readonly port: number; readonly path: string };
  /** How the backend subscriber logs in (Keyway: a service account's API key, made through the API on first use). */
  backend(): Promise<{ username?: string; password?: string; filter: string }>;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

async function waitForTls(port: number, ca: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca: [ca], servername: 'localhost' }, () => {
        s.end();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing answered TLS on port ${port}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const stopProcess = (child: ChildProcess): Promise<void> =>
  new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) return r();
    // A broker that ignores SIGTERM (e.g. while draining 10,000 connections) is killed.
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      r();
    });
    child.kill('SIGTERM');
  });

/** Children still running when the benchmark exits abnormally are killed on the way out. */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Resident memory of a process in bytes (VmRSS in /proc/<pid>/status). */
export function residentBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match?.[1]) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

/** The soft limit on open files of a process, from /proc/<pid>/limits. */
export function openFileLimit(pid: number | 'self'): number {
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return !match?.[1] || match[1] === 'unlimited' ? Infinity : Number(match[1]);
}

// Provisioning thousands of devices reuses connections rather than paying a handshake per call.
const apiAgent = new Agent({ keepAlive: true, maxSockets: 64 });

export function apiCall(port: number, ca: string, token: string, method: string, path: string, body?: unknown): Promise<unknown> {
  return new Promise((resolveCall, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host: '127.0.0.1', servername: 'localhost', port, method, path, ca, agent: apiAgent, timeout: 30_000,
        headers: { authorization: `Bearer ${token}`, ...(payload ? { 'content-type': 'application/json' } : {}) },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          (res.statusCode ?? 500) < 300 ? resolveCall(text ? JSON.parse(text) : {}) : reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`)),
        );
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 30 s`)));
    req.end(payload);
  });
}

export interface KeywayTarget extends Target {
  readonly dataDir: string;
  readonly apiPort: number;
  /** The device HTTPS listener: the HTTP bridge, and MQTT over WebSockets on `/mqtt`. */
  readonly httpPort: number;
  readonly adminToken: string;
}

/** Keyway in a fresh data directory, or restarted on `dataDir` (devices provisioned before stay). */
export async function startKeyway(sign: (id: string) => Promise<string>, dataDir = mkdtempSync(join(tmpdir(), 'keyway-bench-'))): Promise<KeywayTarget> {
  const [port, apiPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const root = resolve(import.meta.dirname, '..');
  // BENCH_KEYWAY_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the broker alone.
  const nodeArgs = (process.env.BENCH_KEYWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = track(spawn(process.execPath, [...nodeArgs, join(root, 'bin', 'keyway.js'), 'serve', '--data-dir', dataDir, '--mqtt-port', String(port), '--api-port', String(apiPort), '--http-port', String(httpPort)], {
    env: { ...process.env, KEYWAY_MQTT_HOST: '127.0.0.1', KEYWAY_HTTP_HOST: '127.0.0.1', KEYWAY_API_HOST: '127.0.0.1', KEYWAY_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  }));
  const ca = await (async () => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        return readFileSync(join(dataDir, 'pki', 'ca.crt'), 'utf8');
      } catch {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error('keyway did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  })();
  await waitForTls(port, ca);
  await waitForTls(apiPort, ca);
  await waitForTls(httpPort, ca);
  if (child.pid === undefined || child.exitCode !== null) throw new Error('keyway exited while starting');
  const adminToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  let backendLogin: Promise<{ username: string; password: string; filter: string }> | undefined;
  return {
    name: 'keyway',
    port,
    pid: child.pid,
    apiPort,
    httpPort,
    websocket: { port: httpPort, path: '/mqtt' },
    ca,
    dataDir,
    adminToken,
    device: async (id) => ({
      clientId: `projects/bench/locations/local/registries/bench/devices/${id}`,
      username: 'unused',
      password: await sign(id),
      topic: `/devices/${id}/events`,
    }),
    backend: () => (backendLogin ??= createBenchBackend(apiPort, ca, adminToken)),
    // The one listener asks every client for a certificate; the client id names the device, no password.
    certificates: {
      port,
      device: (id) => ({ clientId: `projects/bench/locations/local/registries/${X509_REGISTRY}/devices/${id}`, topic: `/devices/${id}/events` }),
    },
    stop: () => stopProcess(child),
  };
}

/**
 * The backend subscriber's identity: a service account (viewer on project `bench`) and an API key,
 * as an operator would make them. A fresh account per start: a key is shown only once, so one
 * made before a restart cannot be read back.
 */
async function createBenchBackend(apiPort: number, ca: string, adminToken: string): Promise<{ username: string; password: string; filter: string }> {
  const id = `bench-${randomBytes(4).toString('hex')}`;
  await apiCall(apiPort, ca, adminToken, 'POST', '/v1/projects/bench/serviceAccounts', { id, bindings: [{ role: 'viewer', scope: 'projects/bench' }] });
  const key = (await apiCall(apiPort, ca, adminToken, 'POST', `/v1/projects/bench/serviceAccounts/${id}/keys`, {})) as { apiKey: string };
  return { username: `bench/${id}`, password: key.apiKey, filter: 'registries/bench/devices/+/events' };
}

/** Keyway's registry for the devices with certificates: its CA credential is the bench's root. */
export const X509_REGISTRY = 'bench-x509';

export function mosquittoAvailable(): boolean {
  return spawnSync('/usr/sbin/mosquitto', ['-h']).error === undefined;
}

/**
 * Mosquitto 2 with a TLS 1.2+ listener serving the same certificate Keyway uses and, given
 * `deviceCaPem`, a second one just like it that requires a client certificate chaining to that
 * CA (storm-x509). Mosquitto has no per-device certificate registration: chain verification is
 * all it checks, and the certificate's CN becomes the user name.
 */
export async function startMosquitto(pkiDir: string, deviceCaPem?: string): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-bench-mosquitto-'));
  const port = await freePort();
  const certificatePort = deviceCaPem === undefined ? undefined : await freePort();
  const websocketPort = await freePort();
  const deviceCaFile = join(dir, 'device-ca.crt');
  if (deviceCaPem !== undefined) writeFileSync(deviceCaFile, deviceCaPem);
  const conf = join(dir, 'mosquitto.conf');
  // TLS settings are per listener: both get the same server certificate, versions and ciphers.
  const serverTls = [
    `certfile ${join(pkiDir, 'server.crt')}`,
    `keyfile ${join(pkiDir, 'server.key')}`,
    'tls_version tlsv1.2',
  ];
  writeFileSync(
    conf,
    [
      // Keep root when started as root, so the 0600 key stays readable; ignored otherwise.
      'user root',
      'per_listener_settings false',
      'allow_anonymous true',
      'persistence false',
      'log_dest none',
      `listener ${port} 127.0.0.1`,
      `cafile ${join(pkiDir, 'ca.crt')}`,
      ...serverTls,
      ...(certificatePort === undefined
        ? []
        : [`listener ${certificatePort} 127.0.0.1`, `cafile ${deviceCaFile}`, ...serverTls, 'require_certificate true', 'use_identity_as_username true']),
      // Mosquitto 2.0 binds a websockets listener on every interface, whatever address it is given.
      `listener ${websocketPort}`,
      'protocol websockets',
      ...serverTls,
      'max_queued_messages 100000',
      // Keyway's window of unacknowledged QoS 1 deliveries per connection (limits.maxInflight).
      'max_inflight_messages 1024',
      '',
    ].join('\n'),
  );
  chmodSync(conf, 0o600);
  const child = track(spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] }));
  const ca = readFileSync(join(pkiDir, 'ca.crt'), 'utf8');
  await waitForTls(port, ca);
  // (The certificate listener refuses a handshake without a client certificate; its port is bound with the first.)
  if (child.pid === undefined || child.exitCode !== null) throw new Error('mosquitto exited while starting');
  return {
    name: 'mosquitto',
    port,
    pid: child.pid,
    ca,
    device: async (id) => ({ clientId: id, topic: `/devices/${id}/events` }),
    backend: async () => ({ filter: '/devices/+/events' }),
    websocket: { port: websocketPort, path: '/mqtt' },
    ...(certificatePort === undefined ? {} : { certificates: { port: certificatePort, device: (id: string) => ({ clientId: id, topic: `/devices/${id}/events` }) } }),
    stop: () => stopProcess(child),
  };
}
