/**
 * The development open listener: plaintext MQTT for the open namespace, for conformance testing
 * only. It binds to loopback or not at all: anonymous clients with no TLS must never be reachable
 * from another machine.
 */
import { createServer, isIPv4, isIPv6, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { invalidArgument } from '../domain/errors.js';

/** Whether `host` names only this machine: 127.0.0.0/8, ::1 (or its IPv4-mapped forms), localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (!isIPv6(h)) return false;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const mapped = /^(?:0:0:0:0:0:|::)ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped !== null && isIPv4(mapped[1] as string) && (mapped[1] as string).startsWith('127.');
}

/** Throws unless `host` is loopback. */
export function assertLoopback(host: string): void {
  if (!isLoopbackHost(host)) {
    throw invalidArgument(`the development open listener may only bind to loopback (127.0.0.0/8, ::1, localhost), not '${host}'`);
  }
}

export class OpenListener {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(
    private readonly host: string,
    private readonly port: number,
    maxConnections: number,
    onConnection: (socket: Socket) => void,
    log: Logger,
  ) {
    assertLoopback(host);
    this.#server = createServer((socket) => {
      socket.setNoDelay(true);
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      onConnection(socket);
    });
    this.#server.maxConnections = maxConnections;
    this.#server.on('error', (e) => log.error({ err: e }, 'open listener error'));
  }

  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.#server.once('error', onError);
      this.#server.listen(this.port, this.host, () => {
        this.#server.off('error', onError);
        const address = this.#server.address();
        // `localhost` is resolved by the system: make sure it really bound to loopback.
        if (typeof address !== 'object' || address === null || !isLoopbackHost(address.address)) {
          const bound = typeof address === 'object' && address ? address.address : String(address);
          this.#server.close();
          reject(invalidArgument(`the development open listener bound to '${bound}', which is not loopback; it was closed`));
          return;
        }
        resolve(address.port);
      });
    });
  }

  /** Stops accepting; resolves once every socket it accepted is closed. */
  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  destroyAll(): void {
    for (const socket of this.#sockets) socket.destroy();
  }
}
