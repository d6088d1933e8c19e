/**
 * Configuration delivery to one connected device (reference §1.7). Subscribing to
 * `/devices/{id}/config` sends the latest version; each newer version is sent as it is pushed.
 * At QoS 0 each version goes out once. At QoS 1 the version is re-sent (DUP) until the device's
 * PUBACK — the config acknowledgement — and a newer version replaces one still unacknowledged.
 */
import type { Packet } from 'mqtt-packet';
import type { Logger } from 'pino';
import type { DeviceKey } from '../bus/bus.js';
import type { DeviceGateway } from '../registry/device-manager.js';
import type { InflightKind } from './connection.js';

/** The part of a connection config delivery uses. */
export interface ConfigLink {
  readonly isOpen: boolean;
  readonly congested: boolean;
  send(packet: Packet): void;
  allocatePacketId(kind: InflightKind): number | undefined;
  releasePacketId(id: number): void;
  close(reason: string, options?: { readonly level?: 'debug' | 'info' | 'warn' }): void;
  /** Where to log, unless the options name a logger. */
  readonly log: Logger;
}

export interface ConfigDeliveryOptions {
  readonly device: DeviceKey;
  readonly topic: string;
  readonly gateway: Pick<DeviceGateway, 'latestConfig' | 'recordConfigSent' | 'recordConfigAck'>;
  readonly link: ConfigLink;
  readonly retryMs: number;
  /** Asked before each version goes out (the device policy's `receive`); absent: always. */
  readonly mayReceive?: () => boolean;
  readonly now: () => Date;
  /** Defaults to the link's logger, read when a line is written (a connection keeps no logger). */
  readonly log?: Logger;
}

interface PendingConfig {
  readonly version: number;
  readonly payload: Buffer;
  readonly packetId: number;
}

export class ConfigDelivery {
  readonly #o: ConfigDeliveryOptions;
  /** The granted QoS while subscribed. */
  #qos: 0 | 1 | undefined;
  /** Bumped on every (un)subscribe, so a stale fetch of the latest config is dropped. */
  #generation = 0;
  /** The newest version sent on the current subscription. */
  #sentVersion = 0;
  #pending: PendingConfig | undefined;
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(options: ConfigDeliveryOptions) {
    this.#o = options;
  }

  get subscribed(): boolean {
    return this.#qos !== undefined;
  }

  /** (Re)subscribed at `qos`: fetch and send the latest version, whatever was sent before. */
  subscribe(qos: 0 | 1): void {
    this.#reset();
    this.#qos = qos;
    const generation = this.#generation;
    this.#o.gateway.latestConfig(this.#o.device).then(
      (config) => {
        if (generation === this.#generation) this.#offer(config.version, config.binaryData);
      },
      (e: unknown) => (this.#o.log ?? this.#o.link.log).warn({ err: e }, 'could not read the latest config to deliver'),
    );
  }

  unsubscribe(): void {
    this.#reset();
  }

  /** A new version was stored for this device. */
  pushed(version: number, payload: Buffer): void {
    if (this.#qos !== undefined) this.#offer(version, payload);
  }

  /** The device acknowledged `packetId`; returns whether it was the pending config. */
  acknowledged(packetId: number): boolean {
    const pending = this.#pending;
    if (!pending || pending.packetId !== packetId) return false;
    this.#pending = undefined;
    clearInterval(this.#retryTimer);
    this.#o.gateway.recordConfigAck(this.#o.device, pending.version, this.#o.now()).catch((e: unknown) => {
      (this.#o.log ?? this.#o.link.log).warn({ err: e, version: pending.version }, 'could not record the config acknowledgement');
    });
    return true;
  }

  /** The connection is going away. */
  stop(): void {
    this.#reset();
  }

  #reset(): void {
    this.#generation++;
    this.#qos = undefined;
    this.#sentVersion = 0;
    this.#dropPending();
  }

  #dropPending(): void {
    clearInterval(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.#pending) this.#o.link.releasePacketId(this.#pending.packetId);
    this.#pending = undefined;
  }

  #offer(version: number, payload: Buffer): void {
    const qos = this.#qos;
    // Versions only grow: an older one (a slow fetch racing a push) is already superseded.
    if (qos === undefined || version <= this.#sentVersion || !this.#o.link.isOpen) return;
    if (this.#o.mayReceive && !this.#o.mayReceive()) return;
    this.#sentVersion = version;
    this.#dropPending();
    if (qos === 0) {
      this.#send(version, payload, undefined, false);
      return;
    }
    const packetId = this.#o.link.allocatePacketId('config');
    if (packetId === undefined) {
      this.#o.link.close('too many unacknowledged messages to deliver a config', { level: 'info' });
      return;
    }
    this.#pending = { version, payload, packetId };
    this.#send(version, payload, packetId, false);
    this.#retryTimer = setInterval(this.#retry, this.#o.retryMs);
  }

  readonly #retry = (): void => {
    const pending = this.#pending;
    if (!pending || !this.#o.link.isOpen) return;
    // A device that is not reading gets no further copies piled onto its buffer.
    if (this.#o.link.congested) return;
    this.#send(pending.version, pending.payload, pending.packetId, true);
  };

  #send(version: number, payload: Buffer, packetId: number | undefined, dup: boolean): void {
    this.#o.link.send({
      cmd: 'publish',
      topic: this.#o.topic,
      payload,
      qos: packetId === undefined ? 0 : 1,
      dup,
      retain: false,
      ...(packetId === undefined ? {} : { messageId: packetId }),
    });
    try {
      this.#o.gateway.recordConfigSent(this.#o.device, version, this.#o.now());
    } catch (e) {
      (this.#o.log ?? this.#o.link.log).warn({ err: e, version }, 'could not record the config delivery');
    }
  }
}
