/**
 * Splits a connection's byte stream into MQTT control packets by their fixed header, and refuses
 * a packet whose announced size is over the bound before a single byte of its body is buffered.
 * mqtt-packet's parser buffers whatever it is fed, so it is only ever fed complete frames.
 */

export type FrameErrorKind = 'oversize' | 'malformed';

/** The peer broke framing: the connection cannot continue. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly kind: FrameErrorKind,
    message: string,
    /** The announced packet size, for `oversize`. */
    readonly size = 0,
  ) {
    super(message);
  }
}

/** One type byte and at most four bytes of remaining length (MQTT 3.1.1 §2.2.3). */
const MAX_HEADER_BYTES = 5;
const CONNECT_HEADER_BYTE = 0x10;

/**
 * Whether a fixed header's first byte is well-formed (MQTT 3.1.1 §2.2.1, §2.2.2): a packet type
 * from 1 to 14, or AUTH (15) once the connection speaks MQTT 5 (`allowAuth`, MQTT 5 §2.1.2), with
 * the flags that type requires; PUBLISH may not have both QoS bits set.
 * Checked on the first byte so a stream of garbage is refused before anything is buffered.
 */
export function isValidHeaderByte(byte: number, allowAuth = false): boolean {
  const type = byte >> 4;
  const flags = byte & 0x0f;
  switch (type) {
    case 15: // AUTH: MQTT 5 only
      return allowAuth && flags === 0;
    case 3: // PUBLISH: DUP, QoS, RETAIN
      return (flags & 0x06) !== 0x06;
    case 6: // PUBREL
    case 8: // SUBSCRIBE
    case 10: // UNSUBSCRIBE
      return flags === 0x02;
    case 0:
      return false;
    default:
      return flags === 0;
  }
}

export class FrameReader {
  /** The largest packet accepted, fixed header included. Tightened or relaxed as the session evolves. */
  maxFrameBytes: number;
  /**
   * While set, only a CONNECT may start a packet: the first packet of a connection must be one
   * (MQTT 3.1.1 §3.1), so anything else is refused at its first byte.
   */
  connectOnly = true;
  /** MQTT 5 connections may send AUTH (packet type 15, reserved in MQTT 3.1.1). */
  allowAuth = false;

  /**
   * The bytes of a fixed header split across chunks, packed into a number (at most five bytes, well
   * within 2^53): a Buffer per connection would cost far more memory than the rare split saves.
   */
  #header = 0;
  #headerLength = 0;
  /** Pieces of a packet that spans chunks, and how many of its bytes are still to come. */
  #parts: Buffer[] | undefined;
  #missing = 0;
  #frameSize = 0;

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /**
   * Feeds one chunk. Calls `onFrame` for every complete packet, in order, and stops right after a
   * packet for which it returns false. Returns how many bytes of the chunk were consumed: the rest
   * is the caller's to feed again later. Throws FrameError when the stream cannot be framed.
   */
  push<T>(chunk: Buffer, onFrame: (this: T, frame: Buffer) => boolean, thisArg?: T): number {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.#missing > 0) {
        const take = Math.min(this.#missing, end - pos);
        const parts = (this.#parts ??= []);
        parts.push(chunk.subarray(pos, pos + take));
        pos += take;
        this.#missing -= take;
        if (this.#missing > 0) return pos;
        const frame = Buffer.concat(parts, this.#frameSize);
        this.#parts = undefined;
        if (!onFrame.call(thisArg as T, frame)) return pos;
        continue;
      }

      // Negative when the header began in an earlier chunk.
      const headerStart = pos - this.#headerLength;
      let remaining = -1;
      while (pos < end) {
        const byte = chunk[pos++] as number;
        if (this.#headerLength === 0) {
          if (this.connectOnly ? byte !== CONNECT_HEADER_BYTE : !isValidHeaderByte(byte, this.allowAuth)) {
            throw new FrameError('malformed', `invalid fixed header 0x${byte.toString(16).padStart(2, '0')}`);
          }
        }
        this.#header += byte * 256 ** this.#headerLength++;
        if (this.#headerLength >= 2 && (byte & 0x80) === 0) {
          remaining = this.#decodeRemainingLength();
          break;
        }
        if (this.#headerLength === MAX_HEADER_BYTES) {
          throw new FrameError('malformed', 'remaining length is longer than four bytes');
        }
      }
      if (remaining < 0) return pos;

      const headerLength = this.#headerLength;
      const header = this.#header;
      this.#headerLength = 0;
      this.#header = 0;
      const size = headerLength + remaining;
      if (size > this.maxFrameBytes) {
        throw new FrameError('oversize', `packet of ${size} bytes exceeds the maximum of ${this.maxFrameBytes} bytes`, size);
      }

      if (headerStart >= 0) {
        if (end - headerStart >= size) {
          // The whole packet is in this chunk: hand it on without copying.
          pos = headerStart + size;
          if (!onFrame.call(thisArg as T, chunk.subarray(headerStart, pos))) return pos;
          continue;
        }
        this.#parts = [chunk.subarray(headerStart, pos)];
      } else {
        const head = Buffer.allocUnsafe(headerLength);
        for (let i = 0; i < headerLength; i++) head[i] = Math.floor(header / 256 ** i) % 256;
        if (remaining === 0) {
          if (!onFrame.call(thisArg as T, head)) return pos;
          continue;
        }
        this.#parts = [head];
      }
      this.#missing = remaining;
      this.#frameSize = size;
    }
    return pos;
  }

  #decodeRemainingLength(): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 1; i < this.#headerLength; i++) {
      value += (Math.floor(this.#header / 256 ** i) & 0x7f) * multiplier;
      multiplier *= 128;
    }
    return value;
  }
}
