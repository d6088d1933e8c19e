/**
 * Fuzzes the broker's packet handling over real TLS, against the real device manager on a
 * temporary SQLite store: a catalogue of malformed input (every packet type out of place, reserved
 * bits, bad remaining lengths, invalid UTF-8, MQTT 5 properties where they do not belong, garbage
 * after CONNECT) and a seeded number of random and mutated packets. For each case the connection
 * must end (promptly, for input known to be malformed), whatever the broker sends must be
 * well-formed with the right CONNACK codes, nothing may escape as an uncaught exception, an
 * unhandled rejection or an error log line, and a fresh device must still be served afterwards.
 *
 * FUZZ_CASES=n runs n random cases (default 300); FUZZ_SEED=n replays a run, FUZZ_SEED=random draws one;
 * FUZZ_ONLY=i runs only random case #i of that seed; FUZZ_KNOWN=1 also runs the cases of known broker defects, skipped otherwise.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqttPacket from 'mqtt-packet';
import pino from 'pino';
import { LocalBus } from '../bus/local-bus.js';
import type { RegistryName } from '../domain/names.js';
import { generateApiKey } from '../identity/api-key.js';
import { ServiceAccountService } from '../registry/service-accounts.js';
import { BOOTSTRAP_ADMIN } from '../domain/roles.js';
import { signDeviceJwt } from '../identity/device-jwt.js';
import { ensureDevelopmentPki, type ServerTlsMaterial } from '../pki/development-ca.js';
import { DeviceManagerService } from '../registry/device-manager-service.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';
import { RawClient } from '../../test/support/raw-client.js';
import { Broker } from './broker.js';
import { catalogue, Prng, randomCase, rawConnect, type FuzzCase, type Identity } from './fuzz-cases.js';

const REG: RegistryName = { project: 'acme', location: 'europe-west1', registry: 'fleet' };
const BACKEND_ACCOUNT = 'fuzz-backend';
const BACKEND_USER = `${REG.project}/${BACKEND_ACCOUNT}`;
const BACKEND_API_KEY = generateApiKey();
const CASES = Number(process.env.FUZZ_CASES ?? 300);
const SEED = process.env.FUZZ_SEED === 'random' ? randomInt(2 ** 31) : Number(process.env.FUZZ_SEED ?? 0x5eed);
/** Cases run on this many connections at once, each lane with its own device. */
const LANES = 96;

// Timers short enough that input the broker must wait on (a truncated packet) ends soon, and long
// enough that a close within PROMPT_MS can only be the broker's answer to the input.
const CONNECT_TIMEOUT_MS = 2500;
const IDLE_LIMIT_MS = 2500;
const PROMPT_MS = 1500;
/** Connect timeout or keep-alive (1 s × 1.5), then the close grace, with room to spare. */
const END_MS = 6000;

// Packet types a server may send (MQTT 3.1.1 §2.2.1; DISCONNECT and AUTH only in MQTT 5).
const CONNACK = 2;
const DISCONNECT = 14;
const SERVER_TYPES = new Set([CONNACK, 3, 4, 9, 11, 13]);
const SERVER_TYPES_V5 = new Set([...SERVER_TYPES, DISCONNECT, 15]);

/**
 * Catalogue cases that expose defects of the broker, kept out of the passing run until they are
 * fixed: each pattern names the cases, with what goes wrong. None are open.
 */
const KNOWN_FINDINGS: ReadonlyArray<readonly [RegExp, string]> = [];

const knownFinding = (c: FuzzCase): string | undefined => KNOWN_FINDINGS.find(([pattern]) => pattern.test(c.name))?.[1];

/**
 * DISCONNECT reasons that answer a bad packet (MQTT 5 §2.4): malformed, protocol error, not
 * authorised (AUTH), topic name invalid, receive maximum exceeded, topic alias invalid, packet too
 * large, retain or QoS not supported.
 */
const MALFORMED_DISCONNECT = new Set([0x81, 0x82, 0x87, 0x90, 0x93, 0x94, 0x95, 0x9a, 0x9b]);

interface ServerFrame {
  readonly type: number;
  readonly body: Buffer;
}

/** Splits what the server sent into packets; `partial` when it ends inside one. */
function framesOf(bytes: Buffer): { frames: ServerFrame[]; partial: boolean } {
  const frames: ServerFrame[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    let length = 0;
    let multiplier = 1;
    let at = pos + 1;
    for (;;) {
      const b = bytes[at++];
      if (b === undefined || at - pos > 5) return { frames, partial: true };
      length += (b & 0x7f) * multiplier;
      multiplier *= 128;
      if ((b & 0x80) === 0) break;
    }
    if (at + length > bytes.length) return { frames, partial: true };
    frames.push({ type: (bytes[pos] as number) >> 4, body: bytes.subarray(at, at + length) });
    pos = at + length;
  }
  return { frames, partial: false };
}

/** A packet type, with the reason code of a CONNACK or DISCONNECT. */
const describeFrame = (f: ServerFrame): string =>
  f.type === CONNACK ? `${f.type}(0x${(f.body[1] ?? 0).toString(16)})` : f.type === DISCONNECT ? `${f.type}(0x${(f.body[0] ?? 0).toString(16)})` : String(f.type);

const hex = (chunks: readonly Buffer[]): string => {
  const all = Buffer.concat(chunks).toString('hex');
  return all.length > 400 ? `${all.slice(0, 400)}…` : all;
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function closedWithin(raw: RawClient, ms: number): Promise<boolean> {
  try {
    await raw.closedWithin(ms);
    return true;
  } catch {
    return false;
  }
}

describe('MQTT packet fuzzing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-fuzz-'));
  let pki: ServerTlsMaterial;
  let store: Store;
  let service: DeviceManagerService;
  let bus: LocalBus;
  let accounts: ServiceAccountService | undefined;
  let broker: Broker;
  let port: number;
  const identities: Identity[] = [];
  /** Log lines at error level or above: a handler threw, or the listener failed. */
  const errorLines: string[] = [];
  const escaped: string[] = [];
  const onUncaught = (e: unknown): void => void escaped.push(`uncaughtException: ${String(e)}`);
  const onUnhandled = (e: unknown): void => void escaped.push(`unhandledRejection: ${String(e)}`);

  before(async () => {
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUnhandled);
    pki = await ensureDevelopmentPki(join(dir, 'pki'), []);
    store = await openSqliteStore(join(dir, 'keyway.db'));
    bus = new LocalBus();
    service = new DeviceManagerService({ store, bus, flushIntervalMs: 60_000 });
    await service.createRegistry(REG, REG.registry, {});
    accounts = new ServiceAccountService({ store: store.accounts, bus });
    await accounts.create(REG.project, BACKEND_ACCOUNT, { bindings: [{ role: 'viewer', scope: { kind: 'project', project: REG.project } }] }, BOOTSTRAP_ADMIN);
    const now = new Date();
    const { keyId, hash } = BACKEND_API_KEY;
    await store.accounts.insertKey({ keyId, hash, project: REG.project, accountId: BACKEND_ACCOUNT, createdAt: now, expiresAt: new Date(now.getTime() + 86_400_000) });
    const backends = accounts;
    broker = new Broker({
      gateway: service,
      bus,
      backends: { authenticate: (username, key) => backends.authenticateBackend(username, key) },
      tls: { cert: pki.certPem, key: pki.keyPem },
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'error' }, { write: (line: string) => void errorLines.push(line) }),
      limits: { connectTimeoutMs: CONNECT_TIMEOUT_MS, idleLimitMs: IDLE_LIMIT_MS, closeGraceMs: 500 },
    });
    ({ port } = await broker.start());
    for (let lane = 0; lane < LANES; lane++) {
      const deviceId = `fuzz-${lane}`;
      const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      await service.createDevice(REG, deviceId, {
        credentials: [{ publicKey: { format: 'ES256_PEM', key: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString() } }],
      });
      const privatePem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      identities.push({
        deviceId,
        clientId: `projects/${REG.project}/locations/${REG.location}/registries/${REG.registry}/devices/${deviceId}`,
        token: await signDeviceJwt(privatePem, { audience: REG.project, lifetimeSeconds: 3600 }),
        backendUser: BACKEND_USER,
        backendKey: BACKEND_API_KEY.key,
        backendClientId: `fuzz-backend-${lane}`,
      });
    }
  });

  after(async () => {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUnhandled);
    await broker?.close();
    await service?.close();
    await accounts?.close();
    await bus?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs one case on a fresh connection; returns what went wrong, if anything. */
  async function runCase(c: FuzzCase, id: Identity): Promise<string[]> {
    const problems: string[] = [];
    const raw = await RawClient.open(port, pki.caCertPem);
    const remote = `"remote":"127.0.0.1:${raw.socket.localPort}"`;
    const subscriber = c.subscriber ? await subscribeV5(id) : undefined;
    try {
      // Keep-alive 0 where the input must close the connection by itself, 1 s where it may not.
      const keepalive = c.expect === 'close' ? 0 : 1;
      if (c.phase !== 'pre') {
        const connack = await raw.connect(
          c.phase === 'device' ? id.clientId : id.backendClientId,
          c.phase === 'device' ? id.token : id.backendKey,
          keepalive,
          c.phase === 'device' ? 'unused' : id.backendUser,
        );
        if (connack.returnCode !== 0) {
          problems.push(`the ${c.phase} CONNECT was refused with ${connack.returnCode}`);
          return problems;
        }
      }
      for (const chunk of c.chunks) {
        raw.socket.write(chunk);
        await new Promise(setImmediate);
      }
      const ended = await closedWithin(raw, c.expect === 'close' ? PROMPT_MS : END_MS);

      const { frames: all, partial } = framesOf(Buffer.concat(raw.bytes));
      if (partial) problems.push('the server sent a partial packet');
      const frames = c.phase === 'pre' ? all : all.slice(1);
      const allowed = c.v5 ? SERVER_TYPES_V5 : SERVER_TYPES;
      let accepted = false;
      frames.forEach((f, i) => {
        if (!allowed.has(f.type)) problems.push(`the server sent packet type ${f.type}`);
        if (f.type === CONNACK) {
          const code = f.body[1] ?? -1;
          if (c.phase !== 'pre' || i !== 0) problems.push('a CONNACK that answers no CONNECT');
          else if (!c.connack.includes(code)) problems.push(`CONNACK ${code} (0x${code.toString(16)}), expected one of ${c.connack.join(', ')}`);
          else if (code !== 0 && frames.length > 1) problems.push('packets after a refusing CONNACK');
          accepted ||= code === 0;
        }
        if (f.type === DISCONNECT) {
          const code = f.body[0] ?? 0;
          if (c.expect === 'close' ? !MALFORMED_DISCONNECT.has(code) : code < 0x80) problems.push(`DISCONNECT 0x${code.toString(16)} after bad input`);
        }
      });
      if (c.answers) {
        // A subsequence: config deliveries and the like may come between.
        let next = 0;
        for (const f of frames) if (f.type === c.answers[next]) next++;
        if (next < c.answers.length) problems.push(`answered with packet types ${frames.map(describeFrame).join(', ')}, expected ${c.answers.join(', ')} in order`);
      }
      if (c.expect === 'close') {
        if (!ended) problems.push(`still open ${PROMPT_MS} ms after malformed input`);
        const answers = frames.filter((f) => f.type !== CONNACK && f.type !== DISCONNECT);
        if (answers.length > 0) problems.push(`answered malformed input with packet type(s) ${answers.map((f) => f.type).join(', ')}`);
      } else if (!ended && !accepted) {
        // A CONNECT that kept valid credentials may be served as long as its keep-alive says.
        problems.push(`still open ${END_MS} ms after the input`);
      }
    } finally {
      raw.end();
      subscriber?.end();
      problems.push(...takeErrorLines((line) => line.includes(remote)));
    }
    return problems;
  }

  /** An MQTT 5 backend subscribed to every device's events, once its SUBACK arrived. */
  async function subscribeV5(id: Identity): Promise<RawClient> {
    const sub = await RawClient.open(port, pki.caCertPem);
    sub.send(
      mqttPacket.generate(
        { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: `${id.backendClientId}-v5`, keepalive: 0, username: id.backendUser, password: Buffer.from(id.backendKey) },
        { protocolVersion: 5 },
      ),
    );
    sub.send(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'registries/fleet/devices/+/events/#', qos: 0 }] }, { protocolVersion: 5 }));
    const deadline = Date.now() + 5000;
    while (!framesOf(Buffer.concat(sub.bytes)).frames.some((f) => f.type === 9)) {
      if (sub.isClosed || Date.now() > deadline) throw new Error('the MQTT 5 subscriber got no SUBACK');
      await sleep(10);
    }
    return sub;
  }

  /** Removes and describes the error log lines that match. */
  function takeErrorLines(match: (line: string) => boolean): string[] {
    const taken = errorLines.filter(match);
    if (taken.length === 0) return [];
    const rest = errorLines.filter((line) => !match(line));
    errorLines.splice(0, errorLines.length, ...rest);
    return taken.map((line) => `error logged: ${line.trim().slice(0, 1500)}`);
  }

  /** A fresh device connection is served: CONNACK 0 and a PINGRESP. */
  async function stillServes(id: Identity): Promise<string[]> {
    const raw = await RawClient.open(port, pki.caCertPem);
    try {
      const connack = await raw.connect(id.clientId, id.token, 0);
      if (connack.returnCode !== 0) return [`afterwards a valid device got CONNACK ${connack.returnCode}`];
      raw.send({ cmd: 'pingreq' });
      await raw.next('pingresp', 2000);
      return [];
    } catch (e) {
      return [`afterwards a valid device was not served: ${(e as Error).message}`];
    } finally {
      raw.end();
    }
  }

  /** Runs cases on LANES connections at once; case i runs on lane i mod LANES, so a seed replays exactly. */
  async function run(build: (index: number, id: Identity) => FuzzCase, count: number, only?: number): Promise<string[]> {
    const failures: string[] = [];
    await Promise.all(
      identities.map(async (id, lane) => {
        for (let i = lane; i < count; i += LANES) {
          if (only !== undefined && i !== only) continue;
          const c = build(i, id);
          const problems = [...(await runCase(c, id)), ...(await stillServes(id))];
          if (escaped.length > 0) problems.push(...escaped.splice(0));
          if (problems.length > 0) failures.push(`${c.name} [seed ${SEED}, lane ${lane}] ${hex(c.chunks)}\n    ${problems.join('\n    ')}`);
        }
      }),
    );
    const unattributed = takeErrorLines(() => true);
    if (unattributed.length > 0) failures.push(`error log lines of no case:\n    ${unattributed.join('\n    ')}`);
    return failures;
  }

  async function noConnectionsLeft(): Promise<void> {
    const deadline = Date.now() + 3000;
    while (broker.connectionCount > 0 && Date.now() < deadline) await sleep(20);
    assert.equal(broker.connectionCount, 0, 'connections left open after the cases');
  }

  const cataloguePart = (id: Identity, pick: (c: FuzzCase) => boolean): FuzzCase[] => catalogue(id).filter(pick);

  test('a catalogue of malformed packets ends each connection with the right codes and never the broker', async () => {
    const pick = (c: FuzzCase): boolean => knownFinding(c) === undefined;
    const size = cataloguePart(identities[0] as Identity, pick).length;
    const failures = await run((i, id) => cataloguePart(id, pick)[i] as FuzzCase, size);
    if (failures.length > 0) assert.fail(`${failures.length} of ${size} cases failed:\n${failures.join('\n')}`);
    await noConnectionsLeft();
  });

  test(`${CASES} seeded random and mutated packets (FUZZ_SEED=${SEED})`, async () => {
    const only = process.env.FUZZ_ONLY === undefined ? undefined : Number(process.env.FUZZ_ONLY);
    const failures = await run((i, id) => randomCase(new Prng((SEED ^ Math.imul(i + 1, 0x9e3779b9)) >>> 0), id, i), CASES, only);
    if (failures.length > 0) assert.fail(`${failures.length} of ${CASES} cases failed (FUZZ_SEED=${SEED}):\n${failures.join('\n')}`);
    await noConnectionsLeft();
  });

  for (const [pattern, reason] of KNOWN_FINDINGS) {
    test(`known finding: ${reason}`, { skip: process.env.FUZZ_KNOWN ? false : 'known broker defect; FUZZ_KNOWN=1 runs it' }, async () => {
      const pick = (c: FuzzCase): boolean => pattern.test(c.name);
      const size = cataloguePart(identities[0] as Identity, pick).length;
      assert.ok(size > 0, `no catalogue case matches ${String(pattern)}`);
      const failures = await run((i, id) => cataloguePart(id, pick)[i] as FuzzCase, size);
      if (failures.length > 0) assert.fail(`${failures.length} of ${size} cases failed:\n${failures.join('\n')}`);
    });
  }

  test('the fuzzer can fail: a CONNECT with credentials is not malformed, and the oracle says so', async () => {
    const id = identities[0] as Identity;
    const problems = await runCase(
      { name: 'valid CONNECT', phase: 'pre', chunks: [rawConnect(id.clientId, 'unused', id.token, 0)], expect: 'close', connack: [5], v5: false },
      id,
    );
    assert.ok(problems.some((p) => p.startsWith('CONNACK 0')), problems.join('; '));
    assert.ok(problems.some((p) => p.startsWith('still open')), problems.join('; '));
  });
});
