import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { AuditEvent } from '../domain/audit-events.js';
import { KeywayError } from '../domain/errors.js';
import type { Status } from '../domain/resources.js';
import { ensureDevelopmentPki } from '../pki/development-ca.js';
import type {
  AuthenticatedDevice,
  DeviceGateway,
  DeviceMessageSink,
  GatewayDelegatedDevice,
  JwtAuthenticatedDevice,
} from '../registry/device-manager.js';
import { DEFAULT_RATE_LIMITS, type DeviceQuotas, type QuotaVerdict, type RateLimitedDevice } from '../registry/device-quotas.js';
import { createDeviceBridge, type DeviceBridge } from './device-bridge.js';

const NAME = { project: 'acme', location: 'europe-west1', registry: 'fleet' };
const PATH = 'projects/acme/locations/europe-west1/registries/fleet/devices';
const GOOD = 'good-token';

const jwtDevice = (id: string): JwtAuthenticatedDevice => ({
  method: 'jwt',
  key: `${PATH}/${id}`,
  name: { ...NAME, device: id },
  numId: '1001',
  credentialFingerprint: 'f',
  tokenExpiresAt: new Date(Date.now() + 3_600_000),
  rateLimits: DEFAULT_RATE_LIMITS,
});

const delegated = (id: string, gateway: string): GatewayDelegatedDevice => ({
  method: 'gateway',
  key: `${PATH}/${id}`,
  name: { ...NAME, device: id },
  numId: '2002',
  gatewayKey: `${PATH}/${gateway}`,
  byAssociation: true,
  rateLimits: DEFAULT_RATE_LIMITS,
});

/** A device gateway that knows one token, records what it is told, and fails when asked to. */
class FakeGateway {
  failAuth = false;
  config = { version: 3, binaryData: Buffer.from('cfg') };
  readonly events: string[] = [];
  readonly states: Array<[string, string]> = [];
  readonly sent: Array<[string, number]> = [];
  readonly errors: Array<[string, Status]> = [];

  async authenticateJwt(clientId: string, token: string, _now?: Date, protocol?: string) {
    if (this.failAuth) throw new Error('store down');
    assert.equal(protocol, 'http');
    if (token !== GOOD) return { ok: false as const, reason: 'token refused' };
    return { ok: true as const, device: jwtDevice(clientId.split('/').at(-1) as string) };
  }
  async authorizeGatewayDevice(gateway: AuthenticatedDevice, deviceId: string) {
    return deviceId === 'leaf' ? { ok: true as const, device: delegated('leaf', gateway.name.device) } : { ok: false as const, reason: 'not bound' };
  }
  async checkGatewayRelay() {
    return { ok: false as const, reason: 'no' };
  }
  recordEvent(device: string): void {
    this.events.push(device);
  }
  async recordState(device: string, data: Buffer): Promise<void> {
    if (device.endsWith('/gone')) throw new KeywayError('NOT_FOUND', 'Device gone not found.');
    this.states.push([device, data.toString()]);
  }
  async latestConfig() {
    return this.config;
  }
  recordConfigSent(device: string, version: number): void {
    this.sent.push([device, version]);
  }
  recordError(device: string, status: Status): void {
    this.errors.push([device, status]);
  }
}

class FakeSink implements DeviceMessageSink {
  readonly published: Array<{ kind: string; device: string; payload: string; subfolder?: string }> = [];
  publishEvent(device: AuthenticatedDevice | GatewayDelegatedDevice, payload: Buffer, subfolder?: string): void {
    this.published.push({ kind: 'event', device: device.name.device, payload: payload.toString(), ...(subfolder ? { subfolder } : {}) });
  }
  publishState(device: AuthenticatedDevice | GatewayDelegatedDevice, payload: Buffer): void {
    this.published.push({ kind: 'state', device: device.name.device, payload: payload.toString() });
  }
}

class FakeQuotas implements DeviceQuotas {
  refuseConnections = false;
  now(): number {
    return performance.now();
  }
  readonly telemetry: string[] = [];
  admitConnection(): QuotaVerdict {
    return this.refuseConnections ? { ok: false, limit: 'registryConnectionsPerMinute', retryAfterSeconds: 2.2 } : { ok: true };
  }
  admitTelemetry(device: RateLimitedDevice): QuotaVerdict {
    this.telemetry.push(device.key);
    return { ok: true };
  }
  admitState(): QuotaVerdict {
    return { ok: true };
  }
}

describe('device bridge', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-bridge-'));
  let bridge: DeviceBridge;
  let gateway: FakeGateway;
  let sink: FakeSink;
  let quotas: FakeQuotas;
  const audited: AuditEvent[] = [];

  before(async () => {
    const pki = await ensureDevelopmentPki(dir, []);
    gateway = new FakeGateway();
    sink = new FakeSink();
    quotas = new FakeQuotas();
    bridge = await createDeviceBridge({
      gateway: gateway as unknown as DeviceGateway,
      messages: sink,
      quotas,
      audit: { record: (e) => audited.push(e) },
      tls: { cert: pki.certPem, key: pki.keyPem },
      logger: pino({ level: 'silent' }),
    });
  });
  after(async () => {
    await bridge.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const inject = (method: 'GET' | 'POST', url: string, body?: unknown, token: string | undefined = GOOD) =>
    bridge.app.inject({
      method,
      url,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });

  it('authenticates before it reads the body, and counts the request before it reads it', async () => {
    const r = await inject('POST', `/v1/${PATH}/d1:publishEvent`, '{ not json', 'bad-token');
    assert.equal(r.statusCode, 401, r.body);
    assert.equal(audited.at(-1)?.kind, 'device.authenticate');
    assert.equal(audited.at(-1)?.reason, 'token refused');
    quotas.refuseConnections = true;
    try {
      const q = await inject('POST', `/v1/${PATH}/d1:publishEvent`, '{ not json');
      assert.equal(q.statusCode, 429, q.body);
      assert.equal(q.headers['retry-after'], '3');
      assert.equal(q.json().error.status, 'RESOURCE_EXHAUSTED');
    } finally {
      quotas.refuseConnections = false;
    }
    assert.equal((await inject('POST', `/v1/${PATH}/d1:publishEvent`, '{ not json')).statusCode, 400, 'then the body');
  });

  it('answers 503 when the device manager cannot decide, never 401', async () => {
    gateway.failAuth = true;
    try {
      const r = await inject('GET', `/v1/${PATH}/d1/config`);
      assert.equal(r.statusCode, 503, r.body);
      assert.equal(r.json().error.status, 'UNAVAILABLE');
    } finally {
      gateway.failAuth = false;
    }
  });

  it("records a gateway's data for the device it acts for, and charges that device's quotas", async () => {
    const r = await inject('POST', `/v1/${PATH}/gw:publishEvent`, { binaryData: 'aGk=', subFolder: 'a/b', gatewayInfo: { delegatedDeviceId: 'leaf' } });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(sink.published.at(-1), { kind: 'event', device: 'leaf', payload: 'hi', subfolder: 'a/b' });
    assert.equal(gateway.events.at(-1), `${PATH}/leaf`);
    assert.equal(quotas.telemetry.at(-1), `${PATH}/leaf`);

    const s = await inject('POST', `/v1/${PATH}/gw:setState`, { state: { binary_data: 'c3Q' }, gateway_info: { delegated_device_id: 'leaf' } });
    assert.equal(s.statusCode, 200, s.body);
    assert.deepEqual(gateway.states.at(-1), [`${PATH}/leaf`, 'st']);
    assert.deepEqual(sink.published.at(-1), { kind: 'state', device: 'leaf', payload: 'st' });
  });

  it('publishes a state only once it is stored', async () => {
    const before = sink.published.length;
    const r = await inject('POST', `/v1/${PATH}/gone:setState`, { state: { binaryData: 'eA==' } });
    assert.equal(r.statusCode, 404, r.body);
    assert.equal(sink.published.length, before, 'nothing published');
  });

  it('records lastConfigSendTime only when the data is sent', async () => {
    gateway.sent.length = 0;
    assert.deepEqual((await inject('GET', `/v1/${PATH}/d1/config?local_version=3`)).json(), { version: '3' });
    assert.deepEqual(gateway.sent, []);
    assert.deepEqual((await inject('GET', `/v1/${PATH}/d1/config?localVersion=2`)).json(), { version: '3', binaryData: 'Y2Zn' });
    assert.deepEqual(gateway.sent, [[`${PATH}/d1`, 3]]);
  });

  it("records the device's own errors as its lastErrorStatus, not refused authentications", async () => {
    gateway.errors.length = 0;
    await inject('POST', `/v1/${PATH}/d2:publishEvent`, { binary_data: '!' });
    await inject('POST', `/v1/${PATH}/d3:publishEvent`, { binary_data: 'AA' }, 'bad-token');
    assert.equal(gateway.errors.length, 1);
    const [device, status] = gateway.errors[0] as [string, Status];
    assert.equal(device, `${PATH}/d2`);
    assert.equal(status.code, 3);
    assert.match(status.message, /^http: Invalid value at 'binary_data'/);
  });
});
