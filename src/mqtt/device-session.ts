/**
 * What the broker holds for an authenticated device connection: its identity, its topics (and
 * their backend names), its subscriptions and its config delivery. The token-expiry deadline is
 * kept by the connection (Connection.endAfter).
 */
import type { DeviceKey } from '../bus/bus.js';
import type { AuthenticatedDevice } from '../registry/device-manager.js';
import { backendEventsTopic, backendStateTopic } from './backend-topics.js';
import { ConfigDelivery, type ConfigDeliveryOptions } from './config-delivery.js';
import { deviceAttributes, type DeviceAttributes } from './delivery-properties.js';
import { DeviceTopics } from './device-topics.js';

export type GrantedQoS = 0 | 1;

export class DeviceSession {
  readonly topics: DeviceTopics;
  /** Backend topic of the device's events; a subfolder suffix is appended as published. */
  readonly backendEvents: string;
  readonly backendState: string;
  readonly config: ConfigDelivery;
  /** The Pub/Sub-style attributes MQTT 5 backends receive with each message. */
  readonly attributes: DeviceAttributes;
  /** Granted QoS of the `/commands/#` subscription, undefined when not subscribed. */
  commandsQos: GrantedQoS | undefined;
  /** MQTT 5 topic aliases the device set up, created on first use. */
  topicAliases: Map<number, string> | undefined;
  /**
   * The CONNECT's client id when it named the `keyway-jwt` authentication method (MQTT 5): only
   * then may the device re-authenticate with AUTH (MQTT 5 §4.12.1).
   */
  reauthClientId: string | undefined;

  constructor(
    /** Replaced on re-authentication: the token (and credential) the connection now stands on. */
    public device: AuthenticatedDevice,
    config: Omit<ConfigDeliveryOptions, 'device' | 'topic'>,
  ) {
    const { registry, device: id } = device.name;
    this.topics = new DeviceTopics(id);
    this.backendEvents = backendEventsTopic(registry, id);
    this.backendState = backendStateTopic(registry, id);
    this.attributes = deviceAttributes(device);
    this.config = new ConfigDelivery({ ...config, device: device.key, topic: this.topics.config });
  }

  get key(): DeviceKey {
    return this.device.key;
  }

  dispose(): void {
    this.config.stop();
  }
}
