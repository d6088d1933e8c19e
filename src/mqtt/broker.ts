/**
 * Keyway's MQTT broker: the device plane of Cloud IoT Core's MQTT bridge (reference §1) plus
 * backend subscribers. It authenticates every connection before any session state exists, holds
 * one connection per device, enforces the device topic namespace, delivers configs and commands
 * from the bus, and disconnects devices whose token expires, whose credentials are revoked or
 * whose registry no longer admits them over MQTT.
 * Backends are clients of the session engine (namespace.ts) in the backend namespace, into which
 * device events and state are published; the optional development open listener serves the
 * separate open namespace to anonymous clients on loopback.
 */
import type { Server as HttpsServer } from 'node:https';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type {
  Bus,
  CertificatesRevoked,
  ConfigPushed,
  DeviceKey,
  DeviceRevoked,
  GatewayBindingChanged,
  PoliciesChanged,
  RegistryAccessChanged,
  ServiceIdentityChanged,
} from '../bus/bus.js';
import type { AuditSink } from '../domain/audit-events.js';
import { failedPrecondition } from '../domain/errors.js';
import type { DeviceGateway, DeviceMessageSink } from '../registry/device-manager.js';
import { DeviceRateLimiter, type ClockedQuotas } from '../registry/device-quotas.js';
import { BackendConnections, backendAccountName, type BackendAuthenticator } from './backend-identity.js';
import { CertificateConnections } from './certificate-connections.js';
import { ConnectRateLimiter } from './connect-rate.js';
import { Connection, type ConnectionHandlers, type ConnectionState } from './connection.js';
import type { BrokerContext } from './context.js';
import { deliverCommand } from './deliver-command.js';
import { BUILTIN_DEVICE_POLICIES, type DevicePolicies } from './device-policies.js';
import { DeviceSpaces } from './device-spaces.js';
import { AttachedDevices } from './gateway-attachments.js';
import { applyBindingChange, pushAttachedConfig, revokeAttachment } from './gateway-effects.js';
import { recompilePolicies } from './policy-changes.js';
import { applyRegistryAccess } from './registry-access.js';
import { recordDeviceError } from './device-errors.js';
import type { FrameError } from './frame-reader.js';
import { resolveLimits, type BrokerLimits } from './limits.js';
import { MQTT_ALPN_PROTOCOLS, TlsListener, type ServerCredentials } from './listener.js';
import { Namespace } from './namespace.js';
import { BACKEND_POLICY, OPEN_POLICY } from './namespace-policy.js';
import { assertLoopback, OpenListener } from './open-listener.js';
import { handleUnparsableConnect, refuseOversizeConnect } from './handle-connect.js';
import { REASON_V5 } from './reason-codes.js';
import { dispatchPacket } from './packet-dispatch.js';
import { RevocationWindow, revokes } from './revocation.js';
import { SessionTable } from './sessions.js';
import { BackendDeviceMessages } from './device-message-sink.js';
import type { Transport } from './transport.js';
import { DEFAULT_WEBSOCKET_PATH, maxMessageBytes, WebSocketListener } from './websocket-listener.js';

export type { BrokerLimits } from './limits.js';

export interface BrokerOptions {
  readonly gateway: DeviceGateway;
  readonly bus: Bus;
  /** Backend subscribers' service-account logins; without it every backend login is refused. */
  readonly backends?: BackendAuthenticator;
  /** PEM server certificate chain(s) and key(s): an ECDSA and an RSA one may go side by side. */
  readonly tls: ServerCredentials;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly logger: Logger;
  readonly limits?: Partial<BrokerLimits>;
  readonly now?: () => Date;
  /**
   * A plaintext listener for the development "open" namespace (conformance testing only):
   * anonymous clients, any topic. Loopback hosts only; port 0 picks a free port.
   */
  readonly openListener?: { readonly host: string; readonly port: number };
  /**
   * A second TLS listener for the same broker that serves only clients negotiating the ALPN
   * protocol `mqtt` (or `x-amzn-mqtt-ca`): MQTT on 443 for networks that block 8883.
   */
  readonly alpnListener?: { readonly host: string; readonly port: number };
  /** Receives every authentication and authorization decision (the audit log). */
  readonly audit?: AuditSink;
  /** The devices' stored policies; without them every device runs under the built-in Cloud IoT Core grants. */
  readonly policies?: DevicePolicies;
  /** Device and registry rate limits, shared with the HTTP bridge; a broker of its own by default. */
  readonly quotas?: ClockedQuotas;
}

export interface WebSocketOptions {
  /** The path served; `/mqtt` by default. */
  readonly path?: string;
}

/** MQTT over WebSockets on one HTTPS server: `close` ends its connections, the server goes on. */
export interface WebSocketService {
  close(): Promise<void>;
}

/** The ports the broker listens on; `openPort` only when an open listener was configured. */
export interface BrokerPorts {
  readonly port: number;
  readonly openPort?: number;
  /** The ALPN `mqtt` listener's port, when one was configured. */
  readonly alpnPort?: number;
}

export class Broker {
  readonly #o: BrokerOptions;
  readonly #ctx: BrokerContext;
  readonly #connections = new Set<Connection>();
  readonly #handlers: ConnectionHandlers;
  readonly #openHandlers: ConnectionHandlers;
  #listener: TlsListener | undefined;
  #alpnListener: TlsListener | undefined;
  #openListener: OpenListener | undefined;
  readonly #webSockets: WebSocketListener[] = [];
  #busSubscriptions: Array<() => void> = [];
  #nextConnectionId = 0;
  #closing: Promise<void> | undefined;
  #deviceMessages: DeviceMessageSink | undefined;

  constructor(options: BrokerOptions) {
    this.#o = options;
    if (options.openListener) assertLoopback(options.openListener.host);
    const limits = resolveLimits(options.limits);
    this.#ctx = {
      gateway: options.gateway,
      backends: options.backends,
      backendConnections: new BackendConnections(),
      limits,
      logger: options.logger,
      now: options.now ?? (() => new Date()),
      devices: new SessionTable<DeviceKey>(),
      attached: new AttachedDevices(),
      backend: new Namespace(BACKEND_POLICY, limits),
      open: new Namespace(OPEN_POLICY, limits),
      policies: options.policies ?? BUILTIN_DEVICE_POLICIES,
      deviceSpaces: new DeviceSpaces(limits),
      revocations: new RevocationWindow(limits.connectTimeoutMs),
      connectRate: new ConnectRateLimiter(limits, () => performance.now()),
      quotas: options.quotas ?? new DeviceRateLimiter(),
      certificates: new CertificateConnections<Connection>(),
      ...(options.audit ? { audit: options.audit } : {}),
    };
    this.#handlers = {
      packet: (conn, packet) => dispatchPacket(this.#ctx, conn, packet),
      frameError: (conn, error, chunk) => this.#onFrameError(conn, error, chunk),
      unparsable: (conn, frame) => handleUnparsableConnect(conn, frame),
      closed: (conn, last) => this.#release(conn, last),
    };
    this.#openHandlers = { ...this.#handlers, packet: (conn, packet) => dispatchPacket(this.#ctx, conn, packet, 'open') };
  }

  /** Open client connections (TLS or WebSocket established), authenticated or not yet. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Where device events and states that came by another protocol (the HTTPS bridge) enter the backend namespace. */
  get deviceMessages(): DeviceMessageSink {
    return (this.#deviceMessages ??= new BackendDeviceMessages(this.#ctx.backend));
  }

  async start(): Promise<BrokerPorts> {
    if (this.#listener || this.#closing) throw failedPrecondition('the MQTT broker was already started');
    const { limits, logger } = this.#ctx;
    const listener = new TlsListener(
      {
        tls: this.#o.tls,
        host: this.#o.host,
        port: this.#o.port,
        handshakeTimeoutMs: limits.connectTimeoutMs,
        maxConnections: limits.maxConnections,
      },
      (socket) => this.#accept(socket),
      logger,
    );
    this.#listener = listener;
    const port = await listener.listen();
    const alpnPort = await this.#startAlpnListener();
    const openPort = await this.#startOpenListener();
    const bus = this.#o.bus;
    this.#busSubscriptions = [
      bus.onConfig((event) => this.#onConfig(event)),
      bus.onRevoked((event) => this.#onRevoked(event)),
      bus.onCertificatesRevoked((event) => this.#onCertificatesRevoked(event)),
      bus.onServiceIdentityChanged((event) => this.#onServiceIdentityChanged(event)),
      bus.onPoliciesChanged((event) => this.#onPoliciesChanged(event)),
      bus.onGatewayBindingChanged((event) => this.#onGatewayBindingChanged(event)),
      bus.onRegistryAccessChanged((event) => this.#onRegistryAccessChanged(event)),
      bus.handleCommands(async (request) => deliverCommand(this.#ctx, request)),
    ];
    logger.info({ host: this.#o.host, port }, 'MQTT broker listening');
    return {
      port,
      ...(openPort !== undefined ? { openPort } : {}),
      ...(alpnPort !== undefined ? { alpnPort } : {}),
    };
  }

  async #startAlpnListener(): Promise<number | undefined> {
    const options = this.#o.alpnListener;
    if (!options) return undefined;
    const { limits, logger } = this.#ctx;
    const alpn = new TlsListener(
      {
        tls: this.#o.tls,
        host: options.host,
        port: options.port,
        handshakeTimeoutMs: limits.connectTimeoutMs,
        maxConnections: limits.maxConnections,
        alpnProtocols: MQTT_ALPN_PROTOCOLS,
        name: 'alpn',
      },
      (socket) => this.#accept(socket),
      logger,
    );
    this.#alpnListener = alpn;
    const alpnPort = await alpn.listen();
    logger.info({ host: options.host, port: alpnPort, protocols: MQTT_ALPN_PROTOCOLS }, 'MQTT over ALPN listening');
    return alpnPort;
  }

  /**
   * Replaces the server credentials of every TLS listener for new handshakes; established
   * connections stay up. Throws, keeping the old credentials everywhere, when they do not load.
   */
  setTlsCredentials(credentials: ServerCredentials): void {
    const listeners = [this.#listener, this.#alpnListener].filter((l): l is TlsListener => l !== undefined);
    // The first listener tries them: if they do not load, none has changed yet.
    for (const listener of listeners) listener.setCredentials(credentials);
  }

  async #startOpenListener(): Promise<number | undefined> {
    const options = this.#o.openListener;
    if (!options) return undefined;
    const { limits, logger } = this.#ctx;
    const open = new OpenListener(options.host, options.port, limits.maxConnections, (socket) => this.#accept(socket, this.#openHandlers), logger);
    this.#openListener = open;
    const openPort = await open.listen();
    logger.warn(
      { host: options.host, port: openPort },
      'development open listener: plaintext, anonymous, any topic; for conformance testing only, never for use',
    );
    return openPort;
  }

  /**
   * Serves MQTT over WebSockets on `server` (an HTTPS server asking for client certificates
   * without requiring them): the same authentication, rules and bounds as over TLS, the client
   * certificate being the HTTPS connection's. The broker must be started; its shutdown ends these
   * connections too, and so does the returned service's `close` (before the server closes: an
   * HTTPS server's close waits for its upgraded sockets).
   */
  serveWebSockets(server: HttpsServer, options: WebSocketOptions = {}): WebSocketService {
    if (!this.#listener || this.#closing) throw failedPrecondition('the MQTT broker is not running');
    const { limits, logger } = this.#ctx;
    const path = options.path ?? DEFAULT_WEBSOCKET_PATH;
    const listener = new WebSocketListener(
      server,
      {
        path,
        maxPayload: maxMessageBytes(limits),
        closeTimeoutMs: limits.closeGraceMs,
        // One bound for every listener of the broker.
        admits: () => !this.#closing && this.#connections.size < limits.maxConnections,
      },
      (transport) => this.#accept(transport),
      logger,
    );
    this.#webSockets.push(listener);
    logger.info({ path }, 'MQTT over WebSockets served');
    return { close: () => listener.close() };
  }

  /** Stops accepting, ends every connection, and resolves once all sockets are closed. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    for (const unsubscribe of this.#busSubscriptions) unsubscribe();
    this.#busSubscriptions = [];
    const listener = this.#listener;
    if (!listener) return;
    const stopped = listener.close();
    const alpnStopped = this.#alpnListener?.close();
    const openStopped = this.#openListener?.close();
    const webSocketsStopped = this.#webSockets.map((webSockets) => webSockets.close());
    const closing = [...this.#connections].map((conn) => {
      conn.close('server shutting down', { code: REASON_V5.serverShuttingDown });
      return conn.closed;
    });
    await Promise.all(closing);
    listener.destroyAll();
    this.#alpnListener?.destroyAll();
    this.#openListener?.destroyAll();
    await stopped;
    await alpnStopped;
    await openStopped;
    await Promise.all(webSocketsStopped);
    this.#ctx.backend.close();
    this.#ctx.open.close();
    this.#ctx.logger.info('MQTT broker stopped');
  }

  #accept(socket: Transport, handlers = this.#handlers): Connection | undefined {
    if (this.#closing) {
      socket.destroy();
      return undefined;
    }
    const id = ++this.#nextConnectionId;
    // A child logger per connection would be kept for its whole life: make one per line instead.
    // Reading the peer's address now caches it on the socket for lines written after it closed.
    const logger = this.#ctx.logger;
    void socket.remoteAddress;
    const log = (): Logger => logger.child({ conn: id, remote: `${socket.remoteAddress}:${socket.remotePort}` });
    const conn = new Connection(socket, this.#ctx.limits, handlers, log);
    this.#connections.add(conn);
    void conn.closed.then(() => this.#connections.delete(conn));
    return conn;
  }

  #onFrameError(conn: Connection, error: FrameError, chunk: Buffer): boolean {
    const state = conn.state;
    if (state.phase === 'awaiting-connect' && error.kind === 'oversize') return refuseOversizeConnect(conn, chunk);
    if (state.phase === 'device' && error.kind === 'oversize') {
      recordDeviceError(
        this.#ctx,
        conn,
        state.session,
        'INVALID_ARGUMENT',
        `mqtt: The packet of ${error.size} bytes exceeds the maximum of ${this.#ctx.limits.maxPacketBytes} bytes.`,
      );
    }
    return false;
  }

  #release(conn: Connection, last: ConnectionState): void {
    const ctx = this.#ctx;
    ctx.certificates.remove(conn);
    ctx.backendConnections.remove(conn);
    if (last.phase === 'device') {
      ctx.devices.release(last.session.key, conn);
      const subscriber = last.session.subscriber;
      if (subscriber) ctx.deviceSpaces.release(subscriber);
      last.session.dispose();
    } else if (last.phase === 'client') {
      const { session } = last;
      // Counted on the delivery path, reported here: no logging per message.
      if (session.dropped > 0) conn.log.warn({ dropped: session.dropped }, 'messages dropped for this session so far: queue full or client congested');
      last.namespace.closed(session, conn);
    }
  }

  // Bus listeners run inside the publisher's call (the admin API's request): they never throw.

  #onConfig(event: ConfigPushed): void {
    try {
      const state = this.#ctx.devices.get(event.device)?.state;
      if (state?.phase === 'device') state.session.config.pushed(event.version, event.binaryData);
      else pushAttachedConfig(this.#ctx, event);
    } catch (e) {
      this.#ctx.logger.error({ err: e, device: event.device }, 'config push failed');
    }
  }

  #onRevoked(event: DeviceRevoked): void {
    try {
      this.#ctx.revocations.record(event);
      const conn = this.#ctx.devices.get(event.device);
      const state = conn?.state;
      if (conn && state?.phase === 'device' && revokes(event, state.session.device)) {
        conn.close(`device revoked: ${event.reason}`, { level: 'info', destroy: true, code: REASON_V5.administrativeAction });
      }
      revokeAttachment(this.#ctx, event);
    } catch (e) {
      this.#ctx.logger.error({ err: e, device: event.device }, 'revocation failed');
    }
  }

  #onGatewayBindingChanged(event: GatewayBindingChanged): void {
    try {
      applyBindingChange(this.#ctx, event);
    } catch (e) {
      this.#ctx.logger.error({ err: e, gateway: event.gateway }, 'applying a gateway binding change failed');
    }
  }

  #onCertificatesRevoked(event: CertificatesRevoked): void {
    try {
      this.#ctx.revocations.recordCertificates(event);
      for (const conn of this.#ctx.certificates.holding(event.keys)) {
        conn.close(`certificate revoked: ${event.reason}`, { level: 'info', destroy: true, code: REASON_V5.administrativeAction });
      }
    } catch (e) {
      this.#ctx.logger.error({ err: e, keys: event.keys.length }, 'certificate revocation failed');
    }
  }

  #onRegistryAccessChanged(event: RegistryAccessChanged): void {
    try {
      this.#ctx.revocations.recordRegistryAccess(event);
      const { disconnected, detached } = applyRegistryAccess(this.#ctx, event);
      this.#ctx.logger.info(
        { registry: event.registry, mqttEnabled: event.mqttEnabled, deviceAuthMethod: event.deviceAuthMethod, disconnected, detached },
        'registry access applied to live connections',
      );
    } catch (e) {
      this.#ctx.logger.error({ err: e, registry: event.registry }, 'applying a registry access change failed');
    }
  }

  #onPoliciesChanged(event: PoliciesChanged): void {
    // Recompiling reads the store: done after the publisher's call, never failing it.
    recompilePolicies(this.#ctx, this.#connections, event).catch((e: unknown) =>
      this.#ctx.logger.error({ err: e, registry: event.registry }, 'recompiling device policies failed'),
    );
  }

  #onServiceIdentityChanged(event: ServiceIdentityChanged): void {
    try {
      const ctx = this.#ctx;
      const conns = ctx.backendConnections.holding(event.project, event.account, event.keyId);
      for (const conn of conns) {
        ctx.backendConnections.remove(conn);
        conn.close(`service account changed: ${event.reason}`, { level: 'info', destroy: true, code: REASON_V5.administrativeAction });
      }
      // Sessions kept for reconnection would otherwise resume with what was queued under the old rights.
      const ended = event.keyId === undefined ? ctx.backend.endOwnedBy(backendAccountName({ project: event.project, id: event.account })) : 0;
      if (conns.length > 0 || ended > 0) {
        ctx.logger.info({ account: `${event.project}/${event.account}`, reason: event.reason, connections: conns.length, sessions: ended }, 'backend connections ended');
      }
    } catch (e) {
      this.#ctx.logger.error({ err: e, account: event.account }, 'ending backend connections failed');
    }
  }
}
