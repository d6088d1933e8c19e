/**
 * One client connection: the TLS socket, framing and parsing, the liveness timers, the outbound
 * path with its bounds, and packet ids in flight. What a packet means is decided elsewhere (the
 * `handle-*` modules); this class only guarantees that packets reach them one at a time, in order,
 * bounded in size, and that nothing a peer sends can throw out of it.
 */
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import type { Logger } from 'pino';
import { Fifo } from './fifo.js';
import { FrameError, FrameReader } from './frame-reader.js';
import type { BrokerLimits } from './limits.js';
import type { BackendSession } from './backend-session.js';
import type { DeviceSession } from './device-session.js';
import { REASON_V5 } from './reason-codes.js';

export type ConnectionState =
  | { readonly phase: 'awaiting-connect' }
  | { readonly phase: 'authenticating' }
  | { readonly phase: 'device'; readonly session: DeviceSession }
  | { readonly phase: 'backend'; readonly session: BackendSession }
  | { readonly phase: 'closed' };

/** The states in which a CONNECT has been accepted. */
export type ActiveState = Extract<ConnectionState, { readonly session: unknown }>;

/** What a packet id in flight towards the peer was used for. */
export type InflightKind = 'config' | 'command' | 'delivery';

/** MQTT 5 properties of a PUBLISH the broker sends. */
export type PublishProperties = NonNullable<IPublishPacket['properties']>;

/** A QoS 1 message waiting for a packet id to free up. */
interface Waiting {
  readonly topic: string;
  readonly payload: Buffer;
  readonly kind: InflightKind;
  readonly properties: PublishProperties | undefined;
}

/** What an MQTT 5 client announced in its CONNECT about what it accepts. */
export interface PeerLimits {
  readonly maximumPacketSize?: number | undefined;
  readonly receiveMaximum?: number | undefined;
}

export interface ConnectionHandlers {
  /** A parsed packet. A returned promise holds back every later packet until it settles. */
  packet(conn: Connection, packet: Packet): void | Promise<void>;
  /**
   * The peer broke framing (e.g. an oversize packet); the connection closes right after. `chunk`
   * holds the bytes read with the bad header. Returns whether a reply was queued to be flushed.
   */
  frameError(conn: Connection, error: FrameError, chunk: Buffer): boolean;
  /** A complete packet the codec could not parse; the connection closes right after. */
  unparsable(conn: Connection, frame: Buffer): void;
  /** The connection closed, for any reason; `last` is the state it was in. */
  closed(conn: Connection, last: ConnectionState): void;
}

export type LogLevel = 'debug' | 'info' | 'warn';

export interface CloseOptions {
  readonly level?: LogLevel;
  /** Drop whatever is still queued towards the peer instead of flushing it. */
  readonly destroy?: boolean;
  /**
   * MQTT 5 reason code: an MQTT 5 client past CONNACK gets a DISCONNECT with it first (flushed,
   * whatever `destroy` says). MQTT 3.1.1 has no server DISCONNECT, so there it changes nothing.
   */
  readonly code?: number;
}

const AWAITING_CONNECT: ConnectionState = { phase: 'awaiting-connect' };
const AUTHENTICATING: ConnectionState = { phase: 'authenticating' };
const CLOSED: ConnectionState = { phase: 'closed' };
const MAX_PACKET_ID = 0xffff;
const ENCODE_V311 = { protocolVersion: 4 } as const;
const ENCODE_V5 = { protocolVersion: 5 } as const;

export class Connection {
  readonly log: Logger;
  /** Resolves once the socket is fully closed. */
  readonly closed: Promise<void>;

  #state: ConnectionState = AWAITING_CONNECT;
  readonly #socket: TLSSocket;
  readonly #limits: BrokerLimits;
  readonly #handlers: ConnectionHandlers;
  readonly #reader: FrameReader;
  readonly #parser = mqttPacket.parser({ protocolVersion: 4 });
  #parsed: Packet | undefined;
  #parseError: Error | undefined;

  /** A packet handler is still working: later bytes wait in `#leftover`, the socket is paused. */
  #busy = false;
  #leftover: Buffer | undefined;
  #closing = false;
  #socketClosed = false;
  #graceTimer: NodeJS.Timeout | undefined;

  // Liveness: timestamps only on the packet path; one timer re-armed when it fires.
  readonly #acceptedAt = performance.now();
  #lastPacketAt = this.#acceptedAt;
  #lastActiveAt = this.#acceptedAt;
  #keepAliveMs = 0;
  #idleLimitMs = Infinity;
  #livenessTimer: NodeJS.Timeout | undefined;
  #slowConsumerTimer: NodeJS.Timeout | undefined;

  #encode: typeof ENCODE_V311 | typeof ENCODE_V5 = ENCODE_V311;
  /** The client's maximum packet size (MQTT 5); nothing larger is ever sent to it. */
  #peerMaxPacketBytes = Infinity;
  /** QoS 1 sends in flight at once: ours, or the client's receive maximum (MQTT 5) if lower. */
  #window: number;
  /** The window a device's single pending config may use (one above `#window` for MQTT 3.1.1). */
  #configWindow = Infinity;
  /** Configs among the packet ids in flight (at most one per device). */
  #configInflight = 0;
  #droppedOversize = 0;

  readonly #inflight = new Map<number, InflightKind>();
  #lastPacketId = 0;
  readonly #waiting = new Fifo<Waiting>();
  #waitingBytes = 0;

  constructor(socket: TLSSocket, limits: BrokerLimits, handlers: ConnectionHandlers, log: Logger) {
    this.#socket = socket;
    this.#limits = limits;
    this.#handlers = handlers;
    this.log = log;
    this.#reader = new FrameReader(limits.maxConnectPacketBytes);
    this.#window = limits.maxInflight;
    this.#parser.on('packet', (p: Packet) => (this.#parsed = p));
    this.#parser.on('error', (e: Error) => (this.#parseError = e));
    this.closed = new Promise((resolve) => socket.once('close', resolve));

    socket.on('data', this.#onData);
    socket.on('drain', this.#onDrain);
    socket.on('error', (e) => this.log.debug({ err: e.message }, 'socket error'));
    socket.on('close', this.#onSocketClose);
    this.#armLiveness();
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get isOpen(): boolean {
    return !this.#closing;
  }

  /** Bytes queued towards the peer: written and not yet sent, or waiting for a packet id. */
  get outboundBytes(): number {
    return this.#socket.writableLength + this.#waitingBytes;
  }

  /** Over the soft outbound bound: QoS 0 deliveries and retries wait or are dropped. */
  get congested(): boolean {
    return this.outboundBytes > this.#limits.outboundSoftBytes;
  }

  /** Whether the client connected with MQTT 5. */
  get isV5(): boolean {
    return this.#encode === ENCODE_V5;
  }

  /** Packets not sent because they exceeded the client's maximum packet size. */
  get droppedOversize(): number {
    return this.#droppedOversize;
  }

  /**
   * The CONNECT was MQTT 5: everything sent from now on (the CONNACK included) is encoded as MQTT 5
   * and kept within the client's announced limits. The parser switched itself on the CONNECT.
   */
  useV5(peer: PeerLimits): void {
    this.#encode = ENCODE_V5;
    this.#reader.allowAuth = true;
    if (peer.maximumPacketSize !== undefined) this.#peerMaxPacketBytes = peer.maximumPacketSize;
    const receiveMaximum = peer.receiveMaximum;
    if (receiveMaximum !== undefined) {
      // One slot of the client's window stays free for a config, which never waits behind others.
      this.#window = Math.min(this.#window, Math.max(1, receiveMaximum - 1));
      this.#configWindow = receiveMaximum;
    }
  }

  authenticating(): void {
    if (this.#state.phase === 'awaiting-connect') this.#state = AUTHENTICATING;
  }

  /**
   * Enters the session state after CONNACK: keep-alive from the CONNECT (0 = off), the idle limit
   * for devices, and the post-authentication packet size bound.
   */
  activate(state: ActiveState, keepAliveSeconds: number): void {
    if (this.#closing) return;
    this.#state = state;
    this.#keepAliveMs = keepAliveSeconds * 1500;
    this.#idleLimitMs = state.phase === 'device' ? this.#limits.idleLimitMs : Infinity;
    this.#lastPacketAt = this.#lastActiveAt = performance.now();
    this.#reader.maxFrameBytes = this.#limits.maxPacketBytes;
    this.#reader.connectOnly = false;
    this.#armLiveness();
  }

  /** Encodes and writes one packet. */
  send(packet: Packet): void {
    if (this.#closing) return;
    this.write(mqttPacket.generate(packet, this.#encode));
  }

  /**
   * Writes an already encoded packet (one encoding shared by several subscribers). A packet over
   * the client's maximum packet size is discarded as if sent (MQTT 5 §3.1.2.11.4); returns false then.
   */
  write(bytes: Buffer): boolean {
    if (this.#closing) return false;
    if (bytes.length > this.#peerMaxPacketBytes) {
      this.#droppedOversize++;
      return false;
    }
    this.#socket.write(bytes);
    if (this.congested) this.#checkOutbound();
    return true;
  }

  /**
   * Sends a QoS 1 PUBLISH, or queues it until the peer acknowledges enough earlier ones to free a
   * packet id. What waits counts towards the outbound bounds.
   */
  publishAtLeastOnce(topic: string, payload: Buffer, kind: InflightKind, properties?: PublishProperties): void {
    if (this.#closing) return;
    // Behind messages already waiting, to keep the order they were published in.
    const messageId = this.#waiting.length === 0 ? this.allocatePacketId(kind) : undefined;
    if (messageId !== undefined) {
      this.#sendAtLeastOnce(topic, payload, messageId, properties);
      return;
    }
    this.#waiting.push({ topic, payload, kind, properties });
    this.#waitingBytes += payload.length + topic.length;
    this.#checkOutbound();
  }

  /**
   * A packet id for a QoS 1 message to the peer, or undefined when too many are unacknowledged.
   * A device's single pending config is never held back by other traffic: it may exceed the window
   * (by one, within an MQTT 5 client's receive maximum).
   */
  allocatePacketId(kind: InflightKind): number | undefined {
    const size = this.#inflight.size;
    if (kind === 'config') {
      if (size >= this.#configWindow) return undefined;
    } else if (size - this.#configInflight >= this.#window || size >= this.#configWindow) {
      return undefined;
    }
    let id = this.#lastPacketId;
    do id = (id % MAX_PACKET_ID) + 1;
    while (this.#inflight.has(id));
    this.#lastPacketId = id;
    this.#inflight.set(id, kind);
    if (kind === 'config') this.#configInflight++;
    return id;
  }

  /** The peer acknowledged `id`: frees it and says what it was for (undefined if unknown). */
  acknowledge(id: number): InflightKind | undefined {
    const kind = this.#inflight.get(id);
    if (kind !== undefined) this.releasePacketId(id);
    return kind;
  }

  /** Gives up on a message without an acknowledgement (e.g. a superseded config). */
  releasePacketId(id: number): void {
    const kind = this.#inflight.get(id);
    if (kind === undefined) return;
    this.#inflight.delete(id);
    if (kind === 'config') this.#configInflight--;
    this.#sendWaiting();
  }

  #sendWaiting(): void {
    for (let next = this.#waiting.peek(); next && !this.#closing; next = this.#waiting.peek()) {
      const messageId = this.allocatePacketId(next.kind);
      if (messageId === undefined) return;
      this.#waiting.shift();
      this.#waitingBytes -= next.payload.length + next.topic.length;
      this.#sendAtLeastOnce(next.topic, next.payload, messageId, next.properties);
    }
  }

  /** A QoS 1 PUBLISH too large for the client counts as delivered: its packet id is freed at once. */
  #sendAtLeastOnce(topic: string, payload: Buffer, messageId: number, properties: PublishProperties | undefined): void {
    const packet: IPublishPacket = { cmd: 'publish', topic, payload, qos: 1, dup: false, retain: false, messageId };
    if (properties) packet.properties = properties;
    if (!this.write(mqttPacket.generate(packet, this.#encode)) && !this.#closing) {
      this.#inflight.delete(messageId);
    }
  }

  /**
   * Closes the connection once: no packet is handled and nothing is sent after this call. Queued
   * bytes (say, a CONNACK) are flushed unless `destroy`; a peer that does not close its side within
   * the grace period is cut off.
   */
  close(reason: string, options: CloseOptions = {}): void {
    if (this.#closing) return;
    const last = this.#state;
    let destroy = options.destroy === true;
    if (options.code !== undefined && this.#encode === ENCODE_V5 && !this.#socketClosed && (last.phase === 'device' || last.phase === 'backend')) {
      this.#socket.write(mqttPacket.generate({ cmd: 'disconnect', reasonCode: options.code }, ENCODE_V5));
      destroy = false;
    }
    this.#closing = true;
    this.#state = CLOSED;
    clearTimeout(this.#livenessTimer);
    clearTimeout(this.#slowConsumerTimer);
    this.#leftover = undefined;
    this.#waiting.clear();
    this.#waitingBytes = 0;
    this.log[options.level ?? 'debug']({ reason }, 'connection closed');
    try {
      this.#handlers.closed(this, last);
    } catch (e) {
      this.log.error({ err: e }, 'releasing a closed connection failed');
    }
    if (this.#socketClosed) return;
    if (destroy) {
      this.#socket.destroy();
    } else {
      this.#socket.end();
      this.#graceTimer = setTimeout(() => this.#socket.destroy(), this.#limits.closeGraceMs);
    }
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#closing) return;
    if (this.#busy) {
      // Bytes that were already on their way when the socket was paused.
      this.#leftover = this.#leftover ? Buffer.concat([this.#leftover, chunk]) : chunk;
      return;
    }
    this.#consume(chunk);
  };

  #consume(chunk: Buffer): void {
    let used: number;
    try {
      used = this.#reader.push(chunk, this.#onFrame);
    } catch (e) {
      if (e instanceof FrameError) {
        const replied = this.#handlers.frameError(this, e, chunk);
        const code = e.kind === 'oversize' ? REASON_V5.packetTooLarge : REASON_V5.malformedPacket;
        this.close(e.message, { level: 'info', destroy: !replied, code });
      } else {
        this.#fail(e);
      }
      return;
    }
    if (this.#busy && !this.#closing) {
      if (used < chunk.length) this.#leftover = chunk.subarray(used);
      this.#socket.pause();
    }
  }

  readonly #onFrame = (frame: Buffer): boolean => {
    if (this.#closing) return false;
    const at = performance.now();
    this.#lastPacketAt = at;
    this.#parsed = undefined;
    this.#parseError = undefined;
    try {
      this.#parser.parse(frame);
    } catch (e) {
      this.#parseError = e instanceof Error ? e : new Error(String(e));
    }
    // Set by the parser's synchronous 'packet' event, which control-flow analysis cannot see.
    const packet = this.#parsed as Packet | undefined;
    if (this.#parseError || !packet) {
      this.#handlers.unparsable(this, frame);
      this.close(`malformed packet: ${this.#parseError?.message ?? 'incomplete'}`, { level: 'info', code: REASON_V5.malformedPacket });
      return false;
    }
    if (packet.cmd === 'publish' || packet.cmd === 'pingreq') this.#lastActiveAt = at;

    let pending: void | Promise<void>;
    try {
      pending = this.#handlers.packet(this, packet);
    } catch (e) {
      this.#fail(e);
      return false;
    }
    if (pending === undefined) return !this.#closing;
    this.#busy = true;
    pending.then(this.#resume, this.#fail);
    return false;
  };

  readonly #resume = (): void => {
    this.#busy = false;
    if (this.#closing) return;
    const leftover = this.#leftover;
    this.#leftover = undefined;
    if (leftover) this.#consume(leftover);
    if (!this.#busy && !this.#closing) this.#socket.resume();
  };

  readonly #fail = (e: unknown): void => {
    this.log.error({ err: e }, 'packet handling failed');
    this.close('internal error', { level: 'warn', destroy: true });
  };

  /** Over the hard bound the peer is cut off; over the soft bound it has `slowConsumerMs` to catch up. */
  #checkOutbound(): void {
    const queued = this.outboundBytes;
    if (queued > this.#limits.outboundHardBytes) {
      this.close('slow consumer: outbound buffer over its hard bound', { level: 'warn', destroy: true });
      return;
    }
    if (queued <= this.#limits.outboundSoftBytes) return;
    this.#slowConsumerTimer ??= setTimeout(() => {
      this.#slowConsumerTimer = undefined;
      if (this.congested) this.close('slow consumer: outbound buffer stayed over its bound', { level: 'warn', destroy: true });
    }, this.#limits.slowConsumerMs);
  }

  readonly #onDrain = (): void => {
    if (this.congested) return;
    clearTimeout(this.#slowConsumerTimer);
    this.#slowConsumerTimer = undefined;
  };

  readonly #onSocketClose = (): void => {
    this.#socketClosed = true;
    clearTimeout(this.#graceTimer);
    this.close('peer closed the connection');
  };

  #deadline(): { readonly at: number; readonly reason: string } {
    const phase = this.#state.phase;
    if (phase === 'awaiting-connect' || phase === 'authenticating') {
      return { at: this.#acceptedAt + this.#limits.connectTimeoutMs, reason: 'connect timeout' };
    }
    const idle = this.#lastActiveAt + this.#idleLimitMs;
    if (this.#keepAliveMs > 0) {
      const keepAlive = this.#lastPacketAt + this.#keepAliveMs;
      if (keepAlive <= idle) return { at: keepAlive, reason: 'keep-alive expired' };
    }
    return { at: idle, reason: 'idle limit reached' };
  }

  #armLiveness(): void {
    clearTimeout(this.#livenessTimer);
    if (this.#closing) return;
    const { at } = this.#deadline();
    if (at === Infinity) return;
    this.#livenessTimer = setTimeout(this.#checkLiveness, Math.max(0, Math.ceil(at - performance.now())));
  }

  readonly #checkLiveness = (): void => {
    const { at, reason } = this.#deadline();
    // Unauthenticated peers timing out are routine noise; authenticated ones are worth a line.
    const level = this.#state.phase === 'device' || this.#state.phase === 'backend' ? 'info' : 'debug';
    if (performance.now() >= at) this.close(reason, { level, code: REASON_V5.keepAliveTimeout });
    else this.#armLiveness();
  };
}
