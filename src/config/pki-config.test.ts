import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from './config.js';

describe('pki configuration', () => {
  it('is absent by default and set by KEYWAY_MASTER_KEY_FILE and the PKCS#11 variables', () => {
    assert.equal(loadConfig({ env: {} }).pki, undefined);
    const c = loadConfig({
      env: {
        KEYWAY_MASTER_KEY_FILE: '/etc/keyway/master.key',
        KEYWAY_PKCS11_MODULE: '/usr/lib/softhsm/libsofthsm2.so',
        KEYWAY_PKCS11_TOKEN_LABEL: 'keyway',
        KEYWAY_PKCS11_PIN_FILE: '/etc/keyway/pin',
      },
    });
    assert.deepEqual(c.pki, {
      masterKeyFile: '/etc/keyway/master.key',
      pkcs11: { module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'keyway', pinFile: '/etc/keyway/pin' },
    });
  });

  it('never keeps the master key or the PIN themselves', () => {
    const c = loadConfig({ env: { KEYWAY_MASTER_KEY: 'c2VjcmV0', KEYWAY_PKCS11_PIN: '1234' } });
    assert.equal(c.pki, undefined);
    assert.doesNotMatch(JSON.stringify(c), /c2VjcmV0|1234/);
  });

  it('refuses half a PKCS#11 setting', () => {
    assert.throws(() => loadConfig({ env: { KEYWAY_PKCS11_MODULE: '/x.so' } }), ConfigError);
    assert.throws(() => loadConfig({ env: {}, overrides: { pki: { pkcs11: { module: '/x.so' } as never } } }), /tokenLabel/);
  });
});
