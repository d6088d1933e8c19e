import { DEFAULT_RATE_LIMITS } from '../registry/device-quotas.js';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceRevoked, RegistryAccessChanged } from '../bus/bus.js';
import type { AuthenticatedDevice, GatewayDelegatedDevice } from '../registry/device-manager.js';
import { accessRefusal } from './registry-access.js';
import { RevocationWindow, revokes } from './revocation.js';

const KEY = 'projects/p/locations/l/registries/r/devices/dev';
const event = (over: Partial<DeviceRevoked> = {}): DeviceRevoked => ({
  device: KEY,
  reason: 'credentials-changed',
  blocked: false,
  credentialFingerprints: ['aa', 'bb'],
  ...over,
});

/** A JWT connection of device `key` that authenticated with credential `fingerprint`. */
const jwt = (fingerprint: string, key = KEY): AuthenticatedDevice => ({
  method: 'jwt',
  key,
  name: { project: 'p', location: 'l', registry: 'r', device: 'dev' },
  numId: '1',
  credentialFingerprint: fingerprint,
  rateLimits: DEFAULT_RATE_LIMITS, tokenExpiresAt: new Date(0),
});

/** A connection of device KEY with certificate `ff`, whose chain has `revocationKeys`. */
const certificateDevice = (revocationKeys: string[] = ['cert:ff']): AuthenticatedDevice => ({
  method: 'certificate',
  key: KEY,
  name: { project: 'p', location: 'l', registry: 'r', device: 'dev' },
  numId: '1',
  certificateFingerprint: 'ff',
  revocationKeys,
  notAfter: new Date(0),
  provisioned: false, rateLimits: DEFAULT_RATE_LIMITS,
});

describe('revocation', () => {
  test('deleted, blocked, or the credential in use gone: revoked; the credential kept: not', () => {
    assert.equal(revokes(event(), jwt('aa')), false);
    assert.equal(revokes(event(), jwt('cc')), true);
    assert.equal(revokes(event({ reason: 'blocked', blocked: true }), jwt('aa')), true);
    assert.equal(revokes(event({ reason: 'deleted', credentialFingerprints: ['aa'] }), jwt('aa')), true);
  });

  test('a registered device certificate outlives a change of credentials, not a block', () => {
    const certificate = certificateDevice();
    assert.equal(revokes(event(), certificate), false);
    assert.equal(revokes(event({ reason: 'blocked', blocked: true }), certificate), true);
    assert.equal(revokes(event(), { ...certificate, credentialFingerprint: 'cc' }), true, 'a certificate credential that was removed');
  });

  test('a device attached to a gateway: by its token, like its own connection; by association alone, only a block or a deletion', () => {
    const attached = (token?: string): GatewayDelegatedDevice => ({
      method: 'gateway',
      key: KEY,
      name: { project: 'p', location: 'l', registry: 'r', device: 'dev' },
      numId: '1',
      gatewayKey: `${KEY}-gw`,
      byAssociation: token === undefined,
      ...(token !== undefined ? { token: { credentialFingerprint: token, expiresAt: new Date(0) } } : {}),
      rateLimits: DEFAULT_RATE_LIMITS,
    });
    assert.equal(revokes(event(), attached('aa')), false);
    assert.equal(revokes(event(), attached('cc')), true);
    assert.equal(revokes(event(), attached()), false, 'no credential was presented');
    assert.equal(revokes(event({ reason: 'blocked', blocked: true }), attached()), true);
    assert.equal(revokes(event({ reason: 'deleted' }), attached()), true);
    const window = new RevocationWindow(10_000);
    const before = window.mark();
    window.record(event({ credentialFingerprints: [] }));
    assert.equal(window.revokedSince(before, attached('aa')), true);
    assert.equal(window.revokedSince(before, attached()), false);
  });

  test('a revocation that arrives while a token is being checked still refuses that connection', () => {
    const window = new RevocationWindow(10_000);
    const before = window.mark();
    window.record(event({ reason: 'blocked', blocked: true }));
    assert.equal(window.revokedSince(before, jwt('aa')), true);
    assert.equal(window.revokedSince(before, jwt('aa', `${KEY}x`)), false, 'another device');
    // An authentication that began after the revocation saw it in the store already.
    assert.equal(window.revokedSince(window.mark(), jwt('aa')), false);
  });

  test('only the latest event per device counts, and old ones are forgotten', async () => {
    const window = new RevocationWindow(20);
    const before = window.mark();
    window.record(event({ credentialFingerprints: ['bb'] }));
    assert.equal(window.revokedSince(before, jwt('aa')), true);
    window.record(event({ credentialFingerprints: ['aa'] }));
    assert.equal(window.revokedSince(before, jwt('aa')), false);
    await new Promise((r) => setTimeout(r, 40));
    window.record(event({ device: 'other' }));
    assert.equal(window.size, 1, 'entries older than the window are pruned');
  });

  test('a certificate revoked while a chain is being checked still refuses that connection', async () => {
    const certificate = certificateDevice(['cert:ff', 'serial:ca/1', 'cert:intermediate']);
    const window = new RevocationWindow(20);
    const before = window.mark();
    window.recordCertificates({ keys: ['cert:other'], reason: 'test' });
    assert.equal(window.revokedSince(before, certificate), false, 'keys of other certificates');
    window.recordCertificates({ keys: ['cert:intermediate'], reason: 'intermediate revoked' });
    assert.equal(window.revokedSince(before, certificate), true, 'a key of the chain');
    assert.equal(window.revokedSince(window.mark(), certificate), false, 'a check begun after the revocation saw it');
    assert.equal(window.revokedSince(before, jwt('aa')), false, 'JWT connections have no certificate keys');
    await new Promise((r) => setTimeout(r, 40));
    window.recordCertificates({ keys: ['cert:later'], reason: 'test' });
    assert.equal(window.size, 1, 'keys older than the window are pruned');
  });

  test("a registry's access change refuses what it no longer admits: MQTT off refuses all, an auth method the other credential", () => {
    const access = (over: Partial<RegistryAccessChanged> = {}): RegistryAccessChanged => ({
      registry: 'projects/p/locations/l/registries/r',
      mqttEnabled: true,
      deviceAuthMethod: 'JWT_OR_CERTIFICATE',
      ...over,
    });
    const byAssociation: GatewayDelegatedDevice = {
      method: 'gateway',
      key: KEY,
      name: { project: 'p', location: 'l', registry: 'r', device: 'dev' },
      numId: '1',
      gatewayKey: `${KEY}-gw`,
      byAssociation: true,
      rateLimits: DEFAULT_RATE_LIMITS,
    };
    const byToken: GatewayDelegatedDevice = { ...byAssociation, byAssociation: false, token: { credentialFingerprint: 'aa', expiresAt: new Date(0) } };
    const devices = [jwt('aa'), certificateDevice(), byAssociation, byToken];
    const refused = (event: RegistryAccessChanged): boolean[] => devices.map((d) => accessRefusal(event, d) !== undefined);
    assert.deepEqual(refused(access()), [false, false, false, false]);
    assert.deepEqual(refused(access({ mqttEnabled: false })), [true, true, true, true]);
    assert.deepEqual(refused(access({ deviceAuthMethod: 'CERTIFICATE_ONLY' })), [true, false, false, true], 'JWTs refused');
    assert.deepEqual(refused(access({ deviceAuthMethod: 'JWT_ONLY' })), [false, true, false, false], 'certificates refused');
    assert.match(accessRefusal(access({ mqttEnabled: false }), jwt('aa')) ?? '', /MQTT is disabled/);

    const window = new RevocationWindow(10_000);
    const before = window.mark();
    window.recordRegistryAccess(access({ deviceAuthMethod: 'JWT_ONLY' }));
    assert.equal(window.revokedSince(before, certificateDevice()), true, 'changed while the chain was being checked');
    assert.equal(window.revokedSince(before, jwt('aa')), false, 'a JWT is still accepted');
    assert.equal(window.revokedSince(window.mark(), certificateDevice()), false, 'a check begun after the change read it from the store');
    const other = { ...certificateDevice(), name: { project: 'p', location: 'l', registry: 'r2', device: 'dev' } };
    assert.equal(window.revokedSince(before, other), false, 'another registry');
    window.recordRegistryAccess(access());
    assert.equal(window.revokedSince(before, certificateDevice()), false, 'only the latest change of the registry counts');
  });
});
