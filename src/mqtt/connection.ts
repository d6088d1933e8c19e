/**
 * One client connection: the transport (a TLS socket or a WebSocket), framing and parsing, the
 * liveness timers (liveness), the outbound path with its bounds, and packet ids in flight. What a packet
 * means is decided elsewhere (the `handle-*` modules); this class only guarantees that packets
 * reach them one at a time, in order, bounded in size, and that nothing a peer sends can throw
 * out of it.
 *
 * Memory per connection is kept small, since idle devices are most of them: no parser of its own
 * (packet-decoder shares one), no logger until a line is written, no closures per connection for
 * socket events or timers, and maps for packets in flight only once there are any. Outbound
 * packets are gathered and written once per turn of the event loop (flush-scheduler).
 */
import { performance } from 'node:perf_hooks';
import { TLSSocket } from 'node:tls';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import type { Logger } from 'pino';
import { Fifo } from './fifo.js';
import { FlowGate, type GateWaiter } from './flow-gate.js';
import { flushSoon, type Flushable } from './flush-scheduler.js';
import { FrameError, FrameReader } from './frame-reader.js';
import type { BrokerLimits } from './limits.js';
import type { ClientSession } from './client-session.js';
import type { DeviceSession } from './device-session.js';
import type { Namespace } from './namespace.js';
import { decodePacket } from './packet-decoder.js';
import { PacketIdWindow, type InflightKind } from './packet-id-window.js';
import { presentedChain } from './peer-chain.js';
import { Liveness } from './liveness.js';
import { REASON_V5 } from './reason-codes.js';
import type { Transport } from './transport.js';

export type ConnectionState =
  | { readonly phase: 'awaiting-connect' }
  | { readonly phase: 'authenticating' }
  | { readonly phase: 'device'; readonly session: DeviceSession }
  /** A client of the session engine (a backend subscriber, or an open-listener client). */
  | { readonly phase: 'client'; readonly session: ClientSession; readonly namespace: Namespace }
  | { readonly phase: 'closed' };

/** The states in which a CONNECT has been accepted. */
export type ActiveState = Extract<ConnectionState, { readonly session: unknown }>;

export type { InflightKind } from './packet-id-window.js';

/** MQTT 5 properties of a PUBLISH the broker sends. */
export type PublishProperties = NonNullable<IPublishPacket['properties']>;

/** A QoS 1 message waiting for a packet id to free up. */
interface Waiting {
  readonly topic: string;
  readonly payload: Buffer;
  readonly kind: InflightKind;
  /** Sent as a retained message (a device's custom subscription, on subscribing). */
  readonly retain?: boolean;
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
const ENCODE_V311 = { protocolVersion: 4 } as const;
const ENCODE_V5 = { protocolVersion: 5 } as const;
const PUBLISH_TYPE = 3;

/** The connection a socket belongs to: socket events reach it without a closure per connection. */
const OWNER = Symbol('connection');
type OwnedSocket = Transport & { [OWNER]?: Connection };

export class Connection implements Flushable, GateWaiter {
  /** Resolves once the socket is fully closed. */
  readonly closed: Promise<void>;

  #state: ConnectionState = AWAITING_CONNECT;
  /** TLS, plain TCP on the development open listener, or a WebSocket. */
  readonly #socket: Transport;
  readonly #limits: BrokerLimits;
  readonly #handlers: ConnectionHandlers;
  readonly #reader: FrameReader;
  /** A logger, or how to make one when a line is written (a child logger per connection costs memory). */
  readonly #log: Logger | (() => Logger);
  /** Packets after an MQTT 5 CONNECT are decoded as MQTT 5. */
  #decodeV5 = false;

  /**
   * A packet handler is still working, or a PUBLISH (`#held`) waits for the flow gates in
   * `#heldBy` to open: later bytes wait in `#leftover`, the socket is paused.
   */
  #busy = false;
  #held: Buffer | undefined;
  #leftover: Buffer | undefined;
  /** Packets written in this turn of the event loop, sent together by flushOutbound. */
  #out: Buffer[] | undefined;
  #outBytes = 0;
  /** The session's queue towards this peer is backlogged (see setBacklogged). */
  #backlogged = false;
  /** As a congested engine client: the gate its publishers wait on (see flow-gate). */
  #gate: FlowGate | undefined;
  /** As a publisher: the gates of congested subscribers it waits on; never empty, made when first held. */
  #heldBy: Set<FlowGate> | undefined;
  #closing = false;
  #socketClosed = false;
  #graceTimer: NodeJS.Timeout | undefined;

  /** Connect timeout, keep-alive, idle limit, maximum connect time and the session's end. */
  readonly #liveness: Liveness;
  #slowConsumerTimer: NodeJS.Timeout | undefined;

  #encode: typeof ENCODE_V311 | typeof ENCODE_V5 = ENCODE_V311;
  /** The client's maximum packet size (MQTT 5); nothing larger is ever sent to it. */
  #peerMaxPacketBytes = Infinity;
  #droppedOversize = 0;

  readonly #packetIds: PacketIdWindow;
  #waiting: Fifo<Waiting> | undefined;
  #waitingBytes = 0;

  /** `log` may be a function making the logger: then it is called for every line, and nothing is kept. */
  constructor(socket: Transport, limits: BrokerLimits, handlers: ConnectionHandlers, log: Logger | (() => Logger)) {
    this.#socket = socket;
    this.#limits = limits;
    this.#handlers = handlers;
    this.#log = log;
    this.#reader = new FrameReader(limits.maxConnectPacketBytes);
    this.#liveness = new Liveness(limits);
    this.#packetIds = new PacketIdWindow(limits.maxInflight);
    this.closed = new Promise((resolve) => socket.once('close', resolve));

    (socket as OwnedSocket)[OWNER] = this;
    socket.on('data', Connection.#onData);
    socket.on('drain', Connection.#onDrain);
    socket.on('error', Connection.#onError);
    socket.on('close', Connection.#onSocketClose);
    this.#armLiveness();
  }

  get log(): Logger {
    const log = this.#log;
    return typeof log === 'function' ? log() : log;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The peer's IP address (cached by the socket, so it is known after close too). */
  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }

  /** How the peer reached the broker: MQTT over TLS, over a secure WebSocket, or plain TCP (development open listener). */
  get transport(): 'tls' | 'websocket' | 'tcp' {
    const socket = this.#socket;
    return socket.kind ?? (socket instanceof TLSSocket ? 'tls' : 'tcp');
  }

  get isOpen(): boolean {
    return !this.#closing;
  }

  /** Bytes queued towards the peer: written and not yet sent, or waiting for a packet id. */
  get outboundBytes(): number {
    return this.#socket.writableLength + this.#outBytes + this.#waitingBytes;
  }

  /**
   * Over the soft outbound bound, or its session's queue backlogged: QoS 0 deliveries and retries
   * wait or are dropped.
   */
  get congested(): boolean {
    return this.#backlogged || this.outboundBytes > this.#limits.outboundSoftBytes;
  }

  /**
   * The client certificate chain presented in the TLS handshake, leaf first, as DER; empty on
   * plain TCP, when the client sent none, or when the transport says none may authenticate (a
   * browser's WebSocket). Read on demand: only device CONNECTs need it.
   */
  presentedCertificates(): Buffer[] {
    const socket = this.#socket;
    const tls = socket instanceof TLSSocket ? socket : socket.certificateSource;
    return tls ? presentedChain(tls) : [];
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
   * and kept within the client's announced limits. Decoding switched itself on the CONNECT.
   */
  useV5(peer: PeerLimits): void {
    this.#encode = ENCODE_V5;
    this.#reader.allowAuth = true;
    if (peer.maximumPacketSize !== undefined) this.#peerMaxPacketBytes = peer.maximumPacketSize;
    const receiveMaximum = peer.receiveMaximum;
    if (receiveMaximum !== undefined) this.#packetIds.limitTo(receiveMaximum);
  }

  /**
   * Calls `onEnd` (which closes the connection) once `delayMs` have passed, unless the connection
   * closes first; a later call replaces the earlier. It shares the liveness timer: a timer of its
   * own per connection would cost memory on every idle device.
   */
  endAfter(delayMs: number, onEnd: () => void): void {
    if (this.#closing) return;
    this.#liveness.endAfter(delayMs, onEnd);
    this.#armLiveness();
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
    this.#liveness.activate(keepAliveSeconds, state.phase === 'device');
    this.#reader.maxFrameBytes = this.#limits.maxPacketBytes;
    this.#reader.connectOnly = false;
    this.#armLiveness();
  }

  /** Encodes and writes one packet. */
  send(packet: Packet): void {
    if (this.#closing) return;
    this.write(mqttPacket.generate(packet, this.#encode));
  }

  /** PUBACK with success for a QoS 1 PUBLISH (the reason code left out means success in MQTT 5 too). */
  sendPuback(messageId: number): void {
    if (this.#closing) return;
    const bytes = Buffer.allocUnsafe(4);
    bytes[0] = 0x40;
    bytes[1] = 2;
    bytes.writeUInt16BE(messageId, 2);
    this.#enqueue(bytes);
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
    this.#enqueue(bytes);
    if (this.congested) this.#checkOutbound();
    return true;
  }

  #enqueue(bytes: Buffer): void {
    const out = this.#out;
    if (out === undefined) {
      this.#out = [bytes];
      flushSoon(this);
    } else {
      out.push(bytes);
    }
    this.#outBytes += bytes.length;
  }

  /** Writes what was gathered in this turn with one socket write (one run of TLS records). */
  flushOutbound(): void {
    const out = this.#out;
    if (out === undefined) return;
    const bytes = this.#outBytes;
    this.#out = undefined;
    this.#outBytes = 0;
    if (!this.#socket.writable) return;
    this.#socket.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out, bytes));
  }

  /**
   * The session's queue of messages waiting for this peer passed its high-water mark (true) or fell
   * back below its low-water mark (false). While backlogged the connection counts as congested: its
   * publishers wait, and if it stays so for `slowConsumerMs` it is closed as a slow consumer.
   */
  setBacklogged(backlogged: boolean): void {
    if (this.#backlogged === backlogged || this.#closing) return;
    this.#backlogged = backlogged;
    if (backlogged) this.#checkOutbound();
    else this.#relieved();
  }

  /**
   * A message from `publisher` was just delivered to this engine client: while this client is
   * congested, the publisher reads no further PUBLISH until it has caught up (or gone). Nobody waits
   * on itself, and a publisher that is congested itself never waits: it must go on reading the
   * acknowledgements that relieve it. So a publisher only waits on a subscriber that had its gate
   * before the publisher had one, and publishers can never wait on each other in a circle.
   * Returns whether the publisher now waits for this client.
   */
  holdPublisher(publisher: Connection): boolean {
    const gate = this.#gate;
    if (gate === undefined || publisher === this || publisher.#closing || publisher.#gate !== undefined) return false;
    if (gate.hold(publisher)) (publisher.#heldBy ??= new Set()).add(gate);
    return true;
  }

  /**
   * Whether `message` (its payload and topic; the packet's few other bytes aside) still fits under
   * the hard outbound bound: a QoS 0 message sent past the soft bound must not cut the client off.
   */
  hasRoomFor(message: { readonly topic: string; readonly payload: Buffer }): boolean {
    return this.outboundBytes + message.payload.length + message.topic.length <= this.#limits.outboundHardBytes;
  }

  /** The gate publishers wait on while this engine client is congested; undefined otherwise. */
  get gate(): FlowGate | undefined {
    return this.#gate;
  }

  /** How many congested subscribers this publisher waits on. */
  get heldBy(): number {
    return this.#heldBy?.size ?? 0;
  }

  /**
   * Sends a QoS 1 PUBLISH, or queues it until the peer acknowledges enough earlier ones to free a
   * packet id. What waits counts towards the outbound bounds.
   */
  publishAtLeastOnce(topic: string, payload: Buffer, kind: InflightKind, retain = false): void {
    if (this.#closing) return;
    // Behind messages already waiting, to keep the order they were published in.
    const messageId = !this.#waiting?.length ? this.allocatePacketId(kind) : undefined;
    if (messageId !== undefined) {
      this.#sendAtLeastOnce(topic, payload, messageId, retain);
      return;
    }
    (this.#waiting ??= new Fifo<Waiting>()).push(retain ? { topic, payload, kind, retain } : { topic, payload, kind });
    this.#waitingBytes += payload.length + topic.length;
    this.#checkOutbound();
  }

  /**
   * A packet id for a QoS 1 message to the peer, or undefined when too many are unacknowledged.
   * A device's single pending config is never held back by other traffic: it may exceed the window
   * (by one, within an MQTT 5 client's receive maximum).
   */
  allocatePacketId(kind: InflightKind): number | undefined {
    return this.#packetIds.allocate(kind);
  }

  /** The peer acknowledged `id`: frees it and says what it was for (undefined if unknown). */
  acknowledge(id: number): InflightKind | undefined {
    const kind = this.#packetIds.release(id);
    if (kind !== undefined) this.#sendWaiting();
    return kind;
  }

  /** Gives up on a message without an acknowledgement (e.g. a superseded config). */
  releasePacketId(id: number): void {
    if (this.#packetIds.release(id) !== undefined) this.#sendWaiting();
  }

  #sendWaiting(): void {
    const waiting = this.#waiting;
    if (waiting === undefined) return;
    for (let next = waiting.peek(); next && !this.#closing; next = waiting.peek()) {
      const messageId = this.allocatePacketId(next.kind);
      if (messageId === undefined) return;
      waiting.shift();
      this.#waitingBytes -= next.payload.length + next.topic.length;
      this.#sendAtLeastOnce(next.topic, next.payload, messageId, next.retain === true);
    }
  }

  /** A QoS 1 PUBLISH too large for the client counts as delivered: its packet id is freed at once. */
  #sendAtLeastOnce(topic: string, payload: Buffer, messageId: number, retain = false): void {
    const packet: IPublishPacket = { cmd: 'publish', topic, payload, qos: 1, dup: false, retain, messageId };
    if (!this.write(mqttPacket.generate(packet, this.#encode)) && !this.#closing) this.#packetIds.release(messageId);
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
    if (options.code !== undefined && this.#encode === ENCODE_V5 && !this.#socketClosed && (last.phase === 'device' || last.phase === 'client')) {
      this.#enqueue(mqttPacket.generate({ cmd: 'disconnect', reasonCode: options.code }, ENCODE_V5));
      destroy = false;
    }
    this.#closing = true;
    this.#state = CLOSED;
    this.#liveness.stop();
    clearTimeout(this.#slowConsumerTimer);
    this.#openGate();
    const heldBy = this.#heldBy;
    if (heldBy !== undefined) {
      this.#heldBy = undefined;
      for (const gate of heldBy) gate.forget(this);
    }
    this.#held = undefined;
    this.#leftover = undefined;
    this.#waiting = undefined;
    this.#waitingBytes = 0;
    this.log[options.level ?? 'debug']({ reason }, 'connection closed');
    try {
      this.#handlers.closed(this, last);
    } catch (e) {
      this.log.error({ err: e }, 'releasing a closed connection failed');
    }
    if (this.#socketClosed) return;
    if (destroy) {
      this.#out = undefined;
      this.#outBytes = 0;
      this.#socket.destroy();
    } else {
      this.flushOutbound();
      this.#socket.end();
      this.#graceTimer = setTimeout(() => this.#socket.destroy(), this.#limits.closeGraceMs);
    }
  }

  static #onData(this: OwnedSocket, chunk: Buffer): void {
    const conn = this[OWNER];
    if (conn !== undefined) conn.#dataIn(chunk);
  }

  static #onDrain(this: OwnedSocket): void {
    const conn = this[OWNER];
    if (conn !== undefined) conn.#drained();
  }

  static #onError(this: OwnedSocket, e: Error): void {
    this[OWNER]?.log.debug({ err: e.message }, 'socket error');
  }

  static #onSocketClose(this: OwnedSocket): void {
    const conn = this[OWNER];
    if (conn === undefined) return;
    conn.#socketClosed = true;
    clearTimeout(conn.#graceTimer);
    conn.close('peer closed the connection');
  }

  #dataIn(chunk: Buffer): void {
    if (this.#closing) return;
    if (this.#busy) {
      // Bytes that were already on their way when the socket was paused.
      this.#leftover = this.#leftover ? Buffer.concat([this.#leftover, chunk]) : chunk;
      return;
    }
    this.#consume(chunk);
  }

  #consume(chunk: Buffer): void {
    let used: number;
    try {
      used = this.#reader.push(chunk, this.#onFrame, this);
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

  #onFrame(frame: Buffer): boolean {
    if (this.#closing) return false;
    if (this.#heldBy !== undefined && (frame[0] as number) >> 4 === PUBLISH_TYPE) {
      // Neither acknowledged nor dropped while a subscriber it feeds is congested: it waits, and so
      // does the socket (packets behind it too, to keep their order), so TCP slows the peer down.
      this.#held = frame;
      this.#busy = true;
      return false;
    }
    const liveness = this.#liveness;
    const at = performance.now();
    liveness.lastPacketAt = at;
    const packet = decodePacket(frame, this.#decodeV5);
    if (packet instanceof Error) {
      this.#handlers.unparsable(this, frame);
      this.close(`malformed packet: ${packet.message}`, { level: 'info', code: REASON_V5.malformedPacket });
      return false;
    }
    if (packet.cmd === 'publish' || packet.cmd === 'pingreq') liveness.lastActiveAt = at;
    else if (packet.cmd === 'connect' && packet.protocolVersion === 5) this.#decodeV5 = true;

    let pending: void | Promise<void>;
    try {
      pending = this.#handlers.packet(this, packet);
    } catch (e) {
      this.#fail(e);
      return false;
    }
    if (pending === undefined) return !this.#closing;
    this.#busy = true;
    pending.then(
      () => this.#resume(),
      (e: unknown) => this.#fail(e),
    );
    return false;
  }

  /** A gate it waited on opened: once none is left, the held PUBLISH and what followed it are handled. */
  gateOpened(gate: FlowGate): void {
    const heldBy = this.#heldBy;
    if (heldBy === undefined || !heldBy.delete(gate) || heldBy.size > 0) return;
    this.#heldBy = undefined;
    if (this.#held !== undefined && !this.#closing) this.#resume();
  }

  #resume(): void {
    this.#busy = false;
    if (this.#closing) return;
    const held = this.#held;
    if (held !== undefined) {
      this.#held = undefined;
      if (!this.#onFrame(held) && (this.#busy || this.#closing)) return;
    }
    const leftover = this.#leftover;
    this.#leftover = undefined;
    if (leftover) this.#consume(leftover);
    if (!this.#busy && !this.#closing) this.#socket.resume();
  }

  #fail(e: unknown): void {
    this.log.error({ err: e }, 'packet handling failed');
    this.close('internal error', { level: 'warn', destroy: true });
  }

  /** Over the hard bound the peer is cut off; over the soft bound it has `slowConsumerMs` to catch up. */
  #checkOutbound(): void {
    const queued = this.outboundBytes;
    if (queued > this.#limits.outboundHardBytes) {
      this.close('slow consumer: outbound buffer over its hard bound', { level: 'warn', destroy: true });
      return;
    }
    if (!this.congested) return;
    // Only session-engine clients hold publishers back: a device that stops reading its commands
    // must not be able to stall anyone's telemetry.
    if (this.#gate === undefined && this.#state.phase === 'client') this.#gate = new FlowGate();
    this.#slowConsumerTimer ??= setTimeout(Connection.#slowConsumerCheck, this.#limits.slowConsumerMs, this);
  }

  static #slowConsumerCheck(conn: Connection): void {
    conn.#slowConsumerTimer = undefined;
    if (conn.congested) conn.close('slow consumer: outbound buffer stayed over its bound', { level: 'warn', destroy: true });
    // Relieved without a drain event (say, QoS 1 messages waiting for packet ids went out).
    else conn.#relieved();
  }

  #drained(): void {
    if (!this.congested) this.#relieved();
  }

  /** No longer congested: publishers may go on, and the slow-consumer clock stops. */
  #relieved(): void {
    if (this.congested) return;
    clearTimeout(this.#slowConsumerTimer);
    this.#slowConsumerTimer = undefined;
    this.#openGate();
  }

  /** Its publishers go on (on a later turn); a later congestion makes a new gate. */
  #openGate(): void {
    const gate = this.#gate;
    if (gate === undefined) return;
    this.#gate = undefined;
    gate.open();
  }

  #armLiveness(): void {
    if (this.#closing) this.#liveness.stop();
    else this.#liveness.arm(Connection.#checkLiveness, this);
  }

  static #checkLiveness(conn: Connection): void {
    conn.#checkDeadline();
  }

  #checkDeadline(): void {
    const liveness = this.#liveness;
    // A peer whose packets we are holding back is not silent: we are just not reading it.
    if (this.#held !== undefined) liveness.touch();
    const onEnd = liveness.takeDueEnd();
    if (onEnd !== undefined) {
      onEnd();
      if (!this.#closing) this.#armLiveness();
      return;
    }
    const expiry = liveness.expired();
    if (expiry === undefined) {
      this.#armLiveness();
      return;
    }
    // Unauthenticated peers timing out are routine noise; authenticated ones are worth a line.
    const level = this.#state.phase === 'device' || this.#state.phase === 'client' ? 'info' : 'debug';
    this.close(expiry.reason, { level, code: expiry.code });
  }
}
