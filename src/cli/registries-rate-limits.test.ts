import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ApiDeviceRegistry } from '../api/wire-types.js';
import { cliTestKit } from './cli-test-kit.js';

describe('keyway registries: rate limits', () => {
  const kit = cliTestKit({ prefix: 'keyway-cli-limits-', env: { KEYWAY_PROJECT: 'demo', KEYWAY_REGION: 'europe-west1' } });
  const { cli, ok } = kit;
  const describeJson = async (id: string): Promise<ApiDeviceRegistry> =>
    JSON.parse((await ok(['registries', 'describe', id, '--format', 'json'])).stdout) as ApiDeviceRegistry;

  it('sets limits on create, changes one on update, resets one or all, and describe shows them', async () => {
    await ok(['registries', 'create', 'meters', '--state-updates-per-second', '2', '--telemetry-bytes-per-second', '65536']);
    assert.deepEqual((await describeJson('meters')).rateLimits, { stateUpdatesPerSecond: 2, telemetryBytesPerSecond: 65536 });
    assert.match((await ok(['registries', 'describe', 'meters'])).stdout, /rateLimits:\n\s+stateUpdatesPerSecond: 2\n\s+telemetryBytesPerSecond: 65536/);

    await ok(['registries', 'update', 'meters', '--connections-per-second', '3', '--registry-publishes-per-minute', '6000']);
    assert.deepEqual((await describeJson('meters')).rateLimits, {
      stateUpdatesPerSecond: 2,
      telemetryBytesPerSecond: 65536,
      connectionsPerSecond: 3,
      registryPublishesPerMinute: 6000,
    }, 'update changes only the limits given');

    await ok(['registries', 'update', 'meters', '--state-updates-per-second', 'default']);
    assert.equal((await describeJson('meters')).rateLimits?.stateUpdatesPerSecond, undefined);
    await ok(['registries', 'update', 'meters', '--clear-rate-limits']);
    assert.equal((await describeJson('meters')).rateLimits, undefined);
  });

  it('explains mistakes: not a number, out of range, both a limit and --clear-rate-limits', async () => {
    const word = await cli(['registries', 'create', 'bad-1', '--telemetry-messages-per-second', 'many']);
    assert.notEqual(word.code, 0);
    assert.match(word.stderr, /--telemetry-messages-per-second: 'many' is not a positive integer/);
    const zero = await cli(['registries', 'create', 'bad-2', '--connections-per-second', '0']);
    assert.notEqual(zero.code, 0);
    const huge = await cli(['registries', 'create', 'bad-3', '--connections-per-second', '5000']);
    assert.notEqual(huge.code, 0);
    assert.match(huge.stderr, /INVALID_ARGUMENT.*connectionsPerSecond.*1000/);
    await ok(['registries', 'create', 'fine']);
    const both = await cli(['registries', 'update', 'fine', '--clear-rate-limits', '--state-updates-per-second', '3']);
    assert.notEqual(both.code, 0);
    assert.match(both.stderr, /not both/);
  });
});
