import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { ADMIN_ROUTES } from './routes.js';
import { createAdminApi } from './admin-api.js';
import { startTestStack, TEST_ADMIN_TOKEN, verifyTestToken, type TestStack } from './test-stack.js';
import type { ApiDevice, ApiDeviceRegistry, ApiErrorEnvelope } from './wire-types.js';

const AUTH = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
const LOC = '/v1/projects/demo/locations/europe-west1';
const REG = `${LOC}/registries/fleet`;

const es256Pem = (): string =>
  generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

/** A concrete URL for a route path template. */
const concrete = (path: string): string =>
  path
    .replace('{project}', 'demo')
    .replace('{location}', 'europe-west1')
    .replace('{registry}', 'fleet')
    .replace('{device}', 'dev1');

const json = <T>(r: LightMyRequestResponse): T => JSON.parse(r.body) as T;

function assertEnvelope(r: LightMyRequestResponse, httpStatus: number, status: string): ApiErrorEnvelope {
  assert.equal(r.statusCode, httpStatus, r.body);
  const body = json<ApiErrorEnvelope>(r);
  assert.equal(body.error.code, httpStatus);
  assert.equal(body.error.status, status);
  assert.equal(typeof body.error.message, 'string');
  return body;
}

function assertViolation(r: LightMyRequestResponse, field: string): string {
  const body = assertEnvelope(r, 400, 'INVALID_ARGUMENT');
  const detail = body.error.details?.[0];
  assert.equal(detail?.['@type'], 'type.googleapis.com/google.rpc.BadRequest', r.body);
  const v = detail?.fieldViolations?.find((f) => f.field === field);
  assert.ok(v, `expected a violation of '${field}' in ${r.body}`);
  return v.description;
}

describe('admin API', () => {
  let stack: TestStack;
  const call = (method: string, url: string, payload?: unknown, headers: Record<string, string> = AUTH) =>
    stack.api.inject({
      method: method as 'GET',
      url,
      headers,
      ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
    });

  before(async () => {
    stack = await startTestStack();
  });
  after(async () => {
    await stack.close();
  });

  describe('authentication', () => {
    const protectedRoutes = ADMIN_ROUTES.filter((r) => !r.public);

    it('covers every admin route but the health check', () => {
      assert.deepEqual(
        ADMIN_ROUTES.filter((r) => r.public).map((r) => r.path),
        ['/healthz'],
      );
      assert.ok(protectedRoutes.length >= 15);
    });

    for (const route of protectedRoutes) {
      for (const [label, headers] of [
        ['no', {}],
        ['a wrong', { authorization: 'Bearer not-the-token' }],
        ['an empty', { authorization: 'Bearer ' }],
        ['a Basic', { authorization: `Basic ${Buffer.from(`admin:${TEST_ADMIN_TOKEN}`).toString('base64')}` }],
        ['a token-prefix', { authorization: `Bearer ${TEST_ADMIN_TOKEN.slice(0, -1)}` }],
        ['an over-long', { authorization: `Bearer ${'a'.repeat(100_000)}` }],
      ] as const) {
        it(`${route.method} ${route.path} refuses ${label} token`, async () => {
          const body = route.method === 'POST' || route.method === 'PATCH' ? { id: 'fleet' } : undefined;
          const r = await call(route.method, concrete(route.path), body, headers);
          assertEnvelope(r, 401, 'UNAUTHENTICATED');
          assert.match(String(r.headers['www-authenticate']), /^Bearer /);
        });
      }
    }

    it('accepts the token with any case of "Bearer"', async () => {
      const r = await call('GET', `${LOC}/registries`, undefined, { authorization: `bearer ${TEST_ADMIN_TOKEN}` });
      assert.equal(r.statusCode, 200, r.body);
    });

    it('serves /healthz without a token', async () => {
      const r = await call('GET', '/healthz', undefined, {});
      assert.equal(r.statusCode, 200);
      assert.deepEqual(json(r), { status: 'ok' });
    });

    it('refuses before reading the body: malformed or oversized bodies still get 401', async () => {
      const bad = await stack.api.inject({
        method: 'POST',
        url: `${LOC}/registries`,
        headers: { 'content-type': 'application/json' },
        payload: '{not json',
      });
      assertEnvelope(bad, 401, 'UNAUTHENTICATED');
      const big = await stack.api.inject({
        method: 'POST',
        url: `${LOC}/registries`,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ id: 'x'.repeat(2 * 1024 * 1024) }),
      });
      assertEnvelope(big, 401, 'UNAUTHENTICATED');
    });

    it('answers unknown routes with 401 without a token and 404 NOT_FOUND with one', async () => {
      assertEnvelope(await call('GET', '/v1/nothing/here', undefined, {}), 401, 'UNAUTHENTICATED');
      assertEnvelope(await call('GET', '/v1/nothing/here'), 404, 'NOT_FOUND');
      assertEnvelope(await call('POST', `${REG}/devices/dev1:explode`, {}), 404, 'NOT_FOUND');
    });

    it('treats a throwing verifier as a refusal', async () => {
      const api = await createAdminApi({
        manager: stack.manager,
        verifyAdminToken: () => {
          throw new Error('verifier broke');
        },
        logger: pino({ level: 'silent' }),
      });
      try {
        const r = await api.inject({ method: 'GET', url: `${LOC}/registries`, headers: AUTH });
        assertEnvelope(r, 401, 'UNAUTHENTICATED');
      } finally {
        await api.close();
      }
    });
  });

  describe('registries', () => {
    it('creates, reads, lists, patches and deletes a registry', async () => {
      const created = await call('POST', `${LOC}/registries`, {
        id: 'reg-crud',
        eventNotificationConfigs: [{ subfolderMatches: 'alerts', pubsubTopicName: 'projects/demo/topics/alerts' }, { pubsubTopicName: 'projects/demo/topics/all' }],
        mqttConfig: { mqttEnabledState: 'MQTT_ENABLED' },
        httpConfig: { httpEnabledState: 'HTTP_DISABLED' },
      });
      assert.equal(created.statusCode, 200, created.body);
      const reg = json<ApiDeviceRegistry>(created);
      assert.equal(reg.id, 'reg-crud');
      assert.equal(reg.name, 'projects/demo/locations/europe-west1/registries/reg-crud');
      assert.equal(reg.httpConfig?.httpEnabledState, 'HTTP_DISABLED');
      assert.equal(reg.eventNotificationConfigs?.length, 2);

      const got = json<ApiDeviceRegistry>(await call('GET', `${LOC}/registries/reg-crud`));
      assert.deepEqual(got, reg);

      const listed = json<{ deviceRegistries: ApiDeviceRegistry[] }>(await call('GET', `${LOC}/registries`));
      assert.ok(listed.deviceRegistries.some((r) => r.id === 'reg-crud'));

      const patched = await call('PATCH', `${LOC}/registries/reg-crud?updateMask=http_config.http_enabled_state`, {
        httpConfig: { httpEnabledState: 'HTTP_ENABLED' },
        mqttConfig: { mqttEnabledState: 'MQTT_DISABLED' }, // not in the mask: ignored
      });
      assert.equal(patched.statusCode, 200, patched.body);
      assert.equal(json<ApiDeviceRegistry>(patched).httpConfig?.httpEnabledState, 'HTTP_ENABLED');
      assert.equal(json<ApiDeviceRegistry>(patched).mqttConfig?.mqttEnabledState, 'MQTT_ENABLED');

      const deleted = await call('DELETE', `${LOC}/registries/reg-crud`);
      assert.equal(deleted.statusCode, 200);
      assert.deepEqual(json(deleted), {});
      assertEnvelope(await call('GET', `${LOC}/registries/reg-crud`), 404, 'NOT_FOUND');
    });

    it('accepts snake_case keys in bodies and query strings', async () => {
      const r = await call('POST', `${LOC}/registries`, {
        id: 'reg-snake',
        event_notification_configs: [{ pubsub_topic_name: 'projects/demo/topics/t', subfolder_matches: 'x' }],
        mqtt_config: { mqtt_enabled_state: 'MQTT_DISABLED' },
      });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(json<ApiDeviceRegistry>(r).mqttConfig?.mqttEnabledState, 'MQTT_DISABLED');
      assert.equal(json<ApiDeviceRegistry>(r).eventNotificationConfigs?.[0]?.subfolderMatches, 'x');
      const page = await call('GET', `${LOC}/registries?page_size=1`);
      assert.equal(page.statusCode, 200, page.body);
    });

    it('pages through registries with pageSize and pageToken', async () => {
      for (const id of ['page-a', 'page-b', 'page-c']) {
        assert.equal((await call('POST', `/v1/projects/paging/locations/us-central1/registries`, { id })).statusCode, 200);
      }
      const seen: string[] = [];
      let token: string | undefined;
      do {
        const r = await call('GET', `/v1/projects/paging/locations/us-central1/registries?pageSize=2${token ? `&pageToken=${encodeURIComponent(token)}` : ''}`);
        assert.equal(r.statusCode, 200, r.body);
        const body = json<{ deviceRegistries: ApiDeviceRegistry[]; nextPageToken?: string }>(r);
        assert.ok(body.deviceRegistries.length <= 2);
        seen.push(...body.deviceRegistries.map((x) => x.id));
        token = body.nextPageToken;
      } while (token);
      assert.deepEqual(seen.sort(), ['page-a', 'page-b', 'page-c']);
      // An empty list is `{}`, as proto3 JSON omits empty repeated fields.
      assert.deepEqual(json(await call('GET', '/v1/projects/nobody/locations/us-central1/registries')), {});
    });

    it('refuses a create without id, with unknown fields or with a bad enum', async () => {
      assertViolation(await call('POST', `${LOC}/registries`, { mqttConfig: {} }), 'id');
      const unknown = await call('POST', `${LOC}/registries`, { id: 'r-unknown', colour: 'blue' });
      assert.match(assertViolation(unknown, 'colour'), /Unknown name "colour"/);
      const nested = await call('POST', `${LOC}/registries`, { id: 'r-nested', mqttConfig: { enabled: true } });
      assertViolation(nested, 'mqttConfig.enabled');
      const badEnum = await call('POST', `${LOC}/registries`, { id: 'r-enum', logLevel: 'LOUD' });
      assert.match(assertViolation(badEnum, 'logLevel'), /one of .*DEBUG/);
      const both = await call('POST', `${LOC}/registries`, { id: 'r-both', logLevel: 'INFO', log_level: 'INFO' });
      assertViolation(both, 'log_level');
    });

    it('refuses bad names, bad query parameters and a missing updateMask', async () => {
      assertViolation(await call('GET', `${LOC}/registries/goog-reserved`), 'name');
      assertViolation(await call('GET', '/v1/projects/demo/locations/Bad_Region/registries'), 'parent');
      assertViolation(await call('GET', `${LOC}/registries?pageSize=-1`), 'pageSize');
      assertViolation(await call('GET', `${LOC}/registries?pageSize=1&pageSize=2`), 'pageSize');
      assert.match(assertViolation(await call('GET', `${LOC}/registries?colour=blue`), 'colour'), /Cannot bind query parameter/);
      assertViolation(await call('GET', `${REG}?colour=blue`), 'colour');
      assertViolation(await call('DELETE', `${REG}?force=true`), 'force');
      assertViolation(await call('PATCH', `${REG}`, {}), 'updateMask');
    });

    it('refuses a registry credential that is not a certificate (registry-trust.test.ts covers the rest)', async () => {
      const r = await call('POST', `${LOC}/registries`, {
        id: 'r-ca',
        credentials: [{ publicKeyCertificate: { format: 'X509_CERTIFICATE_PEM', certificate: 'x' } }],
      });
      assertViolation(r, 'deviceRegistry.credentials[0].publicKeyCertificate.certificate');
    });

    it('maps domain errors: ALREADY_EXISTS 409, FAILED_PRECONDITION 400', async () => {
      assert.equal((await call('POST', `${LOC}/registries`, { id: 'r-dup' })).statusCode, 200);
      assertEnvelope(await call('POST', `${LOC}/registries`, { id: 'r-dup' }), 409, 'ALREADY_EXISTS');
      assert.equal((await call('POST', `${LOC}/registries/r-dup/devices`, { id: 'd-in-dup' })).statusCode, 200);
      assertEnvelope(await call('DELETE', `${LOC}/registries/r-dup`), 400, 'FAILED_PRECONDITION');
    });
  });

  describe('devices', () => {
    let numId: string;
    const key = es256Pem();

    before(async () => {
      const r = await call('POST', `${LOC}/registries`, { id: 'fleet' });
      assert.equal(r.statusCode, 200, r.body);
      const d = await call('POST', `${REG}/devices`, {
        id: 'dev1',
        credentials: [{ publicKey: { format: 'ES256_PEM', key }, expirationTime: '2099-01-01T00:00:00Z' }],
        metadata: { site: 'north', some_key: 'kept as is' },
        config: { version: '0', binary_data: Buffer.from('boot').toString('base64url') },
      });
      assert.equal(d.statusCode, 200, d.body);
      numId = json<ApiDevice>(d).numId;
    });

    it('returns proto3 JSON: numId and version as strings, base64 bytes, RFC 3339 times, name ending in numId', async () => {
      const d = json<ApiDevice>(await call('GET', `${REG}/devices/dev1`));
      assert.equal(d.id, 'dev1');
      assert.equal(typeof d.numId, 'string');
      assert.match(d.numId, /^[1-9][0-9]*$/);
      assert.equal(d.name, `projects/demo/locations/europe-west1/registries/fleet/devices/${d.numId}`);
      assert.equal(d.config?.version, '1');
      assert.equal(d.config?.binaryData, Buffer.from('boot').toString('base64'));
      assert.match(d.config?.cloudUpdateTime ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/);
      assert.equal(d.credentials?.[0]?.publicKey.format, 'ES256_PEM');
      assert.equal(d.credentials?.[0]?.expirationTime, '2099-01-01T00:00:00Z');
      assert.deepEqual(d.metadata, { site: 'north', some_key: 'kept as is' });
      assert.equal(d.blocked, undefined, 'false is the default and is omitted');
      assert.equal(d.state, undefined, 'no state before the first report');
    });

    it('addresses a device by its numeric id', async () => {
      const d = json<ApiDevice>(await call('GET', `${REG}/devices/${numId}`));
      assert.equal(d.id, 'dev1');
    });

    it('lists only id, name and numId without a fieldMask, and more with one', async () => {
      const plain = json<{ devices: ApiDevice[] }>(await call('GET', `${REG}/devices`));
      const listed = plain.devices.find((x) => x.id === 'dev1');
      assert.deepEqual(Object.keys(listed ?? {}).sort(), ['id', 'name', 'numId']);

      const masked = json<{ devices: ApiDevice[] }>(await call('GET', `${REG}/devices?fieldMask=config,metadata`));
      const m = masked.devices.find((x) => x.id === 'dev1');
      assert.deepEqual(Object.keys(m ?? {}).sort(), ['config', 'id', 'metadata', 'name', 'numId']);

      const byId = json<{ devices: ApiDevice[] }>(await call('GET', `${REG}/devices?deviceIds=dev1&deviceIds=nobody`));
      assert.deepEqual(byId.devices.map((x) => x.id), ['dev1']);
      const byNum = json<{ devices: ApiDevice[] }>(await call('GET', `${REG}/devices?deviceNumIds=${numId}`));
      assert.deepEqual(byNum.devices.map((x) => x.id), ['dev1']);
    });

    it('limits get to the fields of a fieldMask and refuses unknown paths', async () => {
      const d = json<Record<string, unknown>>(await call('GET', `${REG}/devices/dev1?fieldMask=gateway_config,config.version`));
      assert.deepEqual(Object.keys(d).sort(), ['config', 'gatewayConfig', 'id', 'name', 'numId']);
      assert.deepEqual(d.config, { version: '1' });
      assertViolation(await call('GET', `${REG}/devices/dev1?fieldMask=colour`), 'fieldMask');
      assertViolation(await call('GET', `${REG}/devices?fieldMask=config.colour`), 'fieldMask');
      assertViolation(await call('GET', `${REG}/devices?deviceNumIds=abc`), 'deviceNumIds[0]');
    });

    it('filters devices by gateway list options, one at a time', async () => {
      const gateways = json<{ devices?: ApiDevice[] }>(await call('GET', `${REG}/devices?gatewayListOptions.gatewayType=GATEWAY`));
      assert.ok(!gateways.devices?.some((x) => x.id === 'dev1'), 'dev1 is no gateway');
      const others = json<{ devices?: ApiDevice[] }>(await call('GET', `${REG}/devices?gatewayListOptions.gatewayType=NON_GATEWAY`));
      assert.ok(others.devices?.some((x) => x.id === 'dev1'));
      assertViolation(await call('GET', `${REG}/devices?gatewayListOptions.gatewayType=BRIDGE`), 'gatewayListOptions.gatewayType');
      assertViolation(
        await call('GET', `${REG}/devices?gatewayListOptions.gatewayType=GATEWAY&gatewayListOptions.associationsDeviceId=dev1`),
        'gatewayListOptions.associationsDeviceId',
      );
    });

    it('patches only the fields in updateMask and ignores output-only fields', async () => {
      const current = json<ApiDevice>(await call('GET', `${REG}/devices/dev1`));
      const r = await call('PATCH', `${REG}/devices/dev1?updateMask=blocked,metadata`, {
        ...current,
        blocked: true,
        metadata: { site: 'south' },
        logLevel: 'DEBUG', // not in the mask
      });
      assert.equal(r.statusCode, 200, r.body);
      const d = json<ApiDevice>(r);
      assert.equal(d.blocked, true);
      assert.deepEqual(d.metadata, { site: 'south' });
      assert.equal(d.logLevel, undefined);
      assert.equal(d.numId, current.numId);
      const back = await call('PATCH', `${REG}/devices/dev1?updateMask=blocked`, { blocked: false });
      assert.equal(json<ApiDevice>(back).blocked, undefined);
    });

    it('modifies the config with standard, URL-safe and unpadded base64 and honours versionToUpdate', async () => {
      const v2 = await call('POST', `${REG}/devices/dev1:modifyCloudToDeviceConfig`, { binaryData: Buffer.from([0xfb, 0xff]).toString('base64') });
      assert.equal(v2.statusCode, 200, v2.body);
      assert.equal(json<{ version: string }>(v2).version, '2');
      const v3 = await call('POST', `${REG}/devices/dev1:modifyCloudToDeviceConfig`, { binary_data: '-_8', version_to_update: 2 });
      assert.equal(v3.statusCode, 200, v3.body);
      assert.equal(json<{ binaryData: string }>(v3).binaryData, Buffer.from([0xfb, 0xff]).toString('base64'));
      const stale = await call('POST', `${REG}/devices/dev1:modifyCloudToDeviceConfig`, { binaryData: '', versionToUpdate: '2' });
      assertEnvelope(stale, 400, 'FAILED_PRECONDITION');

      const list = json<{ deviceConfigs: Array<{ version: string }> }>(await call('GET', `${REG}/devices/dev1/configVersions`));
      assert.deepEqual(list.deviceConfigs.map((c) => c.version).slice(0, 3), ['3', '2', '1']);
      const one = json<{ deviceConfigs: unknown[] }>(await call('GET', `${REG}/devices/dev1/configVersions?numVersions=1`));
      assert.equal(one.deviceConfigs.length, 1);
    });

    it('refuses invalid base64 with a binaryData field violation', async () => {
      for (const bad of ['a+/_', '!!!!', 'abcde', 'ab=c', 'a']) {
        const r = await call('POST', `${REG}/devices/dev1:modifyCloudToDeviceConfig`, { binaryData: bad });
        assert.match(assertViolation(r, 'binaryData'), /base64/i, bad);
      }
      assertViolation(await call('POST', `${REG}/devices/dev1:sendCommandToDevice`, { binaryData: '%%' }), 'binaryData');
      assertViolation(await call('POST', `${REG}/devices/dev1:modifyCloudToDeviceConfig`, { binaryData: 'aGk=', versionToUpdate: 'one' }), 'versionToUpdate');
      assertViolation(await call('POST', `${REG}/devices/dev1:modifyCloudToDeviceConfig`, {}), 'binaryData');
    });

    it('validates device bodies: credentials, timestamps, types, config version', async () => {
      assertViolation(
        await call('POST', `${REG}/devices`, { id: 'bad1', credentials: [{ publicKey: { format: 'ES256_PEM' } }] }),
        'credentials[0].publicKey.key',
      );
      assertViolation(
        await call('POST', `${REG}/devices`, { id: 'bad2', credentials: [{ publicKey: { format: 'DSA', key } }] }),
        'credentials[0].publicKey.format',
      );
      assertViolation(
        await call('POST', `${REG}/devices`, { id: 'bad3', credentials: [{ publicKey: { format: 'ES256_PEM', key }, expirationTime: 'tomorrow' }] }),
        'credentials[0].expirationTime',
      );
      assertViolation(
        await call('POST', `${REG}/devices`, { id: 'bad4', credentials: [{ publicKey: { format: 'ES256_PEM', key }, expirationTime: '2024-02-30T00:00:00Z' }] }),
        'credentials[0].expirationTime',
      );
      assertViolation(await call('POST', `${REG}/devices`, { id: 'bad5', blocked: 'true' }), 'blocked');
      assertViolation(await call('POST', `${REG}/devices`, { id: 'bad6', metadata: { k: 1 } }), 'metadata.k');
      assertViolation(await call('POST', `${REG}/devices`, { id: 'bad7', config: { version: '3' } }), 'config.version');
      assertViolation(await call('POST', `${REG}/devices`, { id: 'bad8', credentials: [1, 2, 3, 4] }), 'credentials');
      assertViolation(await call('POST', `${REG}/devices`, ['not', 'an', 'object']), 'body');
    });

    it('lists states (empty before any report) and refuses commands to an unconnected device', async () => {
      assert.deepEqual(json(await call('GET', `${REG}/devices/dev1/states?numStates=3`)), {});
      const cmd = await call('POST', `${REG}/devices/dev1:sendCommandToDevice`, { binaryData: 'aGk=', subfolder: 'a/b' });
      assertEnvelope(cmd, 400, 'FAILED_PRECONDITION');
    });

    it('delivers a command when the bus has a taker', async () => {
      let seen: { device: string; subfolder?: string; data: string } | undefined;
      const off = stack.bus.handleCommands(async (req) => {
        seen = { device: req.device, ...(req.subfolder ? { subfolder: req.subfolder } : {}), data: req.binaryData.toString() };
        return 'delivered';
      });
      try {
        const r = await call('POST', `${REG}/devices/${numId}:sendCommandToDevice`, { binaryData: Buffer.from('reboot').toString('base64'), subfolder: 'ops' });
        assert.equal(r.statusCode, 200, r.body);
        assert.deepEqual(json(r), {});
        assert.deepEqual(seen, { device: 'projects/demo/locations/europe-west1/registries/fleet/devices/dev1', subfolder: 'ops', data: 'reboot' });
      } finally {
        off();
      }
    });

    it('deletes a device by numeric id', async () => {
      const d = json<ApiDevice>(await call('POST', `${REG}/devices`, { id: 'short-lived' }));
      assert.deepEqual(json(await call('DELETE', `${REG}/devices/${d.numId}`)), {});
      assertEnvelope(await call('GET', `${REG}/devices/short-lived`), 404, 'NOT_FOUND');
    });
  });

  describe('robustness', () => {
    it('answers bad JSON with 400 and a too-large body with 413, both as envelopes', async () => {
      const bad = await stack.api.inject({
        method: 'POST',
        url: `${LOC}/registries`,
        headers: { ...AUTH, 'content-type': 'application/json' },
        payload: '{"id": ',
      });
      assertEnvelope(bad, 400, 'INVALID_ARGUMENT');
      const big = await stack.api.inject({
        method: 'POST',
        url: `${REG}/devices/dev1:sendCommandToDevice`,
        headers: { ...AUTH, 'content-type': 'application/json' },
        payload: JSON.stringify({ binaryData: 'A'.repeat(1100 * 1024) }),
      });
      assert.equal(big.statusCode, 413, big.body);
      assert.equal(json<ApiErrorEnvelope>(big).error.code, 413);
    });

    it('refuses prototype pollution attempts', async () => {
      const r = await stack.api.inject({
        method: 'POST',
        url: `${LOC}/registries`,
        headers: { ...AUTH, 'content-type': 'application/json' },
        payload: '{"id":"proto-reg","__proto__":{"polluted":true}}',
      });
      assert.equal(r.statusCode, 400, r.body);
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });

    it('hides internal failures behind a generic 500 INTERNAL', async () => {
      const broken = new Proxy(stack.manager, {
        get(target, prop, receiver) {
          if (prop === 'getRegistry') {
            return async () => {
              throw new Error('SQLITE_CORRUPT: database disk image is malformed at /var/secret/path');
            };
          }
          return Reflect.get(target, prop, receiver) as unknown;
        },
      });
      const api = await createAdminApi({ manager: broken, verifyAdminToken: verifyTestToken, logger: pino({ level: 'silent' }) });
      try {
        const r = await api.inject({ method: 'GET', url: REG, headers: AUTH });
        const body = assertEnvelope(r, 500, 'INTERNAL');
        assert.doesNotMatch(r.body, /SQLITE|secret|stack/i);
        assert.equal(body.error.details, undefined);
      } finally {
        await api.close();
      }
    });

    it('does not log the admin token', async () => {
      const lines: string[] = [];
      const logger = pino({ level: 'trace' }, { write: (s: string) => lines.push(s) });
      const api = await createAdminApi({ manager: stack.manager, verifyAdminToken: verifyTestToken, logger });
      try {
        await api.inject({ method: 'GET', url: `${LOC}/registries`, headers: AUTH });
        await api.inject({ method: 'GET', url: `${LOC}/registries`, headers: { authorization: 'Bearer wrong-token-value' } });
      } finally {
        await api.close();
      }
      assert.ok(lines.some((l) => l.includes('"statusCode":200')), 'requests are logged');
      assert.ok(lines.every((l) => !l.includes(TEST_ADMIN_TOKEN) && !l.includes('wrong-token-value')));
    });
  });

  describe('OpenAPI', () => {
    it('documents every route from the same schemas', async () => {
      const r = await call('GET', '/v1/openapi.json');
      assert.equal(r.statusCode, 200);
      const doc = json<{ openapi: string; paths: Record<string, Record<string, { operationId: string }>>; components: { schemas: Record<string, unknown> } }>(r);
      assert.match(doc.openapi, /^3\.1\./);
      for (const route of ADMIN_ROUTES) {
        assert.equal(doc.paths[route.path]?.[route.method.toLowerCase()]?.operationId, route.operationId, route.path);
      }
      for (const name of ['Device', 'DeviceRegistry', 'DeviceConfig', 'DeviceState', 'Error']) assert.ok(doc.components.schemas[name], name);
    });
  });
});
