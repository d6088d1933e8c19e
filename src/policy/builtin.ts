/**
 * The implicit Cloud IoT Core grants as a document: a device may connect as itself, publish its
 * own events and state (and, for gateways, attach/detach), subscribe to and receive its own
 * config, commands and errors — nothing of any other device. The caller includes it among the
 * documents it compiles (first, so the dry-run names it), and any explicit Deny in an attached
 * policy takes a part of it away. Whether a device may use the gateway topics at all stays the
 * broker's decision (gateway type); this document only keeps them per device.
 */
import { parsePolicyDocument } from './document.js';
import type { NamedPolicyDocument } from './evaluate.js';

export const CLOUD_IOT_CORE_POLICY_NAME = 'keyway:cloud-iot-core';

export const CLOUD_IOT_CORE_POLICY: NamedPolicyDocument = Object.freeze({
  name: CLOUD_IOT_CORE_POLICY_NAME,
  version: 1,
  document: parsePolicyDocument({
    version: '2026-01-01',
    statements: [
      { sid: 'connect', effect: 'Allow', actions: ['connect'], resources: ['${device.id}'] },
      {
        sid: 'telemetry',
        effect: 'Allow',
        actions: ['publish'],
        resources: [
          '/devices/${device.id}/events',
          '/devices/${device.id}/events/#',
          '/devices/${device.id}/state',
          '/devices/${device.id}/attach',
          '/devices/${device.id}/detach',
        ],
      },
      {
        sid: 'control',
        effect: 'Allow',
        actions: ['subscribe', 'receive'],
        resources: ['/devices/${device.id}/config', '/devices/${device.id}/commands/#', '/devices/${device.id}/errors'],
      },
    ],
  }),
});
