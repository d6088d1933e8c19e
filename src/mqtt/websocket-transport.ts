/**
 * A WebSocket seen as the byte stream a connection reads and writes (MQTT 5 §6, MQTT 3.1.1 §6):
 * every binary message's bytes go on the stream as they come, since packets need not line up with
 * frames (the connection's frame reader splits them), and every write goes out as one binary
 * message. A text message breaks MQTT-6.0.0-1: the WebSocket is closed (1003, unsupported data).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { WebSocket, type RawData } from 'ws';
import type { Transport } from './transport.js';

/** WebSocket close code 1003: a kind of data the endpoint cannot accept (RFC 6455 §7.4.1). */
export const CLOSE_UNSUPPORTED_DATA = 1003;
export const TEXT_FRAME_REASON = 'MQTT over WebSockets takes binary frames only';

const NORMAL_CLOSURE = 1000;

const bytesOf = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);

export class WebSocketTransport extends EventEmitter implements Transport {
  readonly kind = 'websocket';
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly certificateSource: TLSSocket | undefined;
  readonly #ws: WebSocket;

  /**
   * `socket` carries the WebSocket; `certificateSource` is that same socket when its client
   * certificate may authenticate the peer, else undefined.
   */
  constructor(ws: WebSocket, socket: Socket, certificateSource: TLSSocket | undefined) {
    super();
    this.#ws = ws;
    // Read now: a socket forgets its peer once closed, and lines are logged after that.
    this.remoteAddress = socket.remoteAddress;
    this.remotePort = socket.remotePort;
    this.certificateSource = certificateSource;
    ws.on('message', (data: RawData, isBinary: boolean) => this.#message(data, isBinary));
    // ws has closed the WebSocket already when it reports a protocol error (say, a frame over maxPayload).
    ws.on('error', (e: Error) => this.#report(e));
    ws.once('close', () => this.emit('close'));
    // With permessage-deflate off, what ws has not written yet waits in the socket.
    socket.on('drain', () => this.emit('drain'));
  }

  get writable(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  get writableLength(): number {
    return this.#ws.bufferedAmount;
  }

  write(bytes: Buffer): boolean {
    this.#ws.send(bytes);
    return true;
  }

  /** The closing handshake, after whatever was written; ws cuts it off after its close timeout. */
  end(): void {
    this.#ws.close(NORMAL_CLOSURE);
  }

  destroy(): void {
    this.#ws.terminate();
  }

  pause(): void {
    this.#ws.pause();
  }

  resume(): void {
    this.#ws.resume();
  }

  #message(data: RawData, isBinary: boolean): void {
    // Messages that were on their way when the closing handshake began are not read.
    if (this.#ws.readyState !== WebSocket.OPEN) return;
    if (!isBinary) {
      this.#report(new Error(TEXT_FRAME_REASON));
      this.#ws.close(CLOSE_UNSUPPORTED_DATA, TEXT_FRAME_REASON);
      return;
    }
    const bytes = bytesOf(data);
    if (bytes.length > 0) this.emit('data', bytes);
  }

  /** An 'error' event without a listener would throw. */
  #report(e: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }
}
