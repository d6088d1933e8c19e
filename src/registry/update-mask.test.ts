import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeywayError } from '../domain/errors.js';
import { DEVICE_MASK_PATHS, parseUpdateMask, REGISTRY_MASK_PATHS } from './update-mask.js';

describe('parseUpdateMask', () => {
  it('accepts snake_case, camelCase and comma-joined paths', () => {
    assert.deepEqual([...parseUpdateMask(['mqttConfig.mqttEnabledState', 'http_config, log_level'], REGISTRY_MASK_PATHS)], [
      'mqtt_config.mqtt_enabled_state',
      'http_config',
      'log_level',
    ]);
    assert.deepEqual([...parseUpdateMask(['gatewayConfig.gatewayAuthMethod'], DEVICE_MASK_PATHS)], ['gateway_config.gateway_auth_method']);
  });

  it('refuses empty masks and paths that may not be changed', () => {
    for (const mask of [[], [''], [' , '], ['numId'], ['num_id'], ['credentials.0'], ['BLOCKED'], ['__proto__']])
      assert.throws(
        () => parseUpdateMask(mask, DEVICE_MASK_PATHS),
        (e: unknown) => e instanceof KeywayError && e.status === 'INVALID_ARGUMENT' && e.fieldViolations[0]?.field === 'updateMask',
        JSON.stringify(mask),
      );
  });
});
