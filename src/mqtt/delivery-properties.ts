/**
 * MQTT 5 properties of a device message delivered to a backend (reference §4): the Pub/Sub
 * attributes deviceId, deviceNumId, deviceRegistryId, deviceRegistryLocation, projectId and, for
 * events published under a subfolder, subFolder, as user properties. The device's own message
 * expiry, content type, payload format and user properties pass through; a device can never set
 * one of the attribute names itself, so a backend may trust them.
 */
import type { IPublishPacket, UserProperties } from 'mqtt-packet';
import type { AuthenticatedDevice } from '../registry/device-manager.js';
import type { PublishProperties } from './connection.js';

const ATTRIBUTE_NAMES = new Set(['deviceId', 'deviceNumId', 'deviceRegistryId', 'deviceRegistryLocation', 'projectId', 'subFolder']);

export type DeviceAttributes = Readonly<Record<string, string>>;

/** A device's own attributes, whether it sent the message itself or a gateway it is attached to did. */
export function deviceAttributes(device: Pick<AuthenticatedDevice, 'name' | 'numId'>): DeviceAttributes {
  const { project, location, registry, device: id } = device.name;
  return { deviceId: id, deviceNumId: device.numId, deviceRegistryId: registry, deviceRegistryLocation: location, projectId: project };
}

/** `suffix` is the events topic's `/{subfolder…}`, '' when none was used. */
export function deliveryProperties(
  attributes: DeviceAttributes,
  suffix: string,
  given: IPublishPacket['properties'],
): PublishProperties {
  let userProperties: UserProperties = suffix === '' ? { ...attributes } : { ...attributes, subFolder: suffix.slice(1) };
  const props: PublishProperties = {};
  if (given) {
    if (given.userProperties) {
      const passed: UserProperties = {};
      for (const [name, value] of Object.entries(given.userProperties)) {
        if (!ATTRIBUTE_NAMES.has(name) && name !== '__proto__') passed[name] = value;
      }
      userProperties = { ...passed, ...userProperties };
    }
    if (given.messageExpiryInterval !== undefined) props.messageExpiryInterval = given.messageExpiryInterval;
    if (given.contentType !== undefined) props.contentType = given.contentType;
    if (given.payloadFormatIndicator !== undefined) props.payloadFormatIndicator = given.payloadFormatIndicator;
  }
  props.userProperties = userProperties;
  return props;
}
