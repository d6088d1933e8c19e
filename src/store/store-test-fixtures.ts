/**
 * Records for the store's tests: a registry and devices with Cloud IoT Core's defaults, created
 * at T0; each test overrides what it is about. Not a `*.test.ts`: the runner does not run it.
 */
import type { RegistryName } from '../domain/names.js';
import type { Registry } from '../domain/resources.js';
import type { NewDevice } from './store.js';

export const REG: RegistryName = { project: 'proj', location: 'europe-west1', registry: 'fleet' };
export const T0 = new Date('2030-01-01T00:00:00Z');

export const newRegistry = (name: RegistryName = REG, overrides: Partial<Omit<Registry, 'name'>> = {}): Registry => ({
  name,
  credentials: [],
  deviceAuthMethod: 'JWT_OR_CERTIFICATE',
  eventNotificationConfigs: [],
  mqttEnabledState: 'MQTT_ENABLED',
  httpEnabledState: 'HTTP_ENABLED',
  logLevel: 'LOG_LEVEL_UNSPECIFIED',
  ...overrides,
});

/** A device `id` of REG. */
export const newDevice = (id: string, numId: string, overrides: Partial<NewDevice> = {}): NewDevice => ({
  name: { ...REG, device: id },
  numId,
  credentials: [],
  blocked: false,
  metadata: {},
  logLevel: 'LOG_LEVEL_UNSPECIFIED',
  gatewayType: 'NON_GATEWAY',
  gatewayAuthMethod: 'GATEWAY_AUTH_METHOD_UNSPECIFIED',
  configData: Buffer.alloc(0),
  createdAt: T0,
  ...overrides,
});
