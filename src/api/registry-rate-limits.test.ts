import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { startTestStack, TEST_ADMIN_TOKEN, type TestStack } from './test-stack.js';
import type { ApiDeviceRegistry, ApiErrorEnvelope } from './wire-types.js';

const AUTH = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
const LOC = '/v1/projects/demo/locations/europe-west1';
const json = <T>(r: LightMyRequestResponse): T => JSON.parse(r.body) as T;

describe('registry rate limits over the admin API', () => {
  let stack: TestStack;
  const call = (method: string, url: string, payload?: unknown) =>
    stack.api.inject({
      method: method as 'GET',
      url,
      headers: AUTH,
      ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
    });

  function refused(r: LightMyRequestResponse, field: RegExp): void {
    assert.equal(r.statusCode, 400, r.body);
    const body = json<ApiErrorEnvelope>(r);
    assert.equal(body.error.status, 'INVALID_ARGUMENT', r.body);
    assert.match(r.body, field);
  }

  before(async () => {
    stack = await startTestStack();
  });
  after(() => stack.close());

  it('stores and returns only the limits that were set', async () => {
    const created = await call('POST', `${LOC}/registries`, {
      id: 'limited',
      rateLimits: { stateUpdatesPerSecond: 5, registryPublishesPerMinute: 1000 },
    });
    assert.equal(created.statusCode, 200, created.body);
    assert.deepEqual(json<ApiDeviceRegistry>(created).rateLimits, { stateUpdatesPerSecond: 5, registryPublishesPerMinute: 1000 });
    const read = json<ApiDeviceRegistry>(await call('GET', `${LOC}/registries/limited`));
    assert.deepEqual(read.rateLimits, { stateUpdatesPerSecond: 5, registryPublishesPerMinute: 1000 });

    const plain = json<ApiDeviceRegistry>(await call('POST', `${LOC}/registries`, { id: 'plain' }));
    assert.equal(plain.rateLimits, undefined, 'nothing set: the defaults apply and nothing is returned');
  });

  it('refuses zero, negative, fractional, oversized and unknown limits', async () => {
    for (const rateLimits of [
      { stateUpdatesPerSecond: 0 },
      { telemetryMessagesPerSecond: -5 },
      { connectionsPerSecond: 1.5 },
      { telemetryBytesPerSecond: 2 ** 40 },
      { stateUpdatesPerSecond: 'fast' },
      { unlimited: 1 },
    ]) {
      refused(await call('POST', `${LOC}/registries`, { id: 'bad-limits', rateLimits }), /rateLimits/);
    }
    refused(await call('POST', `${LOC}/registries`, { id: 'bad-limits', rateLimits: [] }), /rateLimits/);
    assert.equal((await call('GET', `${LOC}/registries/bad-limits`)).statusCode, 404, 'nothing was created');
  });

  it('patches one limit by its path, returns one to its default, or replaces them all', async () => {
    await call('POST', `${LOC}/registries`, { id: 'patched', rateLimits: { stateUpdatesPerSecond: 5, connectionsPerSecond: 2 } });
    const one = await call('PATCH', `${LOC}/registries/patched?updateMask=rate_limits.telemetry_bytes_per_second`, {
      rateLimits: { telemetryBytesPerSecond: 4096, stateUpdatesPerSecond: 99 },
    });
    assert.equal(one.statusCode, 200, one.body);
    assert.deepEqual(json<ApiDeviceRegistry>(one).rateLimits, { stateUpdatesPerSecond: 5, connectionsPerSecond: 2, telemetryBytesPerSecond: 4096 }, 'only the masked field changed');

    const camel = await call('PATCH', `${LOC}/registries/patched?updateMask=rateLimits.stateUpdatesPerSecond`, {});
    assert.deepEqual(json<ApiDeviceRegistry>(camel).rateLimits, { connectionsPerSecond: 2, telemetryBytesPerSecond: 4096 }, 'masked and absent: back to the default');

    const all = await call('PATCH', `${LOC}/registries/patched?updateMask=rate_limits`, { rateLimits: { registryConnectionsPerMinute: 600 } });
    assert.deepEqual(json<ApiDeviceRegistry>(all).rateLimits, { registryConnectionsPerMinute: 600 });
    const cleared = await call('PATCH', `${LOC}/registries/patched?updateMask=rate_limits`, {});
    assert.equal(json<ApiDeviceRegistry>(cleared).rateLimits, undefined);

    refused(await call('PATCH', `${LOC}/registries/patched?updateMask=rate_limits.unlimited`, {}), /updateMask/);
    refused(await call('PATCH', `${LOC}/registries/patched?updateMask=rate_limits`, { rateLimits: { stateUpdatesPerSecond: 0 } }), /rateLimits/);
    const other = await call('PATCH', `${LOC}/registries/patched?updateMask=log_level`, { logLevel: 'INFO', rateLimits: { stateUpdatesPerSecond: 7 } });
    assert.equal(json<ApiDeviceRegistry>(other).rateLimits, undefined, 'not in the mask: unchanged');
  });

  it('keeps the limits across a restart of the store', async () => {
    const first = stack;
    const dir = await mkdtemp(join(tmpdir(), 'keyway-rate-limits-'));
    try {
      stack = await startTestStack({ dir });
      await call('POST', `${LOC}/registries`, { id: 'durable', rateLimits: { telemetryMessagesPerSecond: 7 } });
      await stack.close();
      stack = await startTestStack({ dir });
      assert.deepEqual(json<ApiDeviceRegistry>(await call('GET', `${LOC}/registries/durable`)).rateLimits, { telemetryMessagesPerSecond: 7 });
      await stack.close();
    } finally {
      stack = first;
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('documents RateLimits in the OpenAPI document', async () => {
    const doc = json<{ components: { schemas: Record<string, { properties?: Record<string, unknown> }> } }>(await call('GET', '/v1/openapi.json'));
    assert.deepEqual(Object.keys(doc.components.schemas.RateLimits?.properties ?? {}).sort(), [
      'configUpdatesPerSecond',
      'connectionsPerSecond',
      'registryConnectionsPerMinute',
      'registryPublishesPerMinute',
      'stateUpdatesPerSecond',
      'telemetryBytesPerSecond',
      'telemetryMessagesPerSecond',
    ]);
  });
});
