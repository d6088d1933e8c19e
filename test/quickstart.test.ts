/**
 * The README's quick start, as a user types it: the `keyway` CLI against a running server, and
 * Mosquitto's own clients as the device and the backend.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from './support/server.js';

const root = resolve(fileURLToPath(import.meta.url), '..', '..');
const cliMain = join(root, 'src', 'cli', 'main.ts');
const tsx = import.meta.resolve('tsx');
const hasMosquittoClients = spawnSync('mosquitto_pub', ['--help']).error === undefined;
const hasCurl = spawnSync('curl', ['--version']).error === undefined;

let work: string;
let ts: TestServer;
let env: NodeJS.ProcessEnv;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'keyway-quickstart-'));
  ts = await startTestServer({ dataDir: join(work, 'keyway-data') });
  const { KEYWAY_API_URL: _u, KEYWAY_ADMIN_TOKEN: _t, KEYWAY_PROJECT: _p, KEYWAY_REGION: _r, KEYWAY_DATA_DIR: _d, ...rest } = process.env;
  env = { ...rest, KEYWAY_API_URL: `https://localhost:${ts.server.apiPort}` };
});
after(async () => {
  await ts.close();
  rmSync(work, { recursive: true, force: true });
});

function keyway(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    execFile(process.execPath, ['--import', tsx, cliMain, ...args], { cwd: work, env }, (error, stdout, stderr) => {
      resolveRun({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function ok(...args: string[]): Promise<string> {
  const r = await keyway(...args);
  assert.equal(r.code, 0, `keyway ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Runs a Mosquitto client until it has received `count` messages; resolves with what it printed. */
function mosquittoSub(args: string[]): { output: Promise<string>; ready: Promise<void> } {
  // Line-buffered, so the SUBACK shows as it happens rather than at exit.
  const child = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-d', ...args], { cwd: work });
  let out = '';
  let err = '';
  let markReady: () => void;
  const ready = new Promise<void>((r) => (markReady = r));
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  // With -d, mosquitto_sub reports the SUBACK on stdout.
  const poll = setInterval(() => {
    if (/SUBACK/.test(out)) {
      clearInterval(poll);
      markReady();
    }
  }, 20);
  const output = new Promise<string>((r, reject) =>
    child.on('close', (code) => {
      clearInterval(poll);
      if (code === 0) r(out);
      else reject(new Error(`mosquitto_sub exited ${code}: ${err}${out}`));
    }),
  );
  return { output, ready };
}

test('keys, registry, device, telemetry, config, command and describe, as in the README', { skip: hasMosquittoClients ? false : 'mosquitto_pub not installed (apt-get install mosquitto-clients)' }, async () => {
  await ok('keys', 'generate', '--type', 'es256', '--out', './dev1');
  assert.equal(statSync(join(work, 'dev1', 'private.pem')).mode & 0o777, 0o600);
  await ok('registries', 'create', 'fleet', '--project', 'demo', '--region', 'europe-west1');
  await ok('devices', 'create', 'dev1', '--registry', 'fleet', '--public-key', 'path=./dev1/public.pem,type=es256');

  const token = (await ok('keys', 'jwt', '--private-key', './dev1/private.pem', '--project', 'demo')).trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const common = ['--cafile', 'keyway-data/pki/ca.crt', '-h', 'localhost', '-p', String(ts.mqttPort), '-V', 'mqttv311'];
  const clientId = 'projects/demo/locations/europe-west1/registries/fleet/devices/dev1';

  // The backend listens with a service account's API key, made with the CLI (printed once on stdout).
  await ok('service-accounts', 'create', 'ingest', '--role', 'viewer:registry=fleet', '--project', 'demo', '--region', 'europe-west1');
  const apiKey = (await ok('service-accounts', 'keys', 'create', 'ingest', '--project', 'demo')).trim();
  assert.match(apiKey, /^kwk_[0-9a-f]{16}_/);
  const backend = mosquittoSub([...common, '-i', 'backend-1', '-u', 'demo/ingest', '-P', apiKey, '-t', 'registries/fleet/devices/+/events/#', '-C', '1', '-v']);
  await backend.ready;
  // Asynchronously: the server runs in this very process.
  const pub = await new Promise<{ code: number; stderr: string }>((done) =>
    execFile('mosquitto_pub', [...common, '-i', clientId, '-u', 'unused', '-P', token, '-t', '/devices/dev1/events', '-m', 'hello', '-q', '1'], { cwd: work }, (error, _out, stderr) =>
      done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stderr }),
    ),
  );
  assert.equal(pub.code, 0, pub.stderr);
  assert.match(await backend.output, /registries\/fleet\/devices\/dev1\/events hello/);

  if (hasCurl) {
    // The same event over HTTPS, as the README's curl sends it.
    const url = `https://localhost:${ts.server.httpPort}/v1/${clientId}:publishEvent`;
    const curl = await new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
      execFile('curl', ['-sS', '--cacert', 'keyway-data/pki/ca.crt', '-H', `authorization: Bearer ${token}`, '-d', '{"binary_data": "aGVsbG8="}', url], { cwd: work }, (error, stdout, stderr) =>
        done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    assert.equal(curl.code, 0, curl.stderr);
    assert.equal(curl.stdout, '{}');
  }

  // The device listens for its config and commands (-C 2: the current config, then the command).
  const device = mosquittoSub([...common, '-i', clientId, '-u', 'unused', '-P', token, '-t', '/devices/dev1/config', '-t', '/devices/dev1/commands/#', '-q', '1', '-C', '3', '-v']);
  await device.ready;
  await ok('devices', 'configs', 'update', 'dev1', '--registry', 'fleet', '--config-data', '{"interval":10}');
  await new Promise((r) => setTimeout(r, 200));
  await ok('devices', 'commands', 'send', 'dev1', '--registry', 'fleet', '--command-data', 'reboot');
  const received = await device.output;
  assert.match(received, /\/devices\/dev1\/config \{"interval":10\}/);
  assert.match(received, /\/devices\/dev1\/commands reboot/);

  const described = JSON.parse(await ok('devices', 'describe', 'dev1', '--registry', 'fleet', '--format', 'json'));
  assert.ok(described.lastEventTime);
  assert.ok(described.lastConfigAckTime);
  assert.equal(described.config.version, '2');
  const human = await ok('devices', 'describe', 'dev1', '--registry', 'fleet');
  assert.match(human, /lastEventTime/);
});

test('CLI errors are clear and exit non-zero', async () => {
  let r = await keyway('devices', 'describe', 'nobody', '--registry', 'fleet', '--project', 'demo', '--region', 'europe-west1');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /NOT_FOUND/);
  r = await keyway('registries', 'create', 'x', '--project', 'demo', '--region', 'europe-west1');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /INVALID_ARGUMENT/);
  assert.doesNotMatch(r.stderr + r.stdout, new RegExp(ts.adminToken));
});
