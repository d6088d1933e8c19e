/**
 * A client that speaks MQTT 3.1.1 or 5 packet by packet over TLS or plain TCP (the development
 * open listener): for tests that must control every byte or withhold an acknowledgement.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import mqttPacket, { type IConnackPacket, type IConnectPacket, type Packet } from 'mqtt-packet';

export type ProtocolVersion = 4 | 5;

export class RawClient {
  readonly packets: Packet[] = [];
  readonly bytes: Buffer[] = [];
  readonly closed: Promise<void>;
  readonly #parser: ReturnType<typeof mqttPacket.parser>;
  #wake: (() => void) | undefined;
  #isClosed = false;

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
    socket.on('data', (chunk: Buffer) => {
      this.bytes.push(chunk);
      this.#parser.parse(chunk);
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#isClosed = true;
        this.#wake?.();
        resolve();
      }),
    );
  }

  /** Over TLS, trusting `ca`; `clientCertificate` is presented in the handshake. */
  static open(port: number, ca: string, version: ProtocolVersion = 4, clientCertificate: { key?: string; cert?: string } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: [ca], ...clientCertificate }, () =>
        resolve(new RawClient(socket, version)),
      );
      socket.once('error', reject);
    });
  }

  /** Over plain TCP. */
  static plain(port: number, version: ProtocolVersion = 4): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect({ host: '127.0.0.1', port }, () => resolve(new RawClient(socket, version)));
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  send(packet: Packet | Buffer): void {
    this.socket.write(Buffer.isBuffer(packet) ? packet : mqttPacket.generate(packet, { protocolVersion: this.version }));
  }

  async connect(clientId: string, password: string | undefined, keepalive = 60, username = 'unused'): Promise<IConnackPacket> {
    this.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: this.version,
      clean: true,
      clientId,
      keepalive,
      username,
      ...(password !== undefined ? { password: Buffer.from(password) } : {}),
    });
    return (await this.next('connack')) as IConnackPacket;
  }

  /** CONNECT with these fields (clean session and keep-alive 60 unless given); resolves with the CONNACK. */
  async connectWith(fields: Partial<IConnectPacket> & { clientId: string }): Promise<IConnackPacket> {
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

  /** Resolves with how long the server took to close, failing after `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<number> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.closed,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`still open after ${timeoutMs} ms`)), timeoutMs))),
    ]).finally(() => clearTimeout(timer));
    return Date.now() - started;
  }

  end(): void {
    this.socket.destroy();
  }
}

