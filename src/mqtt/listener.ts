/**
 * The TLS listener for MQTT: TLS 1.2 or newer only, a bounded handshake time and number of
 * connections. It tracks raw sockets so that a shutdown can also cut off unfinished handshakes.
 */
import type { Socket } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';

export interface ListenerOptions {
  readonly tls: { readonly cert: string; readonly key: string };
  readonly host: string;
  readonly port: number;
  readonly handshakeTimeoutMs: number;
  readonly maxConnections: number;
}

export class TlsListener {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #o: ListenerOptions;

  constructor(options: ListenerOptions, onConnection: (socket: TLSSocket) => void, log: Logger) {
    this.#o = options;
    this.#server = createServer(
      {
        cert: options.tls.cert,
        key: options.tls.key,
        minVersion: 'TLSv1.2',
        handshakeTimeout: options.handshakeTimeoutMs,
      },
      onConnection,
    );
    this.#server.maxConnections = options.maxConnections;
    this.#server.on('connection', (socket: Socket) => {
      socket.setNoDelay(true);
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    this.#server.on('tlsClientError', (e, socket) => {
      log.debug({ err: e.message, remote: socket.remoteAddress }, 'TLS handshake failed');
    });
    this.#server.on('error', (e) => log.error({ err: e }, 'MQTT listener error'));
  }

  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.#server.once('error', onError);
      this.#server.listen(this.#o.port, this.#o.host, () => {
        this.#server.off('error', onError);
        const address = this.#server.address();
        resolve(typeof address === 'object' && address ? address.port : this.#o.port);
      });
    });
  }

  /** Stops accepting; resolves once every socket it accepted is closed. */
  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /** Cuts off every socket still open (handshakes that never completed, at shutdown). */
  destroyAll(): void {
    for (const socket of this.#sockets) socket.destroy();
  }
}
