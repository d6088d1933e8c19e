import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import type { AuditReader } from '../audit/audit-log.js';
import type { AuditEvent, AuditSink } from '../domain/audit-events.js';
import type { Role } from '../domain/roles.js';
import { DEFAULT_RATE_LIMITS } from '../registry/device-quotas.js';
import { createAdminApi } from './admin-api.js';
import { startTestStack, TEST_ADMIN_TOKEN, verifyTestToken, type TestStack } from './test-stack.js';
import type { ApiDevice, ApiErrorEnvelope } from './wire-types.js';

const AUTH = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
const REG = '/v1/projects/demo/locations/europe-west1/registries/fleet';
const OTHER = '/v1/projects/demo/locations/europe-west1/registries/yard';
const json = <T>(r: LightMyRequestResponse): T => JSON.parse(r.body) as T;

function assertError(r: LightMyRequestResponse, httpStatus: number, status: string, message?: RegExp): ApiErrorEnvelope {
  assert.equal(r.statusCode, httpStatus, r.body);
  const body = json<ApiErrorEnvelope>(r);
  assert.equal(body.error.status, status, r.body);
  if (message) assert.match(body.error.message, message);
  return body;
}

describe('gateway routes of the admin API', () => {
  let stack: TestStack;
  let api: FastifyInstance;
  const audited: AuditEvent[] = [];

  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object, headers: Record<string, string> = AUTH) =>
    api.inject({ method, url, headers, ...(payload !== undefined ? { payload } : {}) });
  const listIds = async (query: string): Promise<string[]> => {
    const r = await call('GET', `${REG}/devices?${query}`);
    assert.equal(r.statusCode, 200, r.body);
    return (json<{ devices?: ApiDevice[] }>(r).devices ?? []).map((d) => d.id);
  };
  async function keyWith(role: Role): Promise<string> {
    const id = `caller-${role.toLowerCase()}`;
    await stack.accounts.create('demo', id, { bindings: [{ role, scope: { kind: 'project', project: 'demo' } }] }, { kind: 'bootstrap' });
    return (await stack.accounts.createKey('demo', id)).key;
  }

  before(async () => {
    stack = await startTestStack();
    const audit: AuditSink & AuditReader = {
      record: (e) => void audited.push(e),
      query: async () => [],
      verify: async () => ({ ok: true, checked: 0 }),
    };
    api = await createAdminApi({
      manager: stack.manager,
      accounts: stack.accounts,
      audit,
      verifyAdminToken: verifyTestToken,
      logger: pino({ level: 'silent' }),
    });
    for (const registry of ['fleet', 'yard'])
      assert.equal((await call('POST', '/v1/projects/demo/locations/europe-west1/registries', { id: registry })).statusCode, 200);
    const gateway = { gatewayConfig: { gatewayType: 'GATEWAY', gatewayAuthMethod: 'ASSOCIATION_ONLY' } };
    for (const [parent, body] of [
      [REG, { id: 'gw-1', ...gateway }],
      [REG, { id: 'gw-2', ...gateway }],
      [REG, { id: 'sensor-1' }],
      [REG, { id: 'sensor-2' }],
      [OTHER, { id: 'sensor-y' }],
    ] as const) {
      const r = await call('POST', `${parent}/devices`, body);
      assert.equal(r.statusCode, 200, r.body);
    }
  });
  after(async () => {
    await api.close();
    await stack.close();
  });

  it('binds and unbinds with {gatewayId, deviceId}, answering {}, and audits both', async () => {
    audited.length = 0;
    const bound = await call('POST', `${REG}:bindDeviceToGateway`, { gatewayId: 'gw-1', deviceId: 'sensor-1' });
    assert.equal(bound.statusCode, 200, bound.body);
    assert.deepEqual(json(bound), {});
    const sensor2 = json<ApiDevice>(await call('GET', `${REG}/devices/sensor-2`));
    assert.equal((await call('POST', `${REG}:bindDeviceToGateway`, { gateway_id: 'gw-1', device_id: sensor2.numId })).statusCode, 200, 'snake_case and numeric ids');
    assert.deepEqual(await listIds('gatewayListOptions.associationsGatewayId=gw-1'), ['sensor-1', 'sensor-2']);
    assert.deepEqual(await listIds('gateway_list_options.associations_device_id=sensor-1'), ['gw-1']);

    const unbound = await call('POST', `${REG}:unbindDeviceFromGateway`, { gatewayId: 'gw-1', deviceId: 'sensor-2' });
    assert.equal(unbound.statusCode, 200, unbound.body);
    assert.deepEqual(json(unbound), {});
    assertError(await call('POST', `${REG}:unbindDeviceFromGateway`, { gatewayId: 'gw-1', deviceId: 'sensor-2' }), 404, 'NOT_FOUND', /not bound/);

    const subjects = audited.filter((e) => e.kind === 'admin.request').map((e) => `${e.outcome} ${e.subject}`);
    assert.deepEqual(subjects, [
      `ok POST ${REG}:bindDeviceToGateway`,
      `ok POST ${REG}:bindDeviceToGateway`,
      `ok POST ${REG}:unbindDeviceFromGateway`,
      `error POST ${REG}:unbindDeviceFromGateway`,
    ]);
    assert.deepEqual(audited.find((e) => e.kind === 'admin.request')?.details?.request, { gatewayId: 'gw-1', deviceId: 'sensor-1' });
  });

  it('refuses bodies that are not {gatewayId, deviceId}', async () => {
    assertError(await call('POST', `${REG}:bindDeviceToGateway`, { gatewayId: 'gw-1' }), 400, 'INVALID_ARGUMENT');
    assertError(await call('POST', `${REG}:bindDeviceToGateway`, { gatewayId: 'gw-1', deviceId: 'sensor-1', extra: 1 }), 400, 'INVALID_ARGUMENT');
    assertError(await call('POST', `${REG}:bindDeviceToGateway`, { gatewayId: 'gw-1', deviceId: 7 }), 400, 'INVALID_ARGUMENT');
  });

  it('maps broken rules to google.rpc errors', async () => {
    const g2g = assertError(await call('POST', `${REG}:bindDeviceToGateway`, { gatewayId: 'gw-1', deviceId: 'gw-2' }), 400, 'INVALID_ARGUMENT', /is a gateway/);
    assert.equal(g2g.error.details?.[0]?.fieldViolations?.[0]?.field, 'deviceId');
    assertError(await call('POST', `${REG}:bindDeviceToGateway`, { gatewayId: 'sensor-1', deviceId: 'sensor-2' }), 400, 'INVALID_ARGUMENT', /not a gateway/);
    assertError(await call('POST', `${REG}:bindDeviceToGateway`, { gatewayId: 'gw-1', deviceId: 'sensor-y' }), 404, 'NOT_FOUND');
    assertError(await call('POST', `${OTHER}:bindDeviceToGateway`, { gatewayId: 'gw-1', deviceId: 'sensor-y' }), 404, 'NOT_FOUND', /Gateway/);
    assertError(await call('DELETE', `${REG}/devices/gw-1`), 400, 'FAILED_PRECONDITION', /still has devices bound/);
  });

  it('filters devices.list by one gateway list option, and refuses two', async () => {
    assert.deepEqual(await listIds('gatewayListOptions.gatewayType=GATEWAY'), ['gw-1', 'gw-2']);
    assert.deepEqual(await listIds('gatewayListOptions.gatewayType=NON_GATEWAY'), ['sensor-1', 'sensor-2']);
    assert.deepEqual(await listIds('gatewayListOptions.gatewayType=GATEWAY_TYPE_UNSPECIFIED'), ['gw-1', 'gw-2', 'sensor-1', 'sensor-2']);
    assert.deepEqual(await listIds('gatewayListOptions.gatewayType=GATEWAY&pageSize=1').then((x) => x.length), 1);
    const two = assertError(
      await call('GET', `${REG}/devices?gatewayListOptions.associationsGatewayId=gw-1&gatewayListOptions.associationsDeviceId=sensor-1`),
      400,
      'INVALID_ARGUMENT',
      /oneof/,
    );
    assert.deepEqual(two.error.details?.[0]?.fieldViolations?.map((v) => v.field), [
      'gatewayListOptions.associationsGatewayId',
      'gatewayListOptions.associationsDeviceId',
    ]);
    assertError(await call('GET', `${REG}/devices?gatewayListOptions.associationsGatewayId=ghost`), 404, 'NOT_FOUND');
  });

  it('shows the last accessed gateway on devices.get', async () => {
    // The gateway as the device plane hands it over after authentication (it has no credentials to connect with here).
    const identity = {
      method: 'jwt' as const,
      key: `${REG.slice(4)}/devices/gw-1`,
      name: { project: 'demo', location: 'europe-west1', registry: 'fleet', device: 'gw-1' },
      numId: json<ApiDevice>(await call('GET', `${REG}/devices/gw-1`)).numId,
      credentialFingerprint: 'f'.repeat(64),
      tokenExpiresAt: new Date(Date.now() + 60_000),
      gateway: { authMethod: 'ASSOCIATION_ONLY' as const },
      rateLimits: DEFAULT_RATE_LIMITS,
    };
    const at = new Date('2030-01-02T03:04:05Z');
    const r = await stack.manager.authorizeGatewayDevice(identity, 'sensor-1', undefined, 'mqtt', at);
    assert.ok(r.ok, r.ok ? '' : r.reason);
    const d = json<ApiDevice>(await call('GET', `${REG}/devices/sensor-1?fieldMask=gateway_config`));
    assert.deepEqual(d.gatewayConfig, { lastAccessedGatewayId: 'gw-1', lastAccessedGatewayTime: '2030-01-02T03:04:05Z' });
  });

  it('needs devices.bindGateway / devices.unbindGateway: a provisioner may, a viewer may not', async () => {
    const viewer = { authorization: `Bearer ${await keyWith('viewer')}` };
    const provisioner = { authorization: `Bearer ${await keyWith('provisioner')}` };
    const body = { gatewayId: 'gw-2', deviceId: 'sensor-2' };
    assertError(await call('POST', `${REG}:bindDeviceToGateway`, body, viewer), 403, 'PERMISSION_DENIED');
    assert.equal((await call('POST', `${REG}:bindDeviceToGateway`, body, provisioner)).statusCode, 200);
    assertError(await call('POST', `${REG}:unbindDeviceFromGateway`, body, viewer), 403, 'PERMISSION_DENIED');
    assert.equal((await call('POST', `${REG}:unbindDeviceFromGateway`, body, provisioner)).statusCode, 200);
    assert.deepEqual(await listIds('gatewayListOptions.associationsGatewayId=gw-2'), []);
  });

  it('documents both methods and the list options in the OpenAPI document', async () => {
    const doc = json<{ paths: Record<string, Record<string, { operationId?: string; parameters?: Array<{ name: string }> }>> }>(
      await call('GET', '/v1/openapi.json'),
    );
    const paths = Object.keys(doc.paths);
    assert.ok(paths.some((p) => p.endsWith('{registry}:bindDeviceToGateway')), paths.join('\n'));
    assert.ok(paths.some((p) => p.endsWith('{registry}:unbindDeviceFromGateway')));
    const list = Object.entries(doc.paths).find(([p]) => p.endsWith('{registry}/devices'))?.[1].get;
    const names = (list?.parameters ?? []).map((p) => p.name);
    for (const option of ['gatewayType', 'associationsGatewayId', 'associationsDeviceId'])
      assert.ok(names.includes(`gatewayListOptions.${option}`), names.join(','));
  });
});
