/**
 * Device events and states that came in by another protocol than MQTT (the HTTPS bridge), put
 * into the backend namespace exactly as handle-publish puts a device's PUBLISH there: on the
 * device's backend topic (`registries/{r}/devices/{d}/events[/{subfolder}]`, `…/state`), with its
 * attributes for MQTT 5 backends. QoS 1: the device was told it arrived, so backends subscribed at
 * QoS 1 get it at least once. No connection is held back by congested backends: there is none.
 */
import type { AuthenticatedDevice, DeviceMessageSink, GatewayDelegatedDevice } from '../registry/device-manager.js';
import { backendEventsTopic, backendStateTopic } from './backend-topics.js';
import { deviceAttributes } from './delivery-properties.js';
import { DeviceMessage } from './message.js';
import type { Namespace } from './namespace.js';

type AnyDevice = AuthenticatedDevice | GatewayDelegatedDevice;

export class BackendDeviceMessages implements DeviceMessageSink {
  constructor(private readonly backend: Namespace) {}

  publishEvent(device: AnyDevice, payload: Buffer, subfolder?: string): void {
    const { registry, device: id } = device.name;
    // The same suffix an MQTT publish to `/devices/{id}/events/{subfolder}` has.
    const suffix = subfolder === undefined || subfolder === '' ? '' : `/${subfolder}`;
    this.backend.publish(new DeviceMessage(backendEventsTopic(registry, id) + suffix, payload, 1, Infinity, deviceAttributes(device), suffix, undefined));
  }

  publishState(device: AnyDevice, payload: Buffer): void {
    const { registry, device: id } = device.name;
    this.backend.publish(new DeviceMessage(backendStateTopic(registry, id), payload, 1, Infinity, deviceAttributes(device), '', undefined));
  }
}
