/**
 * The smart-building example of seed 003 (2,000 devices over 20 floors; temperature sensors
 * publish one topic, locks take commands and publish audit events) as Keyway policy documents,
 * one per device type, plus a registry-wide guard and the over-permissive variants lint must
 * flag. Used by the unit tests here and by the end-to-end acceptance scenario; also a worked
 * example for the user documentation.
 *
 * Topic space: `building/{building}/floor/{floor}/{kind}/{device}[/…]`, with building and floor
 * taken from the device's metadata.
 */
import { parsePolicyDocument, type PolicyDocument } from './document.js';

const FLOOR = 'building/${device.metadata.building}/floor/${device.metadata.floor}';

const doc = (statements: unknown[]): PolicyDocument => parsePolicyDocument({ version: '2026-01-01', statements });

/** Device types, named as the `type` label of a device would name them. */
export const SMART_BUILDING_POLICIES = {
  /** Publishes its reading on its own topic; nothing else. */
  'temperature-sensor': doc([
    { sid: 'reading', effect: 'Allow', actions: ['publish'], resources: [`${FLOOR}/temp/\${device.id}`] },
  ]),
  /** Takes commands on its own topic, publishes its audit events. */
  lock: doc([
    { sid: 'audit', effect: 'Allow', actions: ['publish'], resources: [`${FLOOR}/lock/\${device.id}/audit`] },
    { sid: 'commands', effect: 'Allow', actions: ['subscribe', 'receive'], resources: [`${FLOOR}/lock/\${device.id}/cmd`] },
  ]),
  /** Reads every temperature sensor of its own floor, publishes its status, takes commands. */
  'hvac-controller': doc([
    { sid: 'status', effect: 'Allow', actions: ['publish'], resources: [`${FLOOR}/hvac/\${device.id}/status`] },
    {
      sid: 'inputs',
      effect: 'Allow',
      actions: ['subscribe', 'receive'],
      resources: [`${FLOOR}/hvac/\${device.id}/cmd`, `${FLOOR}/temp/+`],
    },
  ]),
  /** Publishes its status, takes commands. */
  'smart-light': doc([
    { sid: 'status', effect: 'Allow', actions: ['publish'], resources: [`${FLOOR}/light/\${device.id}/status`] },
    { sid: 'commands', effect: 'Allow', actions: ['subscribe', 'receive'], resources: [`${FLOOR}/light/\${device.id}/cmd`] },
  ]),
} as const;

export type SmartBuildingDeviceType = keyof typeof SMART_BUILDING_POLICIES;

/**
 * Attached to the registry, so it applies to every device: nobody but a backend commands a lock,
 * and no device leaves retained messages behind.
 */
export const SMART_BUILDING_REGISTRY_GUARD = doc([
  { sid: 'locks-only-by-backend', effect: 'Deny', actions: ['publish'], resources: ['building/+/floor/+/lock/+/cmd'] },
  { sid: 'no-retained', effect: 'Deny', actions: ['retain'], resources: ['#'] },
]);

/** Over-permissive variants someone might write, with the lint code each must raise. */
export const OVER_PERMISSIVE_EXAMPLES = {
  /** "Any sensor may publish any reading": a compromised sensor speaks for the whole fleet. */
  WILDCARD_PUBLISH: doc([{ effect: 'Allow', actions: ['publish'], resources: ['building/+/floor/+/temp/+'] }]),
  /** The prototype's "allow everything". */
  ALLOW_ALL_ACTIONS_ON_ALL_TOPICS: doc([
    { effect: 'Allow', actions: ['connect', 'publish', 'subscribe', 'receive', 'retain'], resources: ['#'] },
  ]),
  /** A lock that listens to everything below the root. */
  ROOT_WILDCARD: doc([{ effect: 'Allow', actions: ['subscribe', 'receive'], resources: ['+/#'] }]),
  /** A lock subscribed to every device's Cloud IoT Core commands. */
  SPANS_DEVICES: doc([{ effect: 'Allow', actions: ['subscribe', 'receive'], resources: ['/devices/+/commands/#'] }]),
  /** A sensor allowed to publish as another, named device. */
  PUBLISH_OTHER_DEVICE: doc([{ effect: 'Allow', actions: ['publish'], resources: ['/devices/temp-3-02/events'] }]),
  /** One shared alarm topic for every device that holds the policy. */
  NO_DEVICE_VARIABLE: doc([{ effect: 'Allow', actions: ['publish'], resources: [`${FLOOR}/alarm`] }]),
} as const;
