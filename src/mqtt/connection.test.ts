import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';
import pino from 'pino';
import { Connection, type ActiveState, type ConnectionHandlers } from './connection.js';
import { FlowGate } from './flow-gate.js';
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

  function handlers(packets: Packet[], flow?: FlowGate): ConnectionHandlers {
    return {
      packet: (_conn, packet) => void packets.push(packet),
      frameError: () => false,
      unparsable: () => {},
      closed: () => {},
      ...(flow ? { flow } : {}),
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

  test('a device PUBLISH waits while the flow gate is closed, and is handled once it opens', async () => {
    const { server, client } = await pair();
    const gate = new FlowGate();
    const packets: Packet[] = [];
    const conn = new Connection(server, resolveLimits(), handlers(packets, gate), log);
    conn.activate({ phase: 'device', session: {} } as unknown as ActiveState, 0);
    const congested = {};
    gate.hold(congested);
    const publish = (messageId: number): Buffer =>
      mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, messageId, dup: false, retain: false });
    client.write(Buffer.concat([publish(1), publish(2), mqttPacket.generate({ cmd: 'pingreq' })]));
    for (let i = 0; i < 50 && server.isPaused() === false; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(server.isPaused(), true, 'the socket is paused');
    assert.deepEqual(packets, [], 'nothing handled while the gate is closed');
    gate.release(congested);
    for (let i = 0; i < 50 && packets.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(
      (packets as Packet[]).map((p) => (p.cmd === 'publish' ? p.messageId : p.cmd)),
      [1, 2, 'pingreq'],
    );
    assert.equal(server.isPaused(), false, 'reading again');
    conn.close('done', { destroy: true });
    client.destroy();
  });

  test('a backlogged engine client closes the gate until it catches up', async () => {
    const { server, client } = await pair();
    const gate = new FlowGate();
    const conn = new Connection(server, resolveLimits(), handlers([], gate), log);
    conn.activate({ phase: 'client', session: {}, namespace: {} } as unknown as ActiveState, 0);
    conn.setBacklogged(true);
    assert.equal(gate.open, false);
    assert.equal(conn.congested, true);
    conn.setBacklogged(false);
    assert.equal(gate.open, true);
    conn.setBacklogged(true);
    conn.close('gone', { destroy: true });
    assert.equal(gate.open, true, 'a closed connection holds nothing');
    client.destroy();
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
