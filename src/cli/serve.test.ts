import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { runCli, type CliResult } from './cli-test-kit.js';

/** `keyway` without an API: serve refuses before it starts anything. */
const cli = (argv: string[], env: NodeJS.ProcessEnv = {}, cwd = tmpdir()): Promise<CliResult> => runCli(argv, env, cwd);

test('serve --dev-open-listener refuses any address outside loopback, before starting', async () => {
  for (const address of ['0.0.0.0:1884', '192.168.1.20:1884', 'broker.example.com:1884', '[::]:1884']) {
    const r = await cli(['serve', '--dev-open-listener', address]);
    assert.equal(r.code, 2, `${address}: ${r.stderr}`);
    assert.match(r.stderr, /^ERROR: \(keyway\.serve\) --dev-open-listener: '.+' is not a loopback address/, address);
    assert.equal(r.stdout, '', address);
  }
  const malformed = await cli(['serve', '--dev-open-listener', '1884']);
  assert.equal(malformed.code, 2);
  assert.match(malformed.stderr, /--dev-open-listener: '1884' is not HOST:PORT/);
});

test('serve refuses a non-loopback open listener from KEYWAY_DEV_OPEN_LISTENER or the configuration file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'keyway-serve-'));
  try {
    const fromEnv = await cli(['serve', '--data-dir', 'data'], { KEYWAY_DEV_OPEN_LISTENER: '10.1.2.3:1884' }, dir);
    assert.equal(fromEnv.code, 1, fromEnv.stderr);
    assert.match(fromEnv.stderr, /^ERROR: \(keyway\.serve\) devOpenListener: '10\.1\.2\.3' is not a loopback address/);

    await writeFile(join(dir, 'keyway.json'), JSON.stringify({ devOpenListener: 'iot.example.com:1884' }));
    const fromFile = await cli(['serve', '--config', 'keyway.json', '--data-dir', 'data'], {}, dir);
    assert.equal(fromFile.code, 1, fromFile.stderr);
    assert.match(fromFile.stderr, /'iot\.example\.com' is not a loopback address/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('serve --dev-open-listener on loopback warns loudly and serves anonymous plaintext MQTT', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'keyway-serve-'));
  const main = resolve(fileURLToPath(import.meta.url), '..', 'main.ts');
  const args = ['serve', '--data-dir', join(dir, 'data'), '--mqtt-port', '0', '--http-port', '0', '--api-port', '0', '--dev-open-listener', '127.0.0.1:0'];
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), main, ...args], {
    cwd: dir,
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEYWAY_'))),
      KEYWAY_MQTT_HOST: '127.0.0.1',
      KEYWAY_HTTP_HOST: '127.0.0.1',
      KEYWAY_API_HOST: '127.0.0.1',
      KEYWAY_LOG_LEVEL: 'silent',
    },
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    let stdout = '';
    const warning = await new Promise<RegExpMatchArray>((resolveLine, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const m = /^WARNING: DEVELOPMENT OPEN LISTENER on mqtt:\/\/127\.0\.0\.1:(\d+): plaintext, anonymous, any topic\./m.exec(stdout);
        if (m) resolveLine(m);
      });
      void exited.then((code) => reject(new Error(`keyway serve exited (${code}) before the warning: ${stdout}`)));
    });
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${warning[1]}`, { clientId: 'anyone', reconnectPeriod: 0 });
    await client.endAsync();
  } finally {
    child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  }
});
