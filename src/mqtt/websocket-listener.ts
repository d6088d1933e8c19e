/**
 * MQTT over secure WebSockets (MQTT 5 §6, MQTT 3.1.1 §6) on an HTTPS server the broker does not
 * own (the device HTTPS listener): it takes the server's WebSocket upgrades on one path and hands
 * each WebSocket, as a byte stream, to the broker like a TLS socket. What it refuses, before the
 * upgrade, with an HTTP status and the socket closed:
 * - any other path (404): the path is this listener's only;
 * - a client that does not offer the subprotocol `mqtt` (400). §6 makes it the only one for MQTT
 *   3.1.1 and 5; `mqttv3.1` names MQTT 3.1, which the broker does not speak;
 * - any connection over the broker's bounds, or while it shuts down (503).
 * Messages are bounded (`maxPayload`: one packet at the broker's largest, with room for a few
 * small ones beside it), without compression (a small message must not inflate into a large one).
 *
 * A request with an `Origin` header comes from a browser, and a browser may present a client
 * certificate it holds on behalf of any page that opens a WebSocket: such a certificate is
 * ambient, so it never authenticates a WebSocket opened by a page (a JWT or an API key does).
 */
import type { IncomingMessage } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { WebSocketServer, type ServerOptions, type WebSocket } from 'ws';
import type { Connection } from './connection.js';
import type { BrokerLimits } from './limits.js';
import { REASON_V5 } from './reason-codes.js';
import { WebSocketTransport } from './websocket-transport.js';

/** The WebSocket subprotocol of MQTT 3.1.1 and 5 (MQTT-6.0.0-3, MQTT-6.0.0-4). */
export const MQTT_SUBPROTOCOL = 'mqtt';
export const DEFAULT_WEBSOCKET_PATH = '/mqtt';

/** Room in one WebSocket message beside the largest packet: clients may batch small packets into one. */
const MESSAGE_HEADROOM_BYTES = 64 * 1024;

/** The largest WebSocket message taken: the largest packet the broker takes, plus headroom. */
export const maxMessageBytes = (limits: BrokerLimits): number =>
  Math.max(limits.maxPacketBytes, limits.maxConnectPacketBytes) + MESSAGE_HEADROOM_BYTES;

export interface WebSocketListenerOptions {
  /** The one path served. */
  readonly path: string;
  /** The largest WebSocket message, in bytes; a larger one closes the WebSocket (1009). */
  readonly maxPayload: number;
  /** How long a closing handshake may take before the socket is cut off. */
  readonly closeTimeoutMs: number;
  /** Whether one more connection may open now: under the broker's bounds and not shutting down. */
  readonly admits: () => boolean;
}

/** The path of a request target, without its query (which is never logged: it may hold a token). */
const pathOf = (url: string | undefined): string => {
  const target = url ?? '';
  const query = target.indexOf('?');
  return query < 0 ? target : target.slice(0, query);
};

/** Whether a `Sec-WebSocket-Protocol` header (repeated headers arrive joined by commas) offers `mqtt`. */
const offersMqtt = (header: string | undefined): boolean =>
  header !== undefined && header.split(',').some((protocol) => protocol.trim() === MQTT_SUBPROTOCOL);

const STATUS_TEXT: Readonly<Record<number, string>> = { 400: 'Bad Request', 404: 'Not Found', 503: 'Service Unavailable' };

/** An HTTP response to an upgrade request that is not taken, then the socket is closed. */
function refuseUpgrade(socket: Duplex, status: 400 | 404 | 503, message: string): void {
  socket.on('error', () => undefined);
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`,
  );
}

export class WebSocketListener {
  readonly #server: HttpsServer;
  readonly #o: WebSocketListenerOptions;
  readonly #wss: WebSocketServer;
  readonly #log: Logger;
  readonly #onConnection: (transport: WebSocketTransport) => Connection | undefined;
  readonly #connections = new Set<Connection>();
  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.#upgrade(req, socket, head);
  #closing: Promise<void> | undefined;

  /** `onConnection` makes the broker's connection of a WebSocket, or closes it and returns undefined. */
  constructor(
    server: HttpsServer,
    options: WebSocketListenerOptions,
    onConnection: (transport: WebSocketTransport) => Connection | undefined,
    log: Logger,
  ) {
    this.#server = server;
    this.#o = options;
    this.#log = log;
    this.#onConnection = onConnection;
    // ws takes closeTimeout; @types/ws does not list it.
    const wsOptions: ServerOptions & { readonly closeTimeout: number } = {
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: options.maxPayload,
      closeTimeout: options.closeTimeoutMs,
      handleProtocols: (protocols) => (protocols.has(MQTT_SUBPROTOCOL) ? MQTT_SUBPROTOCOL : false),
    };
    this.#wss = new WebSocketServer(wsOptions);
    server.on('upgrade', this.#onUpgrade);
  }

  /** Open connections that came in over WebSockets. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * Stops taking upgrades and ends every connection it took (MQTT 5 clients get DISCONNECT 0x8B);
   * resolves once their sockets are closed. The HTTPS server itself goes on.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#server.off('upgrade', this.#onUpgrade);
    this.#wss.close();
    const closing = [...this.#connections].map((conn) => {
      conn.close('server shutting down', { code: REASON_V5.serverShuttingDown });
      return conn.closed;
    });
    await Promise.all(closing);
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const remote = req.socket.remoteAddress;
    const path = pathOf(req.url);
    if (path !== this.#o.path) {
      this.#log.debug({ remote, path: path.slice(0, 100) }, 'WebSocket upgrade refused: not the MQTT path');
      refuseUpgrade(socket, 404, 'Not found');
      return;
    }
    if (!offersMqtt(req.headers['sec-websocket-protocol'])) {
      this.#log.debug({ remote }, 'WebSocket upgrade refused: the subprotocol mqtt was not offered');
      refuseUpgrade(socket, 400, `MQTT over WebSockets needs the WebSocket subprotocol "${MQTT_SUBPROTOCOL}"`);
      return;
    }
    if (this.#closing || !this.#o.admits()) {
      this.#log.debug({ remote }, 'WebSocket upgrade refused: no more connections taken');
      refuseUpgrade(socket, 503, 'Not taking connections');
      return;
    }
    // Anything else wrong with the request (method, headers, version), ws refuses with a 4xx.
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#opened(ws, req));
  }

  #opened(ws: WebSocket, req: IncomingMessage): void {
    const socket = req.socket as Socket;
    const fromBrowser = req.headers.origin !== undefined || req.headers['sec-websocket-origin'] !== undefined;
    const certificateSource = socket instanceof TLSSocket && !fromBrowser ? socket : undefined;
    const conn = this.#onConnection(new WebSocketTransport(ws, socket, certificateSource));
    if (conn === undefined) return;
    this.#connections.add(conn);
    void conn.closed.then(() => this.#connections.delete(conn));
  }
}
