/**
 * The bounded queue of one session: messages waiting while the client is offline or its in-flight
 * window is full. Bounded in messages and bytes; when full, the oldest QoS 0 message makes room,
 * and when there is none the new message is dropped and counted. Never grows past its bounds.
 */
import type { Message } from './message.js';
import type { QoS } from './topic-trie.js';

export interface Queued {
  readonly message: Message;
  /** The QoS it goes out with: min(granted, published). */
  readonly qos: QoS;
  readonly retain: boolean;
  readonly subscriptionIds: readonly number[] | undefined;
}

const sizeOf = (q: Queued): number => q.message.payload.length + q.message.topic.length;

export class SessionQueue {
  /** Removed entries (a dropped QoS 0 in the middle) are left as holes and skipped. */
  #items: (Queued | undefined)[] = [];
  #head = 0;
  #length = 0;
  #bytes = 0;
  #qos0 = 0;
  #dropped = 0;

  constructor(
    private readonly maxMessages: number,
    private readonly maxBytes: number,
  ) {}

  get length(): number {
    return this.#length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Messages refused because the queue was full of QoS 1 and 2 messages (or one was too large). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Queues `entry`; returns false when it was dropped instead. */
  push(entry: Queued): boolean {
    const size = sizeOf(entry);
    if (size > this.maxBytes) return this.#drop();
    while (this.#length >= this.maxMessages || this.#bytes + size > this.maxBytes) {
      if (this.#qos0 === 0 || !this.#dropOldestQos0()) return this.#drop();
    }
    this.#items.push(entry);
    this.#length++;
    this.#bytes += size;
    if (entry.qos === 0) this.#qos0++;
    return true;
  }

  shift(): Queued | undefined {
    while (this.#head < this.#items.length) {
      const entry = this.#items[this.#head];
      this.#items[this.#head++] = undefined;
      if (entry === undefined) continue;
      this.#forget(entry);
      this.#compact();
      return entry;
    }
    this.clear();
    return undefined;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.#length = 0;
    this.#bytes = 0;
    this.#qos0 = 0;
  }

  #drop(): false {
    this.#dropped++;
    return false;
  }

  #dropOldestQos0(): boolean {
    for (let i = this.#head; i < this.#items.length; i++) {
      const entry = this.#items[i];
      if (entry?.qos === 0) {
        this.#items[i] = undefined;
        this.#forget(entry);
        this.#dropped++;
        return true;
      }
    }
    return false;
  }

  #forget(entry: Queued): void {
    this.#length--;
    this.#bytes -= sizeOf(entry);
    if (entry.qos === 0) this.#qos0--;
  }

  /** Reclaims the consumed prefix once it dominates the array. */
  #compact(): void {
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}
