/**
 * One load-generator thread: device connections on node:tls with a single secure context (or,
 * given `websocket`, MQTT over secure WebSockets with `ws`), MQTT on raw mqtt-packet frames.
 * PUBLISH packets are generated once per device and copied into batches, so the generator
 * spends its time in TLS rather than in building packets.
 */
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, createSecureContext, type SecureContext } from 'node:tls';
import { parentPort, workerData } from 'node:worker_threads';
import mqttPacket from 'mqtt-packet';
import { createWebSocketStream, WebSocket } from 'ws';

export interface WorkerSetup {
  readonly port: number;
  readonly ca: string;
  /** Connect with MQTT over WebSockets (`wss://127.0.0.1:{port}{path}`, subprotocol `mqtt`) instead of plain TLS. */
  readonly websocket?: { readonly path: string };
}

export interface DeviceSpec {
  /** A CONNECT packet, generated (and its JWT signed) before any measured window. */
  readonly connect: Uint8Array;
  readonly topic: string;
  /** The device's own client certificate (PEM, leaf then intermediates) and key, for mutual TLS. */
  readonly clientCertificate?: { readonly chainPem: string; readonly keyPem: string };
}

export type WorkerCommand =
  | { type: 'connect'; devices: DeviceSpec[]; concurrency: number; timeoutMs: number }
  | { type: 'publish'; qos: 0 | 1; payloadBytes: number; rate: number; window: number }
  | { type: 'stop' }
  | { type: 'close' };

export type WorkerReply =
  | { type: 'connected'; startNs: bigint; endNs: bigint; ok: number; failed: number; firstError?: string; latenciesMs: number[] }
  | { type: 'publishing' }
  | { type: 'stopped'; sent: number; acked: number; lost: number }
  | { type: 'closed' }
  | { type: 'error'; message: string };

interface Device {
  /** The TLS socket, or the byte stream over a WebSocket's binary frames. */
  readonly socket: Duplex;
  readonly topic: string;
  /** Called for each PUBACK once publishing. */
  onAck: () => void;
}

const setup = workerData as WorkerSetup;
// One context for every connection of this thread: building one per connection costs more than the handshake.
const secureContext: SecureContext = createSecureContext({ ca: setup.ca, minVersion: 'TLSv1.2' });
const port = parentPort;
if (!port) throw new Error('load-worker runs as a worker thread');

let devices: Device[] = [];
let lost = 0;
const closedOnPurpose = new WeakSet<Duplex>();

/** A device's byte stream to the broker; `ready` fires when it may send CONNECT. */
function open(context: SecureContext): { socket: Duplex; ready: string } {
  const ws = setup.websocket;
  if (!ws) {
    const socket = tlsConnect({ host: '127.0.0.1', port: setup.port, servername: 'localhost', secureContext: context });
    socket.setNoDelay(true);
    return { socket, ready: 'secureConnect' };
  }
  // `secureContext` reaches tls.connect through https.request, though ws's types do not list it.
  const options = { secureContext: context, servername: 'localhost', perMessageDeflate: false } as ConstructorParameters<typeof WebSocket>[2];
  const client = new WebSocket(`wss://127.0.0.1:${setup.port}${ws.path}`, 'mqtt', options);
  const socket = createWebSocketStream(client);
  client.once('open', () => socket.emit('ws-open'));
  return { socket, ready: 'ws-open' };
}

function connectOne(spec: DeviceSpec, context: SecureContext, timeoutMs: number): Promise<Device> {
  return new Promise((resolve, reject) => {
    const { socket, ready } = open(context);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    let device: Device | undefined;
    const fail = (error: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error(`no CONNACK within ${timeoutMs} ms`)), timeoutMs);
    socket.once(ready, () => socket.write(spec.connect));
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    parser.on('error', (e) => fail(e));
    parser.on('packet', (packet) => {
      if (packet.cmd === 'puback') device?.onAck();
      else if (packet.cmd === 'connack' && !device) {
        clearTimeout(timer);
        if (packet.returnCode !== 0) return fail(new Error(`CONNACK return code ${packet.returnCode}`));
        device = { socket, topic: spec.topic, onAck: () => {} };
        socket.once('close', () => (closedOnPurpose.has(socket) ? undefined : lost++));
        resolve(device);
      }
    });
    socket.on('error', (e) => (device ? undefined : fail(e)));
    socket.once('close', () => (device ? undefined : fail(new Error('closed before CONNACK'))));
  });
}

async function connectAll(devicesToConnect: DeviceSpec[], concurrency: number, timeoutMs: number): Promise<WorkerReply> {
  const latenciesMs: number[] = [];
  let ok = 0;
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  // A device with its own certificate needs its own context; they are all built before the clock starts.
  const contexts = devicesToConnect.map((d) =>
    d.clientCertificate
      ? createSecureContext({ ca: setup.ca, minVersion: 'TLSv1.2', cert: d.clientCertificate.chainPem, key: d.clientCertificate.keyPem })
      : secureContext);
  const startNs = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, devicesToConnect.length) }, async () => {
      while (next < devicesToConnect.length) {
        const i = next++;
        const spec = devicesToConnect[i] as DeviceSpec;
        const t0 = process.hrtime.bigint();
        try {
          devices.push(await connectOne(spec, contexts[i] as SecureContext, timeoutMs));
          latenciesMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
          ok++;
        } catch (e) {
          failed++;
          firstError ??= (e as Error).message;
        }
      }
    }),
  );
  return { type: 'connected', startNs, endNs: process.hrtime.bigint(), ok, failed, firstError, latenciesMs };
}

/** A device's PUBLISH, generated once; batches are copies with the send time and packet id patched in. */
interface Template {
  readonly packet: Buffer;
  readonly payloadOffset: number;
}

function template(topic: string, qos: 0 | 1, payloadBytes: number): Template {
  const packet = mqttPacket.generate({
    cmd: 'publish', topic, payload: Buffer.alloc(payloadBytes), qos, messageId: qos ? 1 : undefined, dup: false, retain: false,
  });
  return { packet, payloadOffset: packet.length - payloadBytes };
}

function batch(t: Template, count: number, qos: 0 | 1, nextId: () => number): Buffer {
  const size = t.packet.length;
  const out = Buffer.allocUnsafe(size * count);
  const now = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const at = i * size;
    t.packet.copy(out, at);
    // The payload starts with the send time on the monotonic clock all threads share.
    out.writeBigUInt64LE(now, at + t.payloadOffset);
    if (qos === 1) out.writeUInt16BE(nextId(), at + t.payloadOffset - 2);
  }
  return out;
}

let stopPublishing: (() => { sent: number; acked: number }) | undefined;

/**
 * rate 0: as fast as the sockets take it (QoS 0: until TLS backpressure; QoS 1: `window`
 * unacknowledged per device). rate > 0: this thread's messages per second, spread evenly.
 */
function publish(qos: 0 | 1, payloadBytes: number, rate: number, window: number): void {
  let stopped = false;
  let sent = 0;
  let acked = 0;
  const timers: NodeJS.Timeout[] = [];
  const perDevice = rate / Math.max(1, devices.length);
  const started = process.hrtime.bigint();
  const BATCH = 32;

  for (const device of devices) {
    const t = template(device.topic, qos, payloadBytes);
    let inflight = 0;
    let deviceSent = 0;
    let packetId = 0;
    let blocked = false;
    const nextId = (): number => (packetId = (packetId % 65535) + 1);
    const write = (count: number): boolean => {
      if (count <= 0) return true;
      inflight += qos === 1 ? count : 0;
      deviceSent += count;
      sent += count;
      return device.socket.write(batch(t, count, qos, nextId));
    };
    const room = (): number => (qos === 1 ? window - inflight : Infinity);

    if (rate > 0) {
      // Paced: every tick sends what is due by now, as far as the window and backpressure allow.
      const tick = (): void => {
        if (stopped || blocked || device.socket.destroyed) return;
        const due = Math.floor((Number(process.hrtime.bigint() - started) / 1e9) * perDevice) - deviceSent;
        if (!write(Math.min(due, room()))) blocked = true;
      };
      device.socket.on('drain', () => {
        blocked = false;
      });
      device.onAck = () => {
        inflight--;
        acked++;
      };
      timers.push(setInterval(tick, 5));
      continue;
    }

    // Flat out: a few batches per turn of the event loop, then yield so every device gets its turn.
    const pump = (): void => {
      for (let n = 0; n < 4 && !stopped && !device.socket.destroyed; n++) {
        const count = Math.min(BATCH, room());
        if (count <= 0) return; // QoS 1 window full: PUBACKs restart it
        if (!write(count)) {
          blocked = true;
          return;
        }
      }
      if (!stopped) setImmediate(pump);
    };
    device.socket.on('drain', () => {
      blocked = false;
      pump();
    });
    device.onAck = () => {
      acked++;
      // Refill when half the window is free, so acknowledgements turn into batches, not single packets.
      if (--inflight === window >> 1 && !blocked && !stopped) pump();
    };
    pump();
  }

  stopPublishing = () => {
    stopped = true;
    for (const timer of timers) clearInterval(timer);
    return { sent, acked };
  };
}

port.on('message', (command: WorkerCommand) => {
  const reply = (r: WorkerReply): void => port.postMessage(r);
  switch (command.type) {
    case 'connect':
      connectAll(command.devices, command.concurrency, command.timeoutMs).then(reply, (e: Error) => reply({ type: 'error', message: e.message }));
      break;
    case 'publish':
      publish(command.qos, command.payloadBytes, command.rate, command.window);
      reply({ type: 'publishing' });
      break;
    case 'stop': {
      const counts = stopPublishing?.() ?? { sent: 0, acked: 0 };
      stopPublishing = undefined;
      for (const device of devices) device.onAck = () => {};
      reply({ type: 'stopped', ...counts, lost });
      break;
    }
    case 'close':
      for (const device of devices) {
        closedOnPurpose.add(device.socket);
        device.socket.destroy();
      }
      devices = [];
      lost = 0;
      reply({ type: 'closed' });
      break;
  }
});
