import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';
import pino from 'pino';
import { Connection, type ActiveState, type ConnectionHandlers } from './connection.js';
import { resolveLimits } from './limits.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const log = pino({ level: 'silent' });

/** A server-side socket and the client socket connected to it. */
interface Pair {
  readonly server: Socket;
  readonly client: Socket;
}

describe('Connection', () => {
  let listener: Server;
  let accepted: ((socket: Socket) => void) | undefined;

  before(async () => {
    listener = createServer((socket) => accepted?.(socket));
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  });
  after(() => new Promise<void>((resolve) => listener.close(() => resolve())));

  async function pair(): Promise<Pair> {
    const server = new Promise<Socket>((resolve) => (accepted = resolve));
    const address = listener.address();
    const client = connect(typeof address === 'object' && address ? address.port : 0, '127.0.0.1');
    return { server: await server, client };
  }

  function handlers(packets: Packet[]): ConnectionHandlers {
    return {
      packet: (_conn, packet) => void packets.push(packet),
      frameError: () => false,
      unparsable: () => {},
      closed: () => {},
    };
  }

  test('packets sent in one turn leave in one socket write', async () => {
    const { server, client } = await pair();
    const conn = new Connection(server, resolveLimits(), handlers([]), log);
    let writes = 0;
    const write = server.write.bind(server);
    server.write = ((chunk: Buffer) => (writes++, write(chunk))) as typeof server.write;
    const received: Buffer[] = [];
    client.on('data', (chunk: Buffer) => received.push(chunk));
    conn.sendPuback(1);
    conn.sendPuback(2);
    conn.send({ cmd: 'pingresp' });
    assert.equal(writes, 0, 'nothing written within the turn');
    assert.equal(conn.outboundBytes, 10, 'what waits counts as outbound');
    await turn();
    assert.equal(writes, 1);
    while (Buffer.concat(received).length < 10) await turn();
    assert.deepEqual(Buffer.concat(received), Buffer.from([0x40, 2, 0, 1, 0x40, 2, 0, 2, 0xd0, 0]));
    conn.close('done', { destroy: true });
    client.destroy();
  });

  test('closing flushes what was queued before the socket ends', async () => {
    const { server, client } = await pair();
    const conn = new Connection(server, resolveLimits(), handlers([]), log);
    const received: Buffer[] = [];
    client.on('data', (chunk: Buffer) => received.push(chunk));
    const ended = new Promise((resolve) => client.once('end', resolve));
    conn.send({ cmd: 'connack', returnCode: 5, sessionPresent: false });
    conn.close('refused');
    await ended;
    assert.deepEqual(Buffer.concat(received), Buffer.from([0x20, 2, 0, 5]));
    client.destroy();
  });

  const publish = (messageId: number): Buffer =>
    mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, messageId, dup: false, retain: false });
  const settle = async (done: () => boolean): Promise<void> => {
    for (let i = 0; i < 50 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  };
  const DEVICE = { phase: 'device', session: {} } as unknown as ActiveState;
  const CLIENT = { phase: 'client', session: {}, namespace: {} } as unknown as ActiveState;

  /** An engine client (the subscriber side) and a device (the publisher side). */
  async function subscriberAndPublisher(packets: Packet[]): Promise<{ sub: Connection; pub: Connection; sockets: Pair[] }> {
    const subPair = await pair();
    const pubPair = await pair();
    const sub = new Connection(subPair.server, resolveLimits(), handlers([]), log);
    sub.activate(CLIENT, 0);
    const pub = new Connection(pubPair.server, resolveLimits(), handlers(packets), log);
    pub.activate(DEVICE, 0);
    return { sub, pub, sockets: [subPair, pubPair] };
  }

  test('a publisher held by a congested engine client reads no PUBLISH until the client catches up', async () => {
    const packets: Packet[] = [];
    const { sub, pub, sockets } = await subscriberAndPublisher(packets);
    const [, { server, client }] = sockets as [Pair, Pair];
    sub.holdPublisher(pub);
    assert.equal(pub.heldBy, 0, 'nobody waits on a client that is not congested');
    sub.setBacklogged(true);
    sub.holdPublisher(pub);
    sub.holdPublisher(pub);
    assert.equal(pub.heldBy, 1);
    assert.equal(sub.gate?.waiting, 1, 'held once however often it is reached');
    client.write(Buffer.concat([publish(1), publish(2), mqttPacket.generate({ cmd: 'pingreq' })]));
    await settle(() => server.isPaused());
    assert.equal(server.isPaused(), true, 'the socket is paused');
    assert.deepEqual(packets, [], 'nothing handled while held');
    sub.setBacklogged(false);
    assert.equal(sub.gate, undefined, 'no gate once relieved');
    await settle(() => packets.length === 3);
    assert.deepEqual(
      (packets as Packet[]).map((p) => (p.cmd === 'publish' ? p.messageId : p.cmd)),
      [1, 2, 'pingreq'],
    );
    assert.equal(server.isPaused(), false, 'reading again');
    assert.equal(pub.heldBy, 0);
    for (const c of [sub, pub]) c.close('done', { destroy: true });
    for (const p of sockets) p.client.destroy();
  });

  test('a publisher waits on every congested client it reached; one that closes lets it go', async () => {
    const packets: Packet[] = [];
    const { sub, pub, sockets } = await subscriberAndPublisher(packets);
    const [, { client }] = sockets as [Pair, Pair];
    const otherPair = await pair();
    const other = new Connection(otherPair.server, resolveLimits(), handlers([]), log);
    other.activate(CLIENT, 0);
    sub.setBacklogged(true);
    other.setBacklogged(true);
    sub.holdPublisher(pub);
    other.holdPublisher(pub);
    assert.equal(pub.heldBy, 2);
    client.write(publish(1));
    sub.setBacklogged(false);
    await settle(() => pub.heldBy < 2);
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(pub.heldBy, 1);
    assert.deepEqual(packets, [], 'still held by the other client');
    other.close('gone', { destroy: true });
    await settle(() => packets.length === 1);
    assert.deepEqual(
      (packets as Packet[]).map((p) => p.cmd),
      ['publish'],
    );
    for (const c of [sub, pub]) c.close('done', { destroy: true });
    for (const p of [...sockets, otherPair]) p.client.destroy();
  });

  test('a held publisher is not timed out for keep-alive: it is not silent, it is not being read', async () => {
    const packets: Packet[] = [];
    const { sub, pub, sockets } = await subscriberAndPublisher(packets);
    const [, { client }] = sockets as [Pair, Pair];
    pub.activate(DEVICE, 1);
    sub.setBacklogged(true);
    sub.holdPublisher(pub);
    client.write(publish(1));
    // Past the 1.5 s keep-alive deadline while held.
    await new Promise((resolve) => setTimeout(resolve, 1800));
    assert.equal(pub.isOpen, true, 'still connected');
    sub.setBacklogged(false);
    await settle(() => packets.length === 1);
    assert.deepEqual(
      (packets as Packet[]).map((p) => p.cmd),
      ['publish'],
    );
    for (const c of [sub, pub]) c.close('done', { destroy: true });
    for (const p of sockets) p.client.destroy();
  });

  test('a publisher that closes is forgotten by the gates it waited on', async () => {
    const { sub, pub, sockets } = await subscriberAndPublisher([]);
    sub.setBacklogged(true);
    sub.holdPublisher(pub);
    const gate = sub.gate;
    assert.equal(gate?.waiting, 1);
    pub.close('gone', { destroy: true });
    assert.equal(gate.waiting, 0);
    assert.equal(pub.heldBy, 0);
    sub.close('done', { destroy: true });
    assert.equal(gate.isOpen, true, 'a closed client holds no one');
    for (const p of sockets) p.client.destroy();
  });

  test('no one waits on itself, a congested client is never held, and a device holds no one', async () => {
    const { sub, pub, sockets } = await subscriberAndPublisher([]);
    const otherPair = await pair();
    const other = new Connection(otherPair.server, resolveLimits(), handlers([]), log);
    other.activate(CLIENT, 0);
    sub.setBacklogged(true);
    sub.holdPublisher(sub);
    assert.equal(sub.heldBy, 0, 'not held by itself');
    other.setBacklogged(true);
    sub.holdPublisher(other);
    assert.equal(other.heldBy, 0, 'a congested client goes on reading its acknowledgements');
    pub.setBacklogged(true);
    assert.equal(pub.gate, undefined, 'a device that falls behind holds no publisher');
    for (const c of [sub, pub, other]) c.close('done', { destroy: true });
    for (const p of [...sockets, otherPair]) p.client.destroy();
  });

  test('endAfter ends the connection once its time has come, a later call replacing the earlier', async () => {
    const { server, client } = await pair();
    const conn = new Connection(server, resolveLimits(), handlers([]), log);
    conn.activate({ phase: 'device', session: {} } as unknown as ActiveState, 0);
    const calls: string[] = [];
    conn.endAfter(3_600_000, () => calls.push('first'));
    conn.endAfter(5, () => {
      calls.push('second');
      conn.close('token expired', { destroy: true });
    });
    for (let i = 0; i < 100 && calls.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(calls, ['second']);
    assert.equal(conn.isOpen, false);
    client.destroy();
  });
});
