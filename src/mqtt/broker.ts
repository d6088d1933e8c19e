/**
 * Keyway's MQTT broker: the device plane of Cloud IoT Core's MQTT bridge (reference §1) plus
 * backend subscribers. It authenticates every connection before any session state exists, holds
 * one connection per device, enforces the device topic namespace, delivers configs and commands
 * from the bus, and disconnects devices whose token expires or whose credentials are revoked.
 */
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Bus, ConfigPushed, DeviceKey, DeviceRevoked } from '../bus/bus.js';
import { failedPrecondition } from '../domain/errors.js';
import type { DeviceGateway } from '../registry/device-manager.js';
import { BackendSubscriptions } from './backend-subscriptions.js';
import { Connection, type ConnectionHandlers, type ConnectionState } from './connection.js';
import type { BrokerContext } from './context.js';
import { deliverCommand } from './deliver-command.js';
import { recordDeviceError } from './device-errors.js';
import type { FrameError } from './frame-reader.js';
import { resolveLimits, type BrokerLimits } from './limits.js';
import { TlsListener } from './listener.js';
import { handleUnparsableConnect, refuseOversizeConnect } from './handle-connect.js';
import { REASON_V5 } from './reason-codes.js';
import { dispatchPacket } from './packet-dispatch.js';
import { RevocationWindow, revokes } from './revocation.js';
import { SessionTable } from './sessions.js';

export type { BrokerLimits } from './limits.js';

export interface BrokerOptions {
  readonly gateway: DeviceGateway;
  readonly bus: Bus;
  readonly verifyAdminToken: (token: string) => boolean;
  /** PEM server certificate (chain) and key. */
  readonly tls: { readonly cert: string; readonly key: string };
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly logger: Logger;
  readonly limits?: Partial<BrokerLimits>;
  readonly now?: () => Date;
}

export class Broker {
  readonly #o: BrokerOptions;
  readonly #ctx: BrokerContext;
  readonly #connections = new Set<Connection>();
  readonly #handlers: ConnectionHandlers;
  #listener: TlsListener | undefined;
  #busSubscriptions: Array<() => void> = [];
  #nextConnectionId = 0;
  #closing: Promise<void> | undefined;

  constructor(options: BrokerOptions) {
    this.#o = options;
    const limits = resolveLimits(options.limits);
    this.#ctx = {
      gateway: options.gateway,
      verifyAdminToken: options.verifyAdminToken,
      limits,
      logger: options.logger,
      now: options.now ?? (() => new Date()),
      devices: new SessionTable<DeviceKey>(),
      backends: new SessionTable<string>(),
      backendSubscriptions: new BackendSubscriptions(),
      revocations: new RevocationWindow(limits.connectTimeoutMs),
    };
    this.#handlers = {
      packet: (conn, packet) => dispatchPacket(this.#ctx, conn, packet),
      frameError: (conn, error, chunk) => this.#onFrameError(conn, error, chunk),
      unparsable: (conn, frame) => handleUnparsableConnect(conn, frame),
      closed: (conn, last) => this.#release(conn, last),
    };
  }

  /** Open client connections (TLS established), authenticated or not yet. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  async start(): Promise<{ port: number }> {
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
    const bus = this.#o.bus;
    this.#busSubscriptions = [
      bus.onConfig((event) => this.#onConfig(event)),
      bus.onRevoked((event) => this.#onRevoked(event)),
      bus.handleCommands(async (request) => deliverCommand(this.#ctx, request)),
    ];
    logger.info({ host: this.#o.host, port }, 'MQTT broker listening');
    return { port };
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
    const closing = [...this.#connections].map((conn) => {
      conn.close('server shutting down', { code: REASON_V5.serverShuttingDown });
      return conn.closed;
    });
    await Promise.all(closing);
    listener.destroyAll();
    await stopped;
    this.#ctx.logger.info('MQTT broker stopped');
  }

  #accept(socket: TLSSocket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const id = ++this.#nextConnectionId;
    const log = this.#ctx.logger.child({ conn: id, remote: `${socket.remoteAddress}:${socket.remotePort}` });
    const conn = new Connection(socket, this.#ctx.limits, this.#handlers, log);
    this.#connections.add(conn);
    void conn.closed.then(() => this.#connections.delete(conn));
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
    if (last.phase === 'device') {
      ctx.devices.release(last.session.key, conn);
      last.session.dispose();
    } else if (last.phase === 'backend') {
      if (last.session.clientId !== '') ctx.backends.release(last.session.clientId, conn);
      ctx.backendSubscriptions.removeAll(conn, last.session);
    }
  }

  // Bus listeners run inside the publisher's call (the admin API's request): they never throw.

  #onConfig(event: ConfigPushed): void {
    try {
      const state = this.#ctx.devices.get(event.device)?.state;
      if (state?.phase === 'device') state.session.config.pushed(event.version, event.binaryData);
    } catch (e) {
      this.#ctx.logger.error({ err: e, device: event.device }, 'config push failed');
    }
  }

  #onRevoked(event: DeviceRevoked): void {
    try {
      this.#ctx.revocations.record(event);
      const conn = this.#ctx.devices.get(event.device);
      const state = conn?.state;
      if (conn && state?.phase === 'device' && revokes(event, state.session.device.credentialFingerprint)) {
        conn.close(`device revoked: ${event.reason}`, { level: 'info', destroy: true, code: REASON_V5.administrativeAction });
      }
    } catch (e) {
      this.#ctx.logger.error({ err: e, device: event.device }, 'revocation failed');
    }
  }
}
