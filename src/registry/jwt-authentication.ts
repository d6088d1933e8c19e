/**
 * Device authentication by JWT (reference §1.2–1.3): the client id names the device, the token
 * must verify with one of its usable credentials and carry the project as audience. Every
 * refusal has a reason for the log; the device itself learns nothing but "not authorised",
 * except that a device whose token verified may be told it is blocked or its protocol is off.
 */
import type { Logger } from 'pino';
import { resolveRateLimits } from './device-quotas.js';
import { formatDevice, parseDevice } from '../domain/names.js';
import { deviceRefOf } from './device-refs.js';
import { isKeywayError } from '../domain/errors.js';
import { CredentialKeyCache } from '../identity/credential-key-cache.js';
import type { CredentialKey } from '../identity/public-key.js';
import { verifyDeviceJwt } from '../identity/device-jwt.js';
import type { Store } from '../store/store.js';
import type { DeviceAuthResult, JwtAuthenticatedDevice } from './device-manager.js';
import { isUsable } from './device-rules.js';
import { authMethodRefusal, gatewayIdentity, protocolRefusal } from './device-plane-rules.js';
import type { DeviceProtocol } from '../domain/resources.js';

const refuse = (reason: string): DeviceAuthResult<JwtAuthenticatedDevice> => ({ ok: false, reason });

/**
 * Parsed keys of recently seen credentials, shared by every authentication in the process. Each
 * costs about 3 KB (mostly OpenSSL's key), so the cache serves the devices that reconnect most
 * rather than the whole fleet: a first connection parses its key either way.
 */
const credentialKeys = new CredentialKeyCache(1_000);

export async function authenticateDeviceJwt(
  store: Store,
  logger: Logger,
  clientId: string,
  token: string,
  now: Date,
  protocol: DeviceProtocol = 'mqtt',
): Promise<DeviceAuthResult<JwtAuthenticatedDevice>> {
  let name;
  try {
    name = parseDevice(clientId, 'clientId');
  } catch (e) {
    if (isKeywayError(e)) return refuse('malformed client id');
    throw e;
  }
  const registry = await store.getRegistry(name);
  if (!registry) return refuse('unknown registry');
  const methodRefused = authMethodRefusal(registry.deviceAuthMethod, 'jwt');
  if (methodRefused) return refuse(methodRefused);
  const device = await store.findDeviceCredentials(name, deviceRefOf(name.device));
  if (!device) return refuse('unknown device');

  const keys: CredentialKey[] = [];
  for (const [i, credential] of device.credentials.entries()) {
    if (!isUsable(credential, now)) continue;
    try {
      keys.push(credentialKeys.get(credential.publicKey.format, credential.publicKey.key, credential.fingerprint));
    } catch (e) {
      // Stored before a rule tightened: it no longer authenticates, and the operator should know.
      if (!isKeywayError(e)) throw e;
      logger.warn({ device: formatDevice(device.name), credential: i, reason: e.message }, 'stored credential refused');
    }
  }
  if (keys.length === 0) return refuse('no usable credential');

  const verified = await verifyDeviceJwt(token, keys, name.project, now);
  if (!verified.ok) return refuse(`token refused: ${verified.reason}`);
  // Checked once the token proved the caller is the device: only the device may learn why it is kept out.
  const switchedOff = protocolRefusal(registry, protocol);
  if (switchedOff) return { ok: false, reason: switchedOff, forbidden: `${switchedOff}.` };
  if (device.blocked) return { ok: false, reason: 'device is blocked', forbidden: 'The device is blocked.' };
  return {
    ok: true,
    device: {
      method: 'jwt',
      key: formatDevice(device.name),
      name: device.name,
      numId: device.numId,
      credentialFingerprint: verified.key.fingerprint,
      tokenExpiresAt: verified.expiresAt,
      ...gatewayIdentity(device),
      rateLimits: resolveRateLimits(registry.rateLimits),
    },
  };
}
