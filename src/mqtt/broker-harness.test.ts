/**
 * The broker test harness, shared by the broker's test files: the broker over real TLS, with the
 * real device manager on a temporary SQLite store, real device keys and real JWTs. Clients are
 * mqtt.js (what devices and backends run, MQTT 3.1.1 or 5) and, where a test must control every
 * byte or withhold an acknowledgement, a raw TLS socket speaking mqtt-packet. It holds no tests.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import pino, { type Logger } from 'pino';
import { LocalBus } from '../bus/local-bus.js';
import type { DeviceName, RegistryName } from '../domain/names.js';
import { BOOTSTRAP_ADMIN } from '../domain/roles.js';
import { generateApiKey } from '../identity/api-key.js';
import { signDeviceJwt } from '../identity/device-jwt.js';
import { fingerprintOf } from '../identity/public-key.js';
import { ensureDevelopmentPki, type ServerTlsMaterial } from '../pki/development-ca.js';
import { DeviceManagerService } from '../registry/device-manager-service.js';
import { PolicyService } from '../registry/policy-service.js';
import { ServiceAccountService } from '../registry/service-accounts.js';
import type { DeviceGateway } from '../registry/device-manager.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';
import { Broker, type BrokerOptions } from './broker.js';
import { RawClient } from '../../test/support/raw-client.js';
import type { BrokerLimits } from './limits.js';

export const PROJECT = 'acme';
export const LOCATION = 'europe-west1';
export const REGISTRY = 'fleet';
export const REG: RegistryName = { project: PROJECT, location: LOCATION, registry: REGISTRY };
/**
 * The backend subscribers' service account (admin on the harness's project) and its API key, the
 * same in every harness of the process: each store gets the key's hash.
 */
export const BACKEND_ACCOUNT = 'backend';
export const BACKEND_USER = `${PROJECT}/${BACKEND_ACCOUNT}`;
const BACKEND_API_KEY = generateApiKey();
export const BACKEND_KEY = BACKEND_API_KEY.key;

const dir = mkdtempSync(join(tmpdir(), 'keyway-mqtt-'));
export let pki: ServerTlsMaterial;
let dbCounter = 0;

let pkiReady: Promise<ServerTlsMaterial> | undefined;
// One temporary directory per test process; no hooks here, so importing files keep their own.
process.once('exit', () => rmSync(dir, { recursive: true, force: true }));

// ---- harness -----------------------------------------------------------------------------------

export interface Harness {
  readonly broker: Broker;
  readonly port: number;
  /** The development open listener's port, when one was asked for. */
  readonly openPort: number | undefined;
  /** The ALPN `mqtt` listener's port, when one was asked for. */
  readonly alpnPort: number | undefined;
  readonly service: DeviceManagerService;
  /** The real service-account service behind backend logins (BACKEND_USER is admin of PROJECT). */
  readonly accounts: ServiceAccountService;
  /** The real policy service the broker compiles device policies with. */
  readonly policies: PolicyService;
  readonly store: Store;
  close(): Promise<void>;
}

export async function startBroker(
  limits: Partial<BrokerLimits> = {},
  /** Failure injection around the real device manager. */
  wrap: (service: DeviceManagerService) => DeviceGateway = (service) => service,
  /** `logger` receives the broker's and the device manager's lines (silent by default). */
  extra: Pick<BrokerOptions, 'openListener' | 'alpnListener' | 'audit' | 'quotas'> & { readonly logger?: Logger } = {},
): Promise<Harness> {
  pki = await (pkiReady ??= ensureDevelopmentPki(join(dir, 'pki'), []));
  const store = await openSqliteStore(join(dir, `db-${++dbCounter}`, 'keyway.db'));
  const bus = new LocalBus();
  const { logger = pino({ level: process.env.KEYWAY_TEST_LOG ?? 'silent' }), ...listeners } = extra;
  const service = new DeviceManagerService({ store, bus, flushIntervalMs: 60_000, logger: logger.child({ module: 'registry' }) });
  await service.createRegistry(REG, REGISTRY, {});
  const accounts = new ServiceAccountService({ store: store.accounts, bus });
  const bindings = [{ role: 'admin', scope: { kind: 'project', project: PROJECT } }] as const;
  await accounts.create(PROJECT, BACKEND_ACCOUNT, { bindings }, BOOTSTRAP_ADMIN);
  const now = new Date();
  await store.accounts.insertKey({
    keyId: BACKEND_API_KEY.keyId,
    project: PROJECT,
    accountId: BACKEND_ACCOUNT,
    hash: BACKEND_API_KEY.hash,
    createdAt: now,
    expiresAt: new Date(now.getTime() + 86_400_000),
  });
  const policies = new PolicyService({ store, bus });
  const broker = new Broker({
    gateway: wrap(service),
    policies: { compile: async (device, certSubject) => (await policies.compileForDevice(device.numId, certSubject, device.name))?.compiled },
    bus,
    backends: { authenticate: (username, key) => accounts.authenticateBackend(username, key) },
    tls: { cert: pki.certPem, key: pki.keyPem },
    host: '127.0.0.1',
    port: 0,
    logger: logger.child({ module: 'mqtt' }),
    limits,
    ...listeners,
  });
  const { port, openPort, alpnPort } = await broker.start();
  return {
    broker,
    port,
    openPort,
    alpnPort,
    service,
    accounts,
    policies,
    store,
    close: async () => {
      await broker.close();
      await accounts.close();
      await service.close();
      await bus.close();
      await store.close();
    },
  };
}

export interface TestDevice {
  readonly id: string;
  readonly name: DeviceName;
  readonly clientId: string;
  readonly privatePem: string;
  readonly fingerprint: string;
  token(lifetimeSeconds?: number): Promise<string>;
}

export function keyPair(type: 'es256' | 'rs256' = 'es256') {
  const pair =
    type === 'es256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    fingerprint: fingerprintOf(pair.publicKey),
    format: type === 'es256' ? ('ES256_PEM' as const) : ('RSA_PEM' as const),
  };
}

/** Another registry of the harness's project and location (startBroker creates REGISTRY). */
export async function addRegistry(h: Harness, id: string): Promise<void> {
  await h.service.createRegistry(REG, id, {});
}

export async function addDevice(
  h: Harness,
  id: string,
  options: { type?: 'es256' | 'rs256'; config?: string; registry?: string; metadata?: Record<string, string> } = {},
): Promise<TestDevice> {
  const keys = keyPair(options.type);
  const registry = options.registry ?? REGISTRY;
  const reg: RegistryName = { ...REG, registry };
  const name: DeviceName = { ...reg, device: id };
  await h.service.createDevice(reg, id, {
    credentials: [{ publicKey: { format: keys.format, key: keys.publicPem } }],
    ...(options.config !== undefined ? { configData: Buffer.from(options.config) } : {}),
    ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
  });
  return {
    id,
    name,
    clientId: `projects/${PROJECT}/locations/${LOCATION}/registries/${registry}/devices/${id}`,
    privatePem: keys.privatePem,
    fingerprint: keys.fingerprint,
    token: (lifetimeSeconds = 3600) => signDeviceJwt(keys.privatePem, { audience: PROJECT, lifetimeSeconds }),
  };
}

export const lastError = async (h: Harness, d: TestDevice) => {
  await h.service.flush();
  return (await h.service.getDevice(d.name)).lastErrorStatus;
};

// ---- clients -----------------------------------------------------------------------------------

export function mqttConnect(port: number, options: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({
      protocol: 'mqtts',
      host: '127.0.0.1',
      servername: 'localhost',
      port,
      ca: [pki.caCertPem],
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...options,
    });
    client.once('connect', () => resolve(client));
    client.once('error', (e) => {
      client.end(true);
      reject(e);
    });
  });
}

export async function connectDevice(h: Harness, d: TestDevice, options: IClientOptions = {}): Promise<MqttClient> {
  return mqttConnect(h.port, { clientId: d.clientId, username: 'unused', password: await d.token(), ...options });
}

export function connectBackend(h: Harness, clientId = `backend-${randomBytes(4).toString('hex')}`): Promise<MqttClient> {
  return mqttConnect(h.port, { clientId, username: BACKEND_USER, password: BACKEND_KEY });
}

/** Resolves when the server closed the client's connection; fails if it stays open too long. */
export const closed = (client: MqttClient, timeoutMs = 5000): Promise<void> =>
  new Promise((resolve, reject) => {
    if (!client.connected) return resolve();
    const timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms`)), timeoutMs);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });

export const refusedWith = (code: number) => (e: unknown) => (e as { code?: number }).code === code;

export interface Message {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: number;
}

/** Every message a client receives, in order. */
export function inbox(client: MqttClient): Message[] {
  const messages: Message[] = [];
  client.on('message', (topic, payload, packet) => messages.push({ topic, payload, qos: packet.qos }));
  return messages;
}

export { eventually } from '../../test/support/eventually.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function rawDevice(h: Harness, d: TestDevice, keepalive = 60): Promise<RawClient> {
  const c = await RawClient.open(h.port, pki.caCertPem);
  const connack = await c.connect(d.clientId, await d.token(), keepalive);
  assert.equal(connack.returnCode, 0);
  return c;
}

/**
 * The device manager with one of its async decisions held open on request: once `method` has
 * decided, the next call after `holdNext()` waits until released, so a test can make something
 * land between a decision and its use (revocations, registry changes, unbinds).
 */
export function holdingDecisions<M extends 'authenticateJwt' | 'authorizeGatewayDevice'>(
  method: M,
): { wrap: (service: DeviceManagerService) => DeviceGateway; holdNext: () => { arrived: Promise<void>; release: () => void } } {
  let held: { readonly arrive: () => void; readonly released: Promise<void> } | undefined;
  const holdNext = (): { arrived: Promise<void>; release: () => void } => {
    let arrive!: () => void;
    let release!: () => void;
    const arrived = new Promise<void>((r) => (arrive = r));
    held = { arrive, released: new Promise<void>((r) => (release = r)) };
    return { arrived, release };
  };
  const wrap = (service: DeviceManagerService): DeviceGateway =>
    new Proxy(service, {
      get(target, property, receiver) {
        if (property === method) {
          return async (...args: unknown[]) => {
            const result: unknown = await (target[method] as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            const hold = held;
            held = undefined;
            if (hold) {
              hold.arrive();
              await hold.released;
            }
            return result;
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  return { wrap, holdNext };
}
