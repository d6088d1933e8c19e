/**
 * What every device-plane authentication (JWT, certificate, a gateway acting for a device) checks
 * and carries besides the credential itself: the registry's protocol switches, and a gateway's
 * auth method.
 */
import type { DeviceProtocol, GatewayAuthMethod, Registry } from '../domain/resources.js';
import type { DeviceCredentials } from '../store/store.js';

/** Why the registry refuses devices on `protocol` (mqttConfig, httpConfig), or undefined when it accepts them. */
export function protocolRefusal(registry: Registry, protocol: DeviceProtocol): string | undefined {
  if (protocol === 'mqtt' && registry.mqttEnabledState === 'MQTT_DISABLED') return 'MQTT is disabled for the registry';
  if (protocol === 'http' && registry.httpEnabledState === 'HTTP_DISABLED') return 'HTTP is disabled for the registry';
  return undefined;
}

/** `{ gateway: { authMethod } }` for a GATEWAY, nothing for other devices (DeviceIdentity.gateway). */
export function gatewayIdentity(device: Pick<DeviceCredentials, 'gatewayConfig'>): { readonly gateway?: { readonly authMethod: GatewayAuthMethod } } {
  return device.gatewayConfig.gatewayType === 'GATEWAY' ? { gateway: { authMethod: device.gatewayConfig.gatewayAuthMethod } } : {};
}
