import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isKeywayError } from '../domain/errors.js';
import type { Device } from '../domain/resources.js';
import { applyMask, parseMaskPaths, resolveMask } from './field-mask.js';
import { normalizeKeys } from './field-names.js';
import { DeviceSchema, DeviceRegistrySchema } from './json-schemas.js';
import { decodeBytes, deviceInputFromJson, deviceToJson, parseInt64, parseTimestamp, timestampToJson } from './proto-json.js';

const violationField = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    assert.ok(isKeywayError(e), String(e));
    assert.equal(e.status, 'INVALID_ARGUMENT');
    return e.fieldViolations[0]?.field ?? '';
  }
  assert.fail('expected an INVALID_ARGUMENT');
};

describe('proto3 JSON bytes', () => {
  it('decodes standard and URL-safe base64, padded or not', () => {
    const data = Buffer.from([0xfb, 0xff, 0xfe, 0x00, 0x41]);
    for (const text of [data.toString('base64'), data.toString('base64url'), data.toString('base64').replace(/=+$/, '')]) {
      assert.deepEqual(decodeBytes('binaryData', text), data, text);
    }
    assert.deepEqual(decodeBytes('binaryData', ''), Buffer.alloc(0));
  });

  it('refuses what is not base64 instead of decoding it leniently', () => {
    for (const bad of ['a+/_', 'ab cd', 'abc!', 'a', 'abcde', 'ab=c', 'abc===', 'ab=', '====']) {
      assert.equal(violationField(() => decodeBytes('binaryData', bad)), 'binaryData', bad);
    }
  });
});

describe('proto3 JSON scalars', () => {
  it('parses RFC 3339 with offsets and fractions, refusing impossible dates', () => {
    assert.equal(parseTimestamp('t', '2024-01-31T12:00:00+02:00').toISOString(), '2024-01-31T10:00:00.000Z');
    assert.equal(parseTimestamp('t', '2024-01-31t12:00:00.123456789z').toISOString(), '2024-01-31T12:00:00.123Z');
    assert.equal(parseTimestamp('t', '2024-02-29T00:00:00Z').toISOString(), '2024-02-29T00:00:00.000Z');
    for (const bad of ['2023-02-29T00:00:00Z', '2024-13-01T00:00:00Z', '2024-01-01 00:00:00Z', '2024-01-01T24:00:00Z', '1706700000', 'yesterday']) {
      assert.equal(violationField(() => parseTimestamp('expirationTime', bad)), 'expirationTime', bad);
    }
  });

  it('writes times in UTC with 0 or 3 fractional digits', () => {
    assert.equal(timestampToJson(new Date('2024-01-31T10:00:00.000Z')), '2024-01-31T10:00:00Z');
    assert.equal(timestampToJson(new Date('2024-01-31T10:00:00.120Z')), '2024-01-31T10:00:00.120Z');
  });

  it('takes int64 as a string or a number, refusing what it cannot represent exactly', () => {
    assert.equal(parseInt64('v', '42'), 42);
    assert.equal(parseInt64('v', 42), 42);
    assert.equal(violationField(() => parseInt64('versionToUpdate', '9007199254740993')), 'versionToUpdate');
    assert.equal(violationField(() => parseInt64('versionToUpdate', '1e3')), 'versionToUpdate');
  });
});

describe('device JSON', () => {
  const device: Device = {
    name: { project: 'p', location: 'us-central1', registry: 'reg', device: 'dev' },
    numId: '9007199254740993', // beyond double precision: must survive as a string
    credentials: [{ publicKey: { format: 'ES256_PEM', key: 'PEM' } }],
    blocked: false,
    metadata: {},
    logLevel: 'LOG_LEVEL_UNSPECIFIED',
    gatewayConfig: { gatewayType: 'NON_GATEWAY', gatewayAuthMethod: 'GATEWAY_AUTH_METHOD_UNSPECIFIED' },
    config: { version: 1, cloudUpdateTime: new Date('2024-01-01T00:00:00Z'), binaryData: Buffer.alloc(0) },
    lastErrorStatus: { code: 16, message: 'mqtt: SERVER: The authorization token expired.' },
  };

  it('omits defaults, keeps 64-bit ids exact and names the device by numId', () => {
    const json = deviceToJson(device);
    assert.deepEqual(json, {
      id: 'dev',
      name: 'projects/p/locations/us-central1/registries/reg/devices/9007199254740993',
      numId: '9007199254740993',
      credentials: [{ publicKey: { format: 'ES256_PEM', key: 'PEM' } }],
      lastErrorStatus: { code: 16, message: 'mqtt: SERVER: The authorization token expired.' },
      config: { version: '1', cloudUpdateTime: '2024-01-01T00:00:00Z' },
      gatewayConfig: { gatewayType: 'NON_GATEWAY' },
    });
  });

  it('reads only writable fields and treats an epoch expiration as none', () => {
    const input = deviceInputFromJson(
      {
        credentials: [{ publicKey: { format: 'RSA_PEM', key: 'K' }, expirationTime: '1970-01-01T00:00:00Z' }],
        numId: '1',
        lastEventTime: '2024-01-01T00:00:00Z',
      } as never,
      'patch',
    );
    assert.deepEqual(input, { credentials: [{ publicKey: { format: 'RSA_PEM', key: 'K' } }] });
  });
});

describe('field names and masks', () => {
  it('renames snake_case message fields but never map keys', () => {
    const body: Record<string, unknown> = {
      log_level: 'INFO',
      metadata: { snake_key: 'v' },
      gateway_config: { gateway_type: 'GATEWAY' },
      credentials: [{ public_key: { format: 'ES256_PEM', key: 'k' }, expiration_time: 'x' }],
      not_a_field: 1,
    };
    normalizeKeys(body, DeviceSchema);
    assert.deepEqual(body, {
      logLevel: 'INFO',
      metadata: { snake_key: 'v' },
      gatewayConfig: { gatewayType: 'GATEWAY' },
      credentials: [{ publicKey: { format: 'ES256_PEM', key: 'k' }, expirationTime: 'x' }],
      not_a_field: 1,
    });
    const reg: Record<string, unknown> = { mqtt_config: { mqtt_enabled_state: 'MQTT_ENABLED' } };
    normalizeKeys(reg, DeviceRegistrySchema);
    assert.deepEqual(reg, { mqttConfig: { mqttEnabledState: 'MQTT_ENABLED' } });
  });

  it('resolves masks against the schema and copies only what they name', () => {
    const mask = resolveMask('fieldMask', parseMaskPaths(' config.version , gateway_config ,'), DeviceSchema);
    assert.deepEqual(mask, [['config', 'version'], ['gatewayConfig']]);
    const projected = applyMask({ id: 'a', numId: '1', config: { version: '2', binaryData: 'eA==' }, blocked: true }, mask, ['id', 'name', 'numId']);
    assert.deepEqual(projected, { id: 'a', numId: '1', config: { version: '2' } });
    assert.equal(violationField(() => resolveMask('fieldMask', ['config.nope'], DeviceSchema)), 'fieldMask');
  });
});
