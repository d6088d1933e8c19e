/**
 * The backend subscriber: one TLS connection, mqtt-packet's parser, PUBACKs written once per
 * chunk read. It counts every delivery and, while recording, the latency carried in the payload.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import mqttPacket from 'mqtt-packet';

export interface SubscriberOptions {
  readonly port: number;
  readonly ca: string;
  readonly clientId: string;
  readonly username?: string;
  readonly password?: string;
  readonly filter: string;
  readonly qos: 0 | 1;
}

/** Latencies kept per recording; beyond this the recording stops growing (percentiles stay valid). */
const MAX_SAMPLES = 4_000_000;

export class Subscriber {
  received = 0;
  #socket: TLSSocket | undefined;
  #recording = false;
  #samples = new Float64Array(MAX_SAMPLES);
  #sampleCount = 0;
  #closedUnexpectedly: string | undefined;

  static async open(options: SubscriberOptions, timeoutMs = 30_000): Promise<Subscriber> {
    const s = new Subscriber();
    await s.#connect(options, timeoutMs);
    return s;
  }

  /** Why the broker closed this subscriber, if it did. */
  get failure(): string | undefined {
    return this.#closedUnexpectedly;
  }

  record(on: boolean): void {
    if (on) this.#sampleCount = 0;
    this.#recording = on;
  }

  /** Sorted latencies (ms) of the last recording. */
  latencies(): Float64Array {
    return this.#samples.slice(0, this.#sampleCount).sort();
  }

  close(): void {
    this.#closedUnexpectedly ??= 'closed';
    this.#socket?.destroy();
  }

  #connect(o: SubscriberOptions, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: o.port, servername: 'localhost', ca: o.ca, minVersion: 'TLSv1.2' });
      this.#socket = socket;
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      let ready = false;
      const fail = (error: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(() => fail(new Error(`subscriber: no SUBACK within ${timeoutMs} ms`)), timeoutMs);
      let acks: number[] = [];
      socket.setNoDelay(true);
      socket.once('secureConnect', () => {
        socket.write(mqttPacket.generate({
          cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 600,
          clientId: o.clientId, username: o.username, password: o.password === undefined ? undefined : Buffer.from(o.password),
        }));
      });
      socket.on('data', (chunk: Buffer) => {
        parser.parse(chunk);
        if (acks.length === 0) return;
        const out = Buffer.allocUnsafe(acks.length * 4);
        for (let i = 0; i < acks.length; i++) {
          out[i * 4] = 0x40;
          out[i * 4 + 1] = 2;
          out.writeUInt16BE(acks[i] as number, i * 4 + 2);
        }
        acks = [];
        socket.write(out);
      });
      parser.on('error', (e) => fail(e));
      parser.on('packet', (packet) => {
        if (packet.cmd === 'publish') {
          this.received++;
          if (packet.qos === 1 && packet.messageId !== undefined) acks.push(packet.messageId);
          if (this.#recording && this.#sampleCount < MAX_SAMPLES && Buffer.isBuffer(packet.payload) && packet.payload.length >= 8) {
            this.#samples[this.#sampleCount++] = Number(process.hrtime.bigint() - packet.payload.readBigUInt64LE(0)) / 1e6;
          }
        } else if (packet.cmd === 'connack') {
          if (packet.returnCode !== 0) return fail(new Error(`subscriber: CONNACK return code ${packet.returnCode}`));
          socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: o.filter, qos: o.qos }] }));
        } else if (packet.cmd === 'suback') {
          clearTimeout(timer);
          if (packet.granted[0] !== o.qos) return fail(new Error(`subscriber: SUBACK granted ${String(packet.granted[0])}, asked ${o.qos}`));
          ready = true;
          resolve();
        }
      });
      socket.on('error', (e) => (ready ? (this.#closedUnexpectedly ??= e.message) : fail(e)));
      socket.once('close', () => (ready ? (this.#closedUnexpectedly ??= 'closed by the broker') : fail(new Error('subscriber: closed before SUBACK'))));
    });
  }
}
