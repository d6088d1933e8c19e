/**
 * What the broker holds for an authenticated device connection: its identity, its topics (and
 * their backend names), its subscriptions, its config delivery, and the token-expiry deadline.
 */
import type { DeviceKey } from '../bus/bus.js';
import type { AuthenticatedDevice } from '../registry/device-manager.js';
import { backendEventsTopic, backendStateTopic } from './backend-topics.js';
import { ConfigDelivery, type ConfigDeliveryOptions } from './config-delivery.js';
import { DeviceTopics } from './device-topics.js';

export type GrantedQoS = 0 | 1;

export class DeviceSession {
  readonly topics: DeviceTopics;
  /** Backend topic of the device's events; a subfolder suffix is appended as published. */
  readonly backendEvents: string;
  readonly backendState: string;
  readonly config: ConfigDelivery;
  /** Granted QoS of the `/commands/#` subscription, undefined when not subscribed. */
  commandsQos: GrantedQoS | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly device: AuthenticatedDevice,
    config: Omit<ConfigDeliveryOptions, 'device' | 'topic'>,
  ) {
    const { registry, device: id } = device.name;
    this.topics = new DeviceTopics(id);
    this.backendEvents = backendEventsTopic(registry, id);
    this.backendState = backendStateTopic(registry, id);
    this.config = new ConfigDelivery({ ...config, device: device.key, topic: this.topics.config });
  }

  get key(): DeviceKey {
    return this.device.key;
  }

  /** Calls `onExpiry` once `delayMs` have passed, unless the session ends first. */
  armTokenExpiry(delayMs: number, onExpiry: () => void): void {
    clearTimeout(this.#expiryTimer);
    // setTimeout cannot wait longer than 2^31-1 ms; tokens live at most 24 h plus skew anyway.
    this.#expiryTimer = setTimeout(onExpiry, Math.min(Math.max(0, delayMs), 0x7fffffff));
  }

  dispose(): void {
    clearTimeout(this.#expiryTimer);
    this.config.stop();
  }
}
