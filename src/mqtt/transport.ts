/**
 * What a connection reads MQTT bytes from and writes them to: the part of a `net.Socket` it uses.
 * A socket is one as it is (TLS, or plain TCP on the development open listener); a WebSocket's
 * binary messages are adapted to it (websocket-transport).
 */
import type { TLSSocket } from 'node:tls';

export interface Transport {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  /** Whether a write still goes out. */
  readonly writable: boolean;
  /** Bytes written and not yet handed to the operating system. */
  readonly writableLength: number;
  /**
   * For a transport carried inside a TLS connection that is not itself the transport (a WebSocket),
   * the TLS connection whose client certificate authenticates the peer; undefined when none may.
   */
  readonly certificateSource?: TLSSocket | undefined;
  /** Set by transports that are not a socket, for the log and the audit (a socket is TLS or plain TCP). */
  readonly kind?: 'websocket';
  write(bytes: Buffer): unknown;
  /** Flushes what was written, then closes. */
  end(): unknown;
  /** Closes at once, dropping what was not sent. */
  destroy(): unknown;
  pause(): unknown;
  resume(): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  /** Written bytes went out: `writableLength` fell. */
  on(event: 'drain', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** Emitted once, when the transport is fully closed. */
  on(event: 'close', listener: () => void): unknown;
  once(event: 'close', listener: () => void): unknown;
}
