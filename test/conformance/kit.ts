/** Shared pieces of the conformance suite: unique names, mqtt.js clients and a message inbox. */
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { PACKET_TIMEOUT_MS, PacketClient, type Version } from './packet-client.js';
import type { Target } from './target.js';

const RUN = randomBytes(4).toString('hex');
let counter = 0;

/** A client id and topic prefix no other test (or run) uses, so tests stay independent. */
export function unique(name: string): { id: (suffix: string) => string; topic: (suffix: string) => string } {
  const base = `${name}-${RUN}-${++counter}`;
  return { id: (suffix) => `kwc-${base}-${suffix}`, topic: (suffix) => `conformance/${base}/${suffix}` };
}

export const versionName = (v: Version): string => (v === 5 ? 'MQTT 5' : 'MQTT 3.1.1');

/** An mqtt.js client that does not reconnect on its own. */
export async function connectClient(target: Target, version: Version, options: IClientOptions & { clientId: string }): Promise<MqttClient> {
  return mqtt.connectAsync(target.url, {
    protocolVersion: version,
    reconnectPeriod: 0,
    connectTimeout: PACKET_TIMEOUT_MS,
    ...options,
  });
}

export interface Received {
  readonly topic: string;
  readonly payload: string;
  readonly packet: IPublishPacket;
}

/** Collects what an mqtt.js client receives and lets a test wait for it. */
export class Inbox {
  readonly messages: Received[] = [];
  #waiters = new Set<() => void>();

  constructor(client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload: payload.toString(), packet });
      for (const w of [...this.#waiters]) w();
    });
  }

  on(topic: string): Received[] {
    return this.messages.filter((m) => m.topic === topic);
  }

  /** Waits until `count` messages on `topic` (any topic when undefined) have arrived. */
  async until(topic: string | undefined, count = 1, timeoutMs = PACKET_TIMEOUT_MS): Promise<Received[]> {
    const matching = (): Received[] => (topic === undefined ? this.messages : this.on(topic));
    const deadline = Date.now() + timeoutMs;
    while (matching().length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${matching().length} of ${count} messages on ${topic ?? 'any topic'} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#waiters.add(wake);
      });
    }
    return matching();
  }
}

/** Ends a session the test left on the server: connects clean with no session expiry and leaves. */
export async function endSession(target: Target, version: Version, clientId: string): Promise<void> {
  const { client } = await PacketClient.connect(target, version, {
    clientId,
    clean: true,
    ...(version === 5 ? { properties: { sessionExpiryInterval: 0 } } : {}),
  });
  await client.disconnect();
}

/** Clears retained messages the test set (an empty retained payload removes them). */
export async function clearRetained(target: Target, version: Version, topics: readonly string[]): Promise<void> {
  const { client } = await PacketClient.connect(target, version, { clientId: `kwc-cleanup-${RUN}-${++counter}` });
  for (const topic of topics) await client.publish({ topic, payload: Buffer.alloc(0), retain: true, qos: 1 });
  await client.disconnect();
}

/** Closes mqtt.js clients, ignoring ones already gone. */
export async function endAll(...clients: Array<MqttClient | undefined>): Promise<void> {
  await Promise.all(clients.map((c) => (c && c.connected ? c.endAsync() : c?.endAsync(true))));
}

/** Waits out a protocol interval under test (session expiry, will delay): there is no event to await. */
export function elapse(seconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

/** What one test opened and must undo, whether it passes or fails. */
export class Scope {
  readonly #undo: Array<() => Promise<void>> = [];

  constructor(
    readonly target: Target,
    /** The running test, for diagnostics and skips. */
    readonly t: TestContext,
  ) {}

  defer(undo: () => Promise<void>): void {
    this.#undo.push(undo);
  }

  /** A raw client (closed at the end of the test) and its CONNACK. */
  async raw(
    version: Version,
    connect: Parameters<typeof PacketClient.connect>[2],
  ): Promise<{ client: PacketClient; connack: Awaited<ReturnType<PacketClient['connect']>> }> {
    const opened = await PacketClient.connect(this.target, version, connect);
    this.defer(() => opened.client.abort());
    return opened;
  }

  /** An mqtt.js client (closed at the end of the test) with its inbox. */
  async mqtt(version: Version, options: IClientOptions & { clientId: string }): Promise<{ client: MqttClient; inbox: Inbox }> {
    const client = await connectClient(this.target, version, options);
    const inbox = new Inbox(client);
    this.defer(() => endAll(client));
    return { client, inbox };
  }

  /** Removes, at the end of the test, the session of `clientId`. */
  endSessionLater(version: Version, clientId: string): void {
    this.defer(() => endSession(this.target, version, clientId));
  }

  /** Clears, at the end of the test, retained messages on `topics`. */
  clearRetainedLater(version: Version, topics: readonly string[]): void {
    this.defer(() => clearRetained(this.target, version, topics));
  }

  async close(): Promise<void> {
    for (const undo of this.#undo.reverse()) {
      try {
        await undo();
      } catch {
        /* best effort: the test's own outcome matters more */
      }
    }
  }
}

/** Wraps a test body so that everything it opened is undone afterwards. */
export function scoped(getTarget: () => Target, body: (s: Scope) => Promise<void>): (t: TestContext) => Promise<void> {
  return async (t) => {
    const scope = new Scope(getTarget(), t);
    try {
      await body(scope);
    } finally {
      await scope.close();
    }
  };
}
