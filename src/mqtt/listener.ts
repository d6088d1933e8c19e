/**
 * The TLS listener for MQTT: TLS 1.2 or newer only, a bounded handshake time and number of
 * connections. It tracks raw sockets so that a shutdown can also cut off unfinished handshakes.
 *
 * It asks every client for a certificate but lets the handshake finish without one, and without
 * verifying one against OpenSSL's store: devices with a certificate are verified by the registry
 * against the CAs of their own registry (handle-connect), devices without use a JWT. The
 * handshake itself proves that a client holds the private key of the certificate it presented.
 *
 * With `alpnProtocols` (MQTT on 443), a client must negotiate one of them: a mismatch fails the
 * handshake, and a client that offered no protocol at all is closed, since the port is meant to
 * carry other protocols by ALPN too.
 */
import type { Socket } from 'node:net';
import { createServer, type SecureContextOptions, type Server, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';

/**
 * PEM server certificate chains and their keys: one of each, or several side by side (an ECDSA
 * and an RSA one), in the same order; OpenSSL picks per client from what it supports.
 */
export interface ServerCredentials {
  readonly cert: string | readonly string[];
  readonly key: string | readonly string[];
}

/** The secure-context options of every TLS listener: its credentials, TLS 1.2 or newer. */
export function secureContextOptions(credentials: ServerCredentials): SecureContextOptions {
  const list = (v: string | readonly string[]): string | string[] => (typeof v === 'string' ? v : [...v]);
  return { cert: list(credentials.cert), key: list(credentials.key), minVersion: 'TLSv1.2' };
}

/** ALPN protocol ids that mean MQTT: the registered `mqtt`, and the one AWS IoT devices send. */
export const MQTT_ALPN_PROTOCOLS: readonly string[] = ['mqtt', 'x-amzn-mqtt-ca'];

export interface ListenerOptions {
  readonly tls: ServerCredentials;
  readonly host: string;
  readonly port: number;
  readonly handshakeTimeoutMs: number;
  readonly maxConnections: number;
  /** Serve only clients that negotiate one of these ALPN protocols. */
  readonly alpnProtocols?: readonly string[];
  /** For log lines: which listener this is. */
  readonly name?: string;
}

export class TlsListener {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #o: ListenerOptions;

  constructor(options: ListenerOptions, onConnection: (socket: TLSSocket) => void, log: Logger) {
    this.#o = options;
    const alpn = options.alpnProtocols;
    this.#server = createServer(
      {
        ...secureContextOptions(options.tls),
        handshakeTimeout: options.handshakeTimeoutMs,
        requestCert: true,
        rejectUnauthorized: false,
        ...(alpn ? { ALPNProtocols: [...alpn] } : {}),
      },
      alpn
        ? (socket) => {
            if (typeof socket.alpnProtocol === 'string' && alpn.includes(socket.alpnProtocol)) return onConnection(socket);
            log.debug({ remote: socket.remoteAddress, listener: options.name }, 'closed: no MQTT ALPN protocol negotiated');
            socket.destroy();
          }
        : onConnection,
    );
    this.#server.maxConnections = options.maxConnections;
    this.#server.on('connection', (socket: Socket) => {
      socket.setNoDelay(true);
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    this.#server.on('tlsClientError', (e, socket) => {
      log.debug({ err: e.message, remote: socket.remoteAddress, listener: options.name }, 'TLS handshake failed');
    });
    this.#server.on('error', (e) => log.error({ err: e, listener: options.name }, 'MQTT listener error'));
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

  /**
   * New server credentials for handshakes from now on; established connections keep theirs.
   * Throws (and keeps the old ones) when they do not load.
   */
  setCredentials(credentials: ServerCredentials): void {
    this.#server.setSecureContext(secureContextOptions(credentials));
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
