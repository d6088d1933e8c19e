/**
 * Retained messages of one namespace (MQTT 3.1.1 §3.3.1.3): the last retained message per topic,
 * replaced by the next, deleted by an empty one. Bounded in count and bytes: a new topic that
 * would exceed a bound is not retained (and counted); replacing a message never fails for count.
 */
import type { Message } from './message.js';
import { filterMatches } from './topic-trie.js';

const sizeOf = (m: Message): number => m.payload.length + m.topic.length;

export class RetainedStore {
  readonly #byTopic = new Map<string, Message>();
  #bytes = 0;
  #refused = 0;

  constructor(
    private readonly maxMessages: number,
    private readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.#byTopic.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Retained messages not kept because a bound was reached. */
  get refused(): number {
    return this.#refused;
  }

  /** Stores `message` as its topic's retained message (an empty payload deletes). Returns whether it is kept. */
  retain(message: Message): boolean {
    const previous = this.#byTopic.get(message.topic);
    const freed = previous ? sizeOf(previous) : 0;
    if (message.payload.length === 0) {
      if (previous) this.#delete(previous);
      return false;
    }
    const count = this.#byTopic.size + (previous ? 0 : 1);
    if (count > this.maxMessages || this.#bytes - freed + sizeOf(message) > this.maxBytes) {
      this.#refused++;
      return false;
    }
    this.#byTopic.set(message.topic, message);
    this.#bytes += sizeOf(message) - freed;
    return true;
  }

  /** Calls `visit` for each unexpired retained message whose topic `filter` matches; expired ones are deleted. */
  forEachMatching(filter: string, now: number, visit: (message: Message) => void): void {
    for (const message of [...this.#byTopic.values()]) {
      if (!filterMatches(filter, message.topic)) continue;
      if (message.expired(now)) this.#delete(message);
      else visit(message);
    }
  }

  #delete(message: Message): void {
    this.#byTopic.delete(message.topic);
    this.#bytes -= sizeOf(message);
  }
}
