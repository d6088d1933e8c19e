/**
 * An MQTT client over plain TCP that sends and receives single packets (mqtt-packet codec), for
 * behaviour a client library hides: withheld acknowledgements, DUP flags, packet sizes, aliases,
 * abrupt closes and raw reason codes.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import mqttPacket, {
  type IConnackPacket,
  type IConnectPacket,
  type IDisconnectPacket,
  type IPublishPacket,
  type IPubrecPacket,
  type ISubackPacket,
  type ISubscribePacket,
  type IUnsubackPacket,
  type Packet,
  type PacketCmd,
  type QoS,
} from 'mqtt-packet';
import type { Target } from './target.js';

export type Version = 4 | 5;

/** How long a test waits for an expected packet before failing. */
export const PACKET_TIMEOUT_MS = 8000;

/** Fields of a PUBLISH, given from the caller's side. */
export type PublishFields = Omit<IPublishPacket, 'cmd' | 'qos' | 'dup' | 'retain' | 'payload'> & {
  qos?: QoS;
  dup?: boolean;
  retain?: boolean;
  payload?: Buffer | string;
};

export class PacketClient {
  /** Received packets not yet taken by `next`. */
  readonly packets: Packet[] = [];
  /** The size in bytes of every packet received, in order. */
  readonly sizes: number[] = [];
  readonly closed: Promise<void>;
  #isClosed = false;
  #wake = new Set<() => void>();
  #nextId = 1;
  readonly #parser;

  private constructor(
    readonly socket: Socket,
    readonly version: Version,
  ) {
    this.#parser = mqttPacket.parser({ protocolVersion: version });
    this.#parser.on('packet', (p: Packet) => {
      const length = p.length ?? 0;
      // Fixed header byte + the variable byte integer holding the remaining length.
      this.sizes.push(1 + (length < 128 ? 1 : length < 16384 ? 2 : length < 2097152 ? 3 : 4) + length);
      this.packets.push(p);
      this.#notify();
    });
    this.#parser.on('error', (e: Error) => {
      this.packets.push({ cmd: 'disconnect', reasonCode: -1, properties: { reasonString: `unparsable: ${e.message}` } } as Packet);
      socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.#parser.parse(chunk));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#isClosed = true;
        this.#notify();
        resolve();
      }),
    );
  }

  static open(target: Target, version: Version): Promise<PacketClient> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect({ host: target.host, port: target.port }, () => {
        socket.off('error', reject);
        resolve(new PacketClient(socket, version));
      });
      socket.setNoDelay(true);
      socket.once('error', reject);
    });
  }

  /** Opens a connection and sends CONNECT; resolves to the CONNACK. */
  static async connect(
    target: Target,
    version: Version,
    connect: Partial<Omit<IConnectPacket, 'cmd'>> & { clientId: string },
  ): Promise<{ client: PacketClient; connack: IConnackPacket }> {
    const client = await PacketClient.open(target, version);
    try {
      return { client, connack: await client.connect(connect) };
    } catch (e) {
      client.socket.destroy();
      throw e;
    }
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  #notify(): void {
    for (const wake of [...this.#wake]) wake();
  }

  packetId(): number {
    const id = this.#nextId;
    this.#nextId = (this.#nextId % 65535) + 1;
    return id;
  }

  send(packet: Packet | Buffer): void {
    if (this.#isClosed) return;
    this.socket.write(Buffer.isBuffer(packet) ? packet : mqttPacket.generate(packet, { protocolVersion: this.version }));
  }

  async connect(fields: Partial<Omit<IConnectPacket, 'cmd'>> & { clientId: string }): Promise<IConnackPacket> {
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: this.version, clean: true, keepalive: 60, ...fields });
    return (await this.next('connack')) as IConnackPacket;
  }

  /** Takes the first received packet of `cmd` that matches, waiting for it; rejects if the connection closes first. */
  async next(cmd: PacketCmd, match: (p: Packet) => boolean = () => true, timeoutMs = PACKET_TIMEOUT_MS): Promise<Packet> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.packets.findIndex((p) => p.cmd === cmd && match(p));
      if (i >= 0) return this.packets.splice(i, 1)[0] as Packet;
      if (this.#isClosed) throw new Error(`connection closed before a ${cmd} arrived (have: ${this.#summary()})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${cmd} within ${timeoutMs} ms (have: ${this.#summary()})`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.#wake.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#wake.add(wake);
      });
    }
  }

  /** Resolves when the next packet arrives or the connection closes, without taking anything. */
  changed(timeoutMs = PACKET_TIMEOUT_MS): Promise<void> {
    if (this.#isClosed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#wake.delete(wake);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#wake.delete(wake);
        reject(new Error(`nothing received within ${timeoutMs} ms (have: ${this.#summary()})`));
      }, timeoutMs);
      this.#wake.add(wake);
    });
  }

  /** Waits for the server to close the connection; resolves to the reason code of its DISCONNECT, if it sent one. */
  async closedByServer(timeoutMs = PACKET_TIMEOUT_MS): Promise<number | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#isClosed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the server did not close the connection within ${timeoutMs} ms (have: ${this.#summary()})`);
      await this.changed(left).catch(() => undefined);
    }
    return this.packets.find((p): p is IDisconnectPacket => p.cmd === 'disconnect')?.reasonCode;
  }

  /** The next PUBLISH on `topic`. */
  nextPublish(topic: string, timeoutMs?: number): Promise<IPublishPacket> {
    return this.next('publish', (p) => (p as IPublishPacket).topic === topic, timeoutMs) as Promise<IPublishPacket>;
  }

  /** Every PUBLISH received so far and not taken, optionally only those on `topic`. */
  publishes(topic?: string): IPublishPacket[] {
    return this.packets.filter((p): p is IPublishPacket => p.cmd === 'publish' && (topic === undefined || p.topic === topic));
  }

  #summary(): string {
    return this.packets.map((p) => p.cmd).join(', ') || 'nothing';
  }

  async subscribe(
    subscriptions: ISubscribePacket['subscriptions'],
    properties?: ISubscribePacket['properties'],
  ): Promise<ISubackPacket> {
    const messageId = this.packetId();
    this.send({ cmd: 'subscribe', messageId, subscriptions, ...(properties ? { properties } : {}) });
    return (await this.next('suback', (p) => p.messageId === messageId)) as ISubackPacket;
  }

  async unsubscribe(unsubscriptions: string[]): Promise<IUnsubackPacket> {
    const messageId = this.packetId();
    this.send({ cmd: 'unsubscribe', messageId, unsubscriptions });
    return (await this.next('unsuback', (p) => p.messageId === messageId)) as IUnsubackPacket;
  }

  /** Publishes and completes the QoS handshake; resolves to the final acknowledgement (PUBACK or PUBCOMP), if any. */
  async publish(fields: PublishFields): Promise<Packet | undefined> {
    const qos = fields.qos ?? 0;
    const messageId = qos > 0 ? (fields.messageId ?? this.packetId()) : undefined;
    const packet = {
      cmd: 'publish',
      dup: false,
      retain: false,
      payload: '',
      ...fields,
      qos,
      ...(messageId !== undefined ? { messageId } : {}),
    } as IPublishPacket;
    this.send(packet);
    if (qos === 0) return undefined;
    if (qos === 1) return this.next('puback', (p) => p.messageId === messageId);
    const pubrec = (await this.next('pubrec', (p) => p.messageId === messageId)) as IPubrecPacket;
    if ((pubrec.reasonCode ?? 0) >= 0x80) return pubrec; // refused: no PUBREL follows
    this.send({ cmd: 'pubrel', messageId: messageId as number });
    return this.next('pubcomp', (p) => p.messageId === messageId);
  }

  /** Acknowledges a received PUBLISH as the protocol asks (PUBACK, or PUBREC then PUBREL/PUBCOMP). */
  async ack(publish: IPublishPacket): Promise<void> {
    const messageId = publish.messageId as number;
    if (publish.qos === 1) this.send({ cmd: 'puback', messageId });
    if (publish.qos === 2) {
      this.send({ cmd: 'pubrec', messageId });
      await this.next('pubrel', (p) => p.messageId === messageId);
      this.send({ cmd: 'pubcomp', messageId });
    }
  }

  /** A PINGREQ/PINGRESP round trip: everything the server sent before answering has arrived. */
  async ping(): Promise<void> {
    this.send({ cmd: 'pingreq' });
    await this.next('pingresp');
  }

  /** Sends DISCONNECT and waits for the server to close the connection. */
  async disconnect(fields: { reasonCode?: number; properties?: Record<string, unknown> } = {}): Promise<void> {
    this.send({ cmd: 'disconnect', ...fields } as Packet);
    this.socket.end();
    await this.closed;
  }

  /** Drops the connection without DISCONNECT, as a device losing power would. */
  async abort(): Promise<void> {
    this.socket.destroy();
    await this.closed;
  }
}
