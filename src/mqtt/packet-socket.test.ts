/**
 * A client that speaks MQTT 3.1.1 or 5 packet by packet over plain TCP (the open listener) or TLS,
 * for broker tests that must control every packet or withhold an acknowledgement. It holds no tests.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import mqttPacket, { type IConnackPacket, type IConnectPacket, type Packet } from 'mqtt-packet';

export type ProtocolVersion = 4 | 5;

export class PacketSocket {
  readonly packets: Packet[] = [];
  readonly closed: Promise<void>;
  #isClosed = false;
  #wake: (() => void) | undefined;
  readonly #parser: ReturnType<typeof mqttPacket.parser>;

  private constructor(
    readonly socket: Socket,
    readonly version: ProtocolVersion,
  ) {
    this.#parser = mqttPacket.parser({ protocolVersion: version });
    this.#parser.on('packet', (p: Packet) => {
      this.packets.push(p);
      this.#wake?.();
    });
    this.#parser.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.#parser.parse(chunk));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#isClosed = true;
        this.#wake?.();
        resolve();
      }),
    );
  }

  static plain(port: number, version: ProtocolVersion): Promise<PacketSocket> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect({ host: '127.0.0.1', port }, () => resolve(new PacketSocket(socket, version)));
      socket.once('error', reject);
    });
  }

  static tls(port: number, ca: string, version: ProtocolVersion): Promise<PacketSocket> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: [ca] }, () => resolve(new PacketSocket(socket, version)));
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  send(packet: Packet): void {
    this.socket.write(mqttPacket.generate(packet, { protocolVersion: this.version }));
  }

  /** CONNECT with these fields (clean session and keep-alive 60 unless given); resolves with the CONNACK. */
  async connect(fields: Partial<IConnectPacket> & { clientId: string }): Promise<IConnackPacket> {
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: this.version, clean: true, keepalive: 60, ...fields });
    return (await this.next('connack')) as IConnackPacket;
  }

  /** Takes the first received packet of `cmd` (waiting for it); rejects if the connection closes first. */
  async next(cmd: Packet['cmd'], timeoutMs = 5000): Promise<Packet> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.packets.findIndex((p) => p.cmd === cmd);
      if (i >= 0) return this.packets.splice(i, 1)[0] as Packet;
      if (this.#isClosed) throw new Error(`closed before a ${cmd} arrived`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${cmd} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Waits for the server to close the connection. */
  async closedWithin(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.closed,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`still open after ${timeoutMs} ms`)), timeoutMs))),
    ]).finally(() => clearTimeout(timer));
  }

  end(): void {
    this.socket.destroy();
  }
}
