import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { OVER_PERMISSIVE_EXAMPLES, SMART_BUILDING_POLICIES } from '../policy/smart-building-policies.js';
import { cliTestKit, runCli } from './cli-test-kit.js';

describe('keyway policies', () => {
  const kit = cliTestKit({ prefix: 'keyway-cli-policies-', env: { KEYWAY_PROJECT: 'demo', KEYWAY_REGION: 'europe-west1' } });
  const { cli, ok } = kit;
  const file = async (name: string, value: unknown): Promise<string> => {
    const path = join(kit.work, name);
    await writeFile(path, JSON.stringify(value));
    return name;
  };

  before(async () => {
    const loc = { project: 'demo', location: 'europe-west1' };
    await kit.stack.manager.createRegistry(loc, 'bldg', {});
    await kit.stack.manager.createDevice({ ...loc, registry: 'bldg' }, 'temp-1', {
      metadata: { type: 'temperature-sensor', building: 'b1', floor: '2' },
    });
  });

  it('lints offline: exit 1 with the findings on errors, 0 on a clean document', async () => {
    const bad = await file('bad.json', OVER_PERMISSIVE_EXAMPLES.ROOT_WILDCARD);
    // No server and no token: a directory with nothing in it.
    const r = await runCli(['policies', 'lint', '--document-file', join(kit.work, bad)], { KEYWAY_API_URL: 'https://localhost:1' }, '/');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /ROOT_WILDCARD/);
    assert.match(r.stdout, /STATEMENT/);
    assert.match(r.stderr, /1 lint error/);
    const good = await file('good.json', SMART_BUILDING_POLICIES['temperature-sensor']);
    const g = await ok(['policies', 'lint', '--document-file', good]);
    assert.match(g.stderr, /No findings/);
    const broken = await file('broken.json', { version: '2026-01-01', statements: [{ effect: 'Allow', actions: ['fly'], resources: ['a'] }] });
    const b = await cli(['policies', 'lint', '--document-file', broken]);
    assert.notEqual(b.code, 0);
    assert.match(b.stderr, /statements\[0\]\.actions\[0\]/);
  });

  it('creates, attaches by device type, tests, versions and cleans up', async () => {
    const wide = await file('wide.json', OVER_PERMISSIVE_EXAMPLES.WILDCARD_PUBLISH);
    const refused = await cli(['policies', 'create', 'sensors', '--registry', 'bldg', '--document-file', wide]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /WILDCARD_PUBLISH|over-permissive/);

    const doc = await file('sensor.json', SMART_BUILDING_POLICIES['temperature-sensor']);
    await ok(['policies', 'create', 'sensors', '--registry', 'bldg', '--document-file', doc]);
    await ok(['policies', 'attach', 'sensors', '--registry', 'bldg', '--device-type', 'temperature-sensor']);
    const usage = await cli(['policies', 'attach', 'sensors', '--registry', 'bldg', '--device', 'temp-1', '--registry-wide']);
    assert.equal(usage.code, 2);

    const allowed = await ok(['policies', 'test', '--registry', 'bldg', '--device', 'temp-1', '--action', 'publish', '--topic', 'building/b1/floor/2/temp/temp-1']);
    assert.match(allowed.stdout, /^ALLOWED by sensors v1 statement 0 \(reading\)/);
    const denied = await ok(['policies', 'test', '--registry', 'bldg', '--device', 'temp-1', '--action', 'publish', '--topic', 'building/b1/floor/3/temp/temp-1']);
    assert.match(denied.stdout, /^DENIED: no statement allows it/);

    const list = await ok(['policies', 'list', '--registry', 'bldg']);
    assert.match(list.stdout, /sensors\s+1/);
    const described = JSON.parse((await ok(['policies', 'describe', 'sensors', '--registry', 'bldg', '--format', 'json'])).stdout);
    assert.deepEqual(described.attachments[0].target, { deviceType: 'temperature-sensor' });

    await ok(['policies', 'versions', 'create', 'sensors', '--registry', 'bldg', '--document-file', doc]);
    assert.match((await ok(['policies', 'versions', 'list', 'sensors', '--registry', 'bldg'])).stdout, /2\s/);
    await ok(['policies', 'set-default-version', 'sensors', '2', '--registry', 'bldg']);
    const v1 = await cli(['policies', 'versions', 'delete', 'sensors', '1', '--registry', 'bldg']);
    assert.equal(v1.code, 0, v1.stderr);
    const attached = await cli(['policies', 'delete', 'sensors', '--registry', 'bldg']);
    assert.notEqual(attached.code, 0);
    assert.match(attached.stderr, /attached/);
    await ok(['policies', 'detach', 'sensors', '--registry', 'bldg', '--device-type', 'temperature-sensor']);
    await ok(['policies', 'delete', 'sensors', '--registry', 'bldg']);
  });
});
