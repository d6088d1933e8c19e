/**
 * What every device-plane authentication (JWT, certificate, a gateway acting for a device) checks
 * and carries besides the credential itself: the registry's protocol switches and the credentials
 * it accepts, and a gateway's auth method. The broker applies the same rules to live connections
 * when a registry changes (RegistryAccessChanged).
 */
import type { DeviceAuthMethod, DeviceProtocol, GatewayAuthMethod, Registry } from '../domain/resources.js';
import type { DeviceCredentials } from '../store/store.js';

const MQTT_DISABLED = 'MQTT is disabled for the registry';

/** Why the registry refuses devices on `protocol` (mqttConfig, httpConfig), or undefined when it accepts them. */
export function protocolRefusal(registry: Registry, protocol: DeviceProtocol): string | undefined {
  if (protocol === 'mqtt' && registry.mqttEnabledState === 'MQTT_DISABLED') return MQTT_DISABLED;
  if (protocol === 'http' && registry.httpEnabledState === 'HTTP_DISABLED') return 'HTTP is disabled for the registry';
  return undefined;
}

/** Why the registry's `deviceAuthMethod` refuses a device presenting `credential`, or undefined when it accepts it. */
export function authMethodRefusal(method: DeviceAuthMethod, credential: 'jwt' | 'certificate'): string | undefined {
  if (credential === 'jwt' && method === 'CERTIFICATE_ONLY') return 'the registry accepts only certificate authentication';
  if (credential === 'certificate' && method === 'JWT_ONLY') return 'the registry accepts only JWT authentication';
  return undefined;
}

/** What a registry admits over MQTT (the fields of RegistryAccessChanged); an unspecified auth method means both. */
export interface MqttAccess {
  readonly mqttEnabled: boolean;
  readonly deviceAuthMethod: Exclude<DeviceAuthMethod, 'DEVICE_AUTH_METHOD_UNSPECIFIED'>;
}

export function mqttAccessOf(registry: Registry): MqttAccess {
  const method = registry.deviceAuthMethod;
  return {
    mqttEnabled: registry.mqttEnabledState !== 'MQTT_DISABLED',
    deviceAuthMethod: method === 'DEVICE_AUTH_METHOD_UNSPECIFIED' ? 'JWT_OR_CERTIFICATE' : method,
  };
}

/**
 * Why an MQTT device connection standing on `credential` may not stay under `access`, or undefined
 * when it may. Without `credential` (a device attached to a gateway by association, which
 * presented none) only MQTT being off refuses it.
 */
export function mqttAccessRefusal(access: MqttAccess, credential?: 'jwt' | 'certificate'): string | undefined {
  if (!access.mqttEnabled) return MQTT_DISABLED;
  return credential === undefined ? undefined : authMethodRefusal(access.deviceAuthMethod, credential);
}

/** `{ gateway: { authMethod } }` for a GATEWAY, nothing for other devices (DeviceIdentity.gateway). */
export function gatewayIdentity(device: Pick<DeviceCredentials, 'gatewayConfig'>): { readonly gateway?: { readonly authMethod: GatewayAuthMethod } } {
  return device.gatewayConfig.gatewayType === 'GATEWAY' ? { gateway: { authMethod: device.gatewayConfig.gatewayAuthMethod } } : {};
}
