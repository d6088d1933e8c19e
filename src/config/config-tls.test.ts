import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from './config.js';

test('MQTT by ALPN is off by default; KEYWAY_MQTT_ALPN_PORT/HOST or mqtt.alpn turn it on', () => {
  assert.equal(loadConfig({ env: {} }).mqtt.alpn, undefined);
  assert.deepEqual(loadConfig({ env: { KEYWAY_MQTT_ALPN_PORT: '443' } }).mqtt.alpn, { host: '0.0.0.0', port: 443 }, 'the MQTT host by default');
  assert.deepEqual(loadConfig({ env: { KEYWAY_MQTT_ALPN_PORT: '8443', KEYWAY_MQTT_ALPN_HOST: '10.0.0.1' } }).mqtt.alpn, { host: '10.0.0.1', port: 8443 });
  const both = loadConfig({ env: { KEYWAY_MQTT_PORT: '1883' }, overrides: { mqtt: { alpn: { port: 443 } } } });
  assert.equal(both.mqtt.port, 1883);
  assert.deepEqual(both.mqtt.alpn, { host: '0.0.0.0', port: 443 });
  assert.throws(() => loadConfig({ env: { KEYWAY_MQTT_ALPN_PORT: 'x' } }), (e: unknown) => e instanceof ConfigError && /KEYWAY_MQTT_ALPN_PORT/.test(e.message));
  assert.throws(() => loadConfig({ env: { KEYWAY_MQTT_ALPN_HOST: 'h' } }), (e: unknown) => e instanceof ConfigError && /KEYWAY_MQTT_ALPN_PORT/.test(e.message));
});

test('tls.certificates lists certificate and key files; entries without both are refused', () => {
  const config = loadConfig({ env: {}, overrides: { tls: { certificates: [{ certFile: 'ec.crt', keyFile: 'ec.key' }] } } });
  assert.deepEqual(config.tls.certificates, [{ certFile: 'ec.crt', keyFile: 'ec.key' }]);
  assert.throws(
    () => loadConfig({ env: {}, overrides: { tls: { certificates: [{ certFile: 'ec.crt' } as never] } } }),
    (e: unknown) => e instanceof ConfigError && /tls\.certificates\[0\]/.test(e.message),
  );
  assert.throws(() => loadConfig({ env: {}, overrides: { tls: { certificates: 'x' as never } } }), ConfigError);
  assert.equal(loadConfig({ env: { KEYWAY_TLS_CERT: 'a.crt', KEYWAY_TLS_KEY: 'a.key' } }).tls.certFile, 'a.crt', 'the shorthand stays');
});
