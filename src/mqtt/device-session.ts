/**
 * What the broker holds for an authenticated device connection: its identity, its topics (and
 * their backend names), its subscriptions and its config delivery. The token-expiry deadline is
 * kept by the connection (Connection.endAfter).
 */
import type { DeviceKey } from '../bus/bus.js';
import { formatRegistry } from '../domain/names.js';
import type { CompiledPolicy } from '../policy/index.js';
import type { AuthenticatedDevice } from '../registry/device-manager.js';
import { backendEventsTopic, backendStateTopic } from './backend-topics.js';
import { ConfigDelivery, type ConfigDeliveryOptions } from './config-delivery.js';
import { deviceAttributes, type DeviceAttributes } from './delivery-properties.js';
import type { CertSubjectSource } from './device-policies.js';
import { DeviceSubscriber } from './device-spaces.js';
import { DeviceTopics } from './device-topics.js';
import type { Connection } from './connection.js';
import type { GatewayAttachments } from './gateway-attachments.js';

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
  /** The registry's full path: the topic space of its custom topics (device-spaces). */
  readonly registry: string;
  /** Bumped by each recompile, so that a slower, older one never overwrites a newer policy. */
  policyEpoch = 0;
  /** The device's subscriptions to custom topics, made on the first one. */
  #subscriber: DeviceSubscriber | undefined;
  /** Subscribed to its `/devices/{id}/errors` topic (gateway errors, gateway-errors). */
  errorsSubscribed = false;
  /** A gateway's attached devices, made on its first attach; they end with the connection. */
  attachments: GatewayAttachments | undefined;

  constructor(
    /** Replaced on re-authentication: the token (and credential) the connection now stands on. */
    public device: AuthenticatedDevice,
    config: Omit<ConfigDeliveryOptions, 'device' | 'topic'>,
    /**
     * What the device may do (device-policies); swapped whole when the policy changes, and read at
     * every check, so the next PUBLISH, SUBSCRIBE or delivery runs under the new one.
     */
    public policy: CompiledPolicy,
    /** The client certificate's subject it authenticated with, for recompiling `${cert.subject.*}`. */
    readonly certSubject?: CertSubjectSource,
  ) {
    const { registry, device: id } = device.name;
    this.registry = formatRegistry(device.name);
    this.topics = new DeviceTopics(id);
    this.backendEvents = backendEventsTopic(registry, id);
    this.backendState = backendStateTopic(registry, id);
    this.attributes = deviceAttributes(device);
    const configTopic = this.topics.config;
    this.config = new ConfigDelivery({ ...config, device: device.key, topic: configTopic, mayReceive: () => this.policy.can('receive', configTopic) });
  }

  get key(): DeviceKey {
    return this.device.key;
  }

  /** The custom-topic subscriber, if the device subscribed to any. */
  get subscriber(): DeviceSubscriber | undefined {
    return this.#subscriber;
  }

  subscriberOn(conn: Connection): DeviceSubscriber {
    return (this.#subscriber ??= new DeviceSubscriber(this.key, this.registry, conn, (topic) => this.policy.can('receive', topic)));
  }

  dispose(): void {
    this.config.stop();
    this.attachments?.removeAll();
  }
}
