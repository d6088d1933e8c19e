/**
 * A stand-in for Connection in the session engine's unit tests: it parses what the engine writes
 * back into packets, and records how it was closed. It holds no tests.
 */
import mqttPacket, { type Packet } from 'mqtt-packet';
import type { CloseOptions, Connection } from './connection.js';

export class FakeConnection {
  readonly packets: Packet[] = [];
  isOpen = true;
  congested = false;
  closedWith: { readonly reason: string; readonly code: number | undefined } | undefined;
  /** Called on close, as the broker's closed handler would be. */
  onClose: (() => void) | undefined;
  /** The largest packet the peer accepts; larger writes are refused as Connection does. */
  maxPacketBytes = Infinity;
  readonly #parser: ReturnType<typeof mqttPacket.parser>;

  constructor(readonly isV5 = false) {
    this.#parser = mqttPacket.parser({ protocolVersion: isV5 ? 5 : 4 });
    this.#parser.on('packet', (p: Packet) => this.packets.push(p));
  }

  get asConnection(): Connection {
    return this as unknown as Connection;
  }

  write(bytes: Buffer): boolean {
    if (!this.isOpen || bytes.length > this.maxPacketBytes) return false;
    this.#parser.parse(bytes);
    return true;
  }

  send(packet: Packet): void {
    if (this.isOpen) this.write(mqttPacket.generate(packet, { protocolVersion: this.isV5 ? 5 : 4 }));
  }

  close(reason: string, options: CloseOptions = {}): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.closedWith = { reason, code: options.code };
    this.onClose?.();
  }

  /** What the session last said about its queue's backlog (see Connection.setBacklogged). */
  backlogged = false;

  setBacklogged(backlogged: boolean): void {
    this.backlogged = backlogged;
  }

  /** Publishers the session asked this connection to hold back (see Connection.holdPublisher). */
  readonly heldPublishers: Connection[] = [];
  /** What holdPublisher answers: whether the publisher now waits. */
  holdsPublishers = true;

  holdPublisher(publisher: Connection): boolean {
    this.heldPublishers.push(publisher);
    return this.holdsPublishers;
  }

  hasRoomFor(): boolean {
    return true;
  }

  /** Removes and returns the packets received so far. */
  take(): Packet[] {
    return this.packets.splice(0);
  }
}
