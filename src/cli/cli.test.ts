import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { TEST_ADMIN_TOKEN } from '../api/test-stack.js';
import type { ApiDevice } from '../api/wire-types.js';
import { ensureDevelopmentPki } from '../pki/development-ca.js';
import { cliTestKit } from './cli-test-kit.js';

describe('keyway CLI against a running admin API', () => {
  const kit = cliTestKit({ prefix: 'keyway-cli-' });
  const { cli, ok } = kit;

  it('walks through the first-device flow without repeating --project', async () => {
    await ok('keys generate --type es256 --out ./dev1');
    assert.equal((await stat(join(kit.work, 'dev1', 'private.pem'))).mode & 0o777, 0o600);

    const created = await ok('registries create fleet --project demo --region europe-west1 --enable-mqtt-config');
    assert.match(created.stderr, /Created registry \[fleet\]/);
    assert.deepEqual(JSON.parse(await readFile(join(kit.work, 'keyway-data', 'cli.json'), 'utf8')), { project: 'demo', region: 'europe-west1' });

    const dev = await ok('devices create dev1 --registry fleet --public-key path=./dev1/public.pem,type=es256 --metadata site=north');
    assert.match(dev.stderr, /Created device \[dev1\] \(numId \d+\)/);

    const described = await ok('devices describe dev1 --registry fleet');
    assert.match(described.stdout, /^id: dev1$/m);
    assert.match(described.stdout, /^name: projects\/demo\/locations\/europe-west1\/registries\/fleet\/devices\/\d+$/m);
    assert.match(described.stdout, /^numId: '\d+'$/m);
    assert.match(described.stdout, /^ {4}format: ES256_PEM$/m);
    assert.match(described.stdout, /^ {6}-----BEGIN PUBLIC KEY-----$/m);
    assert.match(described.stdout, /^ {2}site: north$/m);

    const asJson = JSON.parse((await ok('devices describe dev1 --registry fleet --format json')).stdout) as ApiDevice;
    assert.equal(asJson.id, 'dev1');
    assert.equal(typeof asJson.numId, 'string');
    assert.equal((await ok(`devices describe ${asJson.numId} --registry fleet --format json`)).stdout.includes('"id": "dev1"'), true);

    const listed = await ok('devices list --registry fleet');
    assert.match(listed.stdout, /^ID\s+NUM_ID\s+BLOCKED$/m);
    assert.match(listed.stdout, new RegExp(`^dev1\\s+${asJson.numId}$`, 'm'));

    const jwt = (await ok('keys jwt --private-key ./dev1/private.pem --lifetime 20m')).stdout.trim();
    const claims = decodeJwt(jwt);
    assert.equal(claims.aud, 'demo');
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 1200);
  });

  it('updates configs, lists versions and states, and reports command preconditions', async () => {
    await ok('registries create cfg --project demo --region europe-west1');
    await ok('devices create thermo --registry cfg');
    const updated = await ok("devices configs update thermo --registry cfg --config-data '{\"target\":21}'");
    assert.match(updated.stdout, /^version: '2'$/m);
    await writeFile(join(kit.work, 'config.bin'), Buffer.from([0, 1, 2, 255]));
    await ok('devices configs update thermo --registry cfg --config-file config.bin --version-to-update 2');
    const versions = await ok('devices configs list thermo --registry cfg');
    assert.deepEqual(versions.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0]), ['3', '2', '1']);
    const asJson = JSON.parse((await ok('devices configs list thermo --registry cfg --format json --limit 1')).stdout) as Array<{ binaryData: string }>;
    assert.equal(asJson.length, 1);
    assert.deepEqual(Buffer.from(asJson[0]?.binaryData ?? '', 'base64'), Buffer.from([0, 1, 2, 255]));

    const stale = await cli('devices configs update thermo --registry cfg --config-data x --version-to-update 1');
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /^ERROR: \(keyway\.devices\.configs\.update\) FAILED_PRECONDITION: /);

    const states = await ok('devices states list thermo --registry cfg');
    assert.equal(states.stdout, '');
    assert.match(states.stderr, /Listed 0 items/);

    const cmd = await cli('devices commands send thermo --registry cfg --command-data reboot');
    assert.equal(cmd.code, 1);
    assert.match(cmd.stderr, /^ERROR: \(keyway\.devices\.commands\.send\) FAILED_PRECONDITION: /);

    const blocked = await ok('devices update thermo --registry cfg --blocked --log-level debug');
    assert.match(blocked.stderr, /Updated device \[thermo\]/);
    const d = await ok('devices describe thermo --registry cfg');
    assert.match(d.stdout, /^blocked: true$/m);
    assert.match(d.stdout, /^logLevel: DEBUG$/m);

    await ok('devices delete thermo --registry cfg');
    await ok('registries delete cfg');
    const gone = await cli('registries describe cfg');
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^ERROR: \(keyway\.registries\.describe\) NOT_FOUND: /);
  });

  it('manages registries: update, list, and the remembered project and region', async () => {
    await ok('config set project other');
    await ok('config set region us-central1');
    await ok('registries create reg1');
    const upd = await ok('registries update reg1 --no-enable-http-config --event-notification-config topic=projects/other/topics/t --format json');
    const reg = JSON.parse(upd.stdout) as { httpConfig: { httpEnabledState: string }; eventNotificationConfigs: unknown[] };
    assert.equal(reg.httpConfig.httpEnabledState, 'HTTP_DISABLED');
    assert.equal(reg.eventNotificationConfigs.length, 1);
    const list = await ok('registries list');
    assert.match(list.stdout, /^reg1\s+us-central1\s+MQTT_ENABLED\s+HTTP_DISABLED$/m);
    const conf = await ok('config list');
    assert.match(conf.stdout, /^project: other$/m);
    assert.match(conf.stdout, /^region: us-central1$/m);
    assert.match(conf.stdout, /^adminToken: .*admin-token$/m);
    // Flags and environment win over the remembered values.
    assert.match((await ok('registries list --project demo --region europe-west1')).stdout, /^fleet\s/m);
    assert.match((await ok('registries list', { KEYWAY_PROJECT: 'demo', KEYWAY_REGION: 'europe-west1' })).stdout, /^fleet\s/m);
    await ok('registries delete reg1');
    await ok('config set project demo');
    await ok('config set region europe-west1');
  });

  it('prints API errors with their status and field violations, exit 1', async () => {
    const r = await cli('registries create goog-reserved');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ERROR: \(keyway\.registries\.create\) INVALID_ARGUMENT: .+/);
    assert.match(r.stderr, /^- '.+': .+$/m);
    await writeFile(join(kit.work, 'not-a-key.pem'), '-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n');
    const badKey = await cli('devices create dev9 --registry fleet --public-key path=not-a-key.pem,type=es256');
    assert.equal(badKey.code, 1);
    assert.match(badKey.stderr, /^ERROR: \(keyway\.devices\.create\) INVALID_ARGUMENT: /);
  });

  it('exits 2 on usage errors', async () => {
    for (const args of [
      'devices create dev2',
      'devices list --registry fleet --colour blue',
      'devices configs update dev1 --registry fleet',
      'devices configs update dev1 --registry fleet --config-data a --config-file b',
      'devices create dev2 --registry fleet --metadata novalue',
      'devices create dev2 --registry fleet --public-key path=x.pem',
      'devices update dev1 --registry fleet',
      'devices list --registry fleet --limit many',
      'keys generate --type dsa --out ./k',
      'keys jwt --private-key ./dev1/private.pem --lifetime 25h',
      'config set colour blue',
      'config set region Not_A_Region',
      'registries list --project demo --region EU',
      'nonsense',
      '',
    ]) {
      const r = await cli(args);
      assert.equal(r.code, 2, `keyway ${args}\n${r.stdout}${r.stderr}`);
      assert.ok(r.stderr.length > 0, `keyway ${args} explains itself`);
    }
    assert.equal((await cli('--help')).code, 0);
  });

  it('gives a one-line hint when the admin token is missing', async () => {
    const elsewhere = await mkdtemp(join(tmpdir(), 'keyway-cli-empty-'));
    try {
      const r = await cli('registries list --project demo --region europe-west1', {}, elsewhere);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.match(r.stderr, /^ERROR: \(keyway\.registries\.list\) no admin token: .*KEYWAY_ADMIN_TOKEN/);
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it('gives a one-line hint when the API is unreachable or untrusted', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const free = (server.address() as { port: number }).port;
    await new Promise<void>((r) => server.close(() => r()));
    const down = await cli('registries list', { KEYWAY_API_URL: `https://localhost:${free}` });
    assert.equal(down.code, 1);
    assert.equal(down.stderr.trim().split('\n').length, 1);
    assert.match(down.stderr, /cannot reach the admin API .*keyway serve/);

    const otherDir = await mkdtemp(join(tmpdir(), 'keyway-cli-ca-'));
    try {
      const other = await ensureDevelopmentPki(otherDir, []);
      const untrusted = await cli('registries list', { KEYWAY_CA_FILE: other.caCertPath });
      assert.equal(untrusted.code, 1);
      assert.match(untrusted.stderr, /not trusted .*--ca-file/);
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it('reports a refused token without echoing any token', async () => {
    const r = await cli('registries list', { KEYWAY_ADMIN_TOKEN: 'kw-wrong-token' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /UNAUTHENTICATED/);
    assert.doesNotMatch(r.stderr + r.stdout, /kw-wrong-token/);
    const fromFile = join(kit.work, 'token-file');
    await mkdir(kit.work, { recursive: true });
    await writeFile(fromFile, `${TEST_ADMIN_TOKEN}\n`, { mode: 0o600 });
    await ok('registries list --admin-token-file token-file --data-dir /nonexistent --ca-file keyway-data/pki/ca.crt --project demo --region europe-west1');
  });

  it('never prints the admin token', () => {
    assert.ok(kit.printed.length > 20);
    for (const text of kit.printed) assert.ok(!text.includes(TEST_ADMIN_TOKEN));
  });
});
