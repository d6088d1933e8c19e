/**
 * `keyway service-accounts …` against the real admin API, and the CLI authenticating with an API
 * key (KEYWAY_API_KEY or --api-key-file) instead of the admin token.
 */
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { cliTestKit } from './cli-test-kit.js';
import { parseKeyLifetime } from './commands/service-accounts.js';
import { UsageError } from './io.js';

const KEY_SHAPE = /^kwk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/;

describe('keyway service-accounts', () => {
  const kit = cliTestKit({ prefix: 'keyway-cli-sa-', env: { KEYWAY_PROJECT: 'acme', KEYWAY_REGION: 'europe-west1' } });

  test('create, describe, list, update, keys create/list/revoke, delete', async () => {
    await kit.ok('registries create fleet');
    const created = await kit.ok(['service-accounts', 'create', 'ingest', '--role', 'viewer:registry=fleet', '--role', 'deviceController', '--display-name', 'Ingest worker', '--format', 'json']);
    const account = JSON.parse(created.stdout) as { name: string; bindings: Array<{ role: string; scope: string }> };
    assert.equal(account.name, 'projects/acme/serviceAccounts/ingest');
    assert.deepEqual(account.bindings, [
      { role: 'viewer', scope: 'projects/acme/locations/europe-west1/registries/fleet' },
      { role: 'deviceController', scope: 'projects/acme' },
    ]);
    assert.match(created.stderr, /MQTT user name is acme\/ingest/);
    assert.match((await kit.ok('service-accounts describe ingest')).stdout, /displayName: Ingest worker/);
    assert.match((await kit.ok('service-accounts list')).stdout, /ingest\s+Ingest worker\s+viewer@/);

    const key = await kit.ok('service-accounts keys create ingest --expires-in 30d');
    const apiKey = key.stdout.trim();
    assert.match(apiKey, KEY_SHAPE, 'stdout holds the key and nothing else');
    assert.match(key.stderr, /WARNING: store this API key now/);
    const keyId = apiKey.slice(4, 20);
    const listed = await kit.ok('service-accounts keys list ingest');
    assert.match(listed.stdout, new RegExp(keyId));
    assert.ok(!listed.stdout.includes(apiKey), 'the key is never listed');
    const expires = JSON.parse((await kit.ok('service-accounts keys list ingest --format json')).stdout) as Array<{ expireTime: string }>;
    const days = (Date.parse(expires[0]?.expireTime ?? '') - Date.now()) / 86_400_000;
    assert.ok(days > 29.9 && days <= 30, `expires in 30 days, not ${days}`);

    const updated = await kit.ok('service-accounts update ingest --disable --role editor --format json');
    assert.deepEqual(JSON.parse(updated.stdout), {
      name: 'projects/acme/serviceAccounts/ingest',
      id: 'ingest',
      displayName: 'Ingest worker',
      bindings: [{ role: 'editor', scope: 'projects/acme' }],
      disabled: true,
      createTime: (JSON.parse(updated.stdout) as { createTime: string }).createTime,
    });
    assert.equal((await kit.cli('service-accounts update ingest')).code, 2, 'nothing to update is a usage error');
    await kit.ok('service-accounts update ingest --enable');

    await kit.ok(`service-accounts keys revoke ingest ${keyId}`);
    const gone = await kit.cli('registries list', { KEYWAY_API_KEY: apiKey });
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /UNAUTHENTICATED/);
    await kit.ok('service-accounts delete ingest');
    assert.match((await kit.cli('service-accounts describe ingest')).stderr, /NOT_FOUND/);
  });

  test('a viewer key can list but not create: exit 1 with PERMISSION_DENIED', async () => {
    await kit.ok('service-accounts create watcher --role viewer');
    const apiKey = (await kit.ok('service-accounts keys create watcher')).stdout.trim();
    // Through the environment…
    const env = { KEYWAY_API_KEY: apiKey };
    assert.equal((await kit.cli('registries list', env)).code, 0);
    const denied = await kit.cli('registries create other', env);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /PERMISSION_DENIED/);
    const escalate = await kit.cli('service-accounts create sneaky --role admin', env);
    assert.equal(escalate.code, 1);
    assert.match(escalate.stderr, /PERMISSION_DENIED/);
    // …and through a file, preferred over the data directory's admin token.
    const file = join(kit.work, 'watcher.key');
    await writeFile(file, `${apiKey}\n`, { mode: 0o600 });
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await kit.cli('service-accounts list --api-key-file watcher.key')).code, 1, 'a viewer may not list service accounts');
    assert.equal((await kit.cli('registries list --api-key-file watcher.key')).code, 0);
    const viaFile = await kit.cli('registries create other2 --api-key-file watcher.key');
    assert.equal(viaFile.code, 1);
    assert.match(viaFile.stderr, /PERMISSION_DENIED/);
    assert.equal((await kit.cli('registries list --api-key-file watcher.key --admin-token-file keyway-data/admin-token')).code, 2);
    assert.match((await kit.ok('config list --api-key-file watcher.key')).stdout, /watcher\.key \(API key\)/);
    const secrets = kit.printed.filter((p) => p.includes(apiKey));
    assert.equal(secrets.length, 1, 'the key was printed once, by keys create');
  });

  test('role and lifetime flags are checked before anything is sent', async () => {
    for (const bad of ['owner', 'viewer:registry', 'viewer:zone=a', 'viewer:registry=a:b']) {
      const r = await kit.cli(['service-accounts', 'create', 'x', '--role', bad]);
      assert.equal(r.code, 2, bad);
      assert.match(r.stderr, /--role/);
    }
    assert.equal(parseKeyLifetime('90d'), 90 * 86_400);
    assert.equal(parseKeyLifetime('12h'), 12 * 3600);
    assert.throws(() => parseKeyLifetime('1y'), UsageError);
    const tooLong = await kit.cli('service-accounts keys create nobody --expires-in 400d');
    assert.equal(tooLong.code, 1);
  });
});
