import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket from 'mqtt-packet';
import { FrameError, FrameReader as BaseReader, isValidHeaderByte } from './frame-reader.js';

/** A reader past the CONNECT, as most of these tests need. */
class FrameReader extends BaseReader {
  constructor(max: number) {
    super(max);
    this.connectOnly = false;
  }
}

const publish = (payloadBytes: number): Buffer =>
  mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.alloc(payloadBytes, 7), qos: 0, dup: false, retain: false });

function collect(reader: FrameReader, chunks: Buffer[]): Buffer[] {
  const frames: Buffer[] = [];
  for (const chunk of chunks) {
    const used = reader.push(chunk, (f) => {
      frames.push(Buffer.from(f));
      return true;
    });
    assert.equal(used, chunk.length);
  }
  return frames;
}

describe('FrameReader', () => {
  test('splits several packets out of one chunk, without copying the ones that fit', () => {
    const a = publish(10);
    const b = mqttPacket.generate({ cmd: 'pingreq' });
    const c = publish(300); // two-byte remaining length
    const chunk = Buffer.concat([a, b, c]);
    const seen: Buffer[] = [];
    new FrameReader(1024).push(chunk, (f) => (seen.push(f), true));
    assert.deepEqual(seen.map((f) => [...f]), [[...a], [...b], [...c]]);
    assert.equal(seen[0]?.buffer, chunk.buffer, 'frame shares the chunk memory');
  });

  test('reassembles packets split at every possible byte boundary, header included', () => {
    const packets = [publish(200), mqttPacket.generate({ cmd: 'pingreq' }), publish(0), publish(130)];
    const stream = Buffer.concat(packets);
    for (let size = 1; size <= 7; size++) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.subarray(i, i + size));
      const frames = collect(new FrameReader(1024), chunks);
      assert.deepEqual(frames.map((f) => [...f]), packets.map((p) => [...p]), `chunk size ${size}`);
    }
  });

  test('refuses an oversize packet from its header alone, before the body arrives', () => {
    const big = publish(5000);
    const reader = new FrameReader(4096);
    // Only the fixed header is delivered: the size is known and refused already.
    assert.throws(
      () => reader.push(big.subarray(0, 3), () => true),
      (e: unknown) => e instanceof FrameError && e.kind === 'oversize' && e.size === big.length,
    );
  });

  test('a packet exactly at the bound passes', () => {
    const p = publish(100);
    assert.equal(collect(new FrameReader(p.length), [p]).length, 1);
    assert.throws(() => new FrameReader(p.length - 1).push(p, () => true), FrameError);
  });

  test('refuses a remaining length longer than four bytes', () => {
    const bad = Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert.throws(
      () => new FrameReader(Number.MAX_SAFE_INTEGER).push(bad, () => true),
      (e: unknown) => e instanceof FrameError && e.kind === 'malformed',
    );
  });

  test('stops after a frame when asked and leaves the rest to be fed again', () => {
    const a = publish(1);
    const b = publish(2);
    const chunk = Buffer.concat([a, b]);
    const reader = new FrameReader(1024);
    const seen: Buffer[] = [];
    const used = reader.push(chunk, (f) => (seen.push(f), false));
    assert.equal(used, a.length);
    assert.equal(seen.length, 1);
    reader.push(chunk.subarray(used), (f) => (seen.push(f), true));
    assert.deepEqual([...(seen[1] as Buffer)], [...b]);
  });

  test('refuses an invalid fixed header at its first byte', () => {
    for (const byte of [0x00, 0x0f, 0xf0, 0x36, 0x80, 0x81, 0xa0, 0x61, 0x21, 0xc1]) {
      assert.equal(isValidHeaderByte(byte), false, byte.toString(16));
      assert.throws(() => new FrameReader(1024).push(Buffer.from([byte]), () => true), FrameError, byte.toString(16));
    }
    for (const byte of [0x10, 0x30, 0x3b, 0x40, 0x62, 0x82, 0xa2, 0xc0, 0xe0]) assert.equal(isValidHeaderByte(byte), true, byte.toString(16));
    // AUTH only on an MQTT 5 connection, and with its reserved flags zero.
    assert.equal(isValidHeaderByte(0xf0, true), true, 'AUTH on MQTT 5');
    for (const byte of [0xf1, 0xf2, 0xf8]) assert.equal(isValidHeaderByte(byte, true), false, byte.toString(16));
  });

  test('until told otherwise, only a CONNECT may start the stream', () => {
    const fresh = new BaseReader(1024);
    assert.throws(() => fresh.push(mqttPacket.generate({ cmd: 'pingreq' }), () => true), FrameError);
    const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'c', keepalive: 0 });
    assert.equal(collectWith(new BaseReader(1024), connect), 1);
  });
});

function collectWith(reader: BaseReader, chunk: Buffer): number {
  let n = 0;
  reader.push(chunk, () => (n++, true));
  return n;
}
