/**
 * The liveness deadlines of one connection: the connect timeout until CONNACK, then keep-alive
 * (1.5 times the client's, MQTT 3.1.1 §3.1.2.10), the idle limit of devices, the maximum connect
 * time, and an end the session sets (a token's expiry). One timer serves them all, re-armed when
 * it fires: the packet path only writes timestamps, and an idle connection holds a single timer.
 */
import { performance } from 'node:perf_hooks';
import type { BrokerLimits } from './limits.js';
import { REASON_V5 } from './reason-codes.js';

/** setTimeout fires at once for anything over 2^31-1 ms. */
const MAX_TIMER_MS = 0x7fffffff;

/** A deadline passed: why, and the MQTT 5 reason code the peer is told. */
export interface Expiry {
  readonly reason: string;
  readonly code: number;
}

type Deadline = Expiry & { readonly at: number };

export class Liveness {
  readonly #limits: BrokerLimits;
  readonly #acceptedAt = performance.now();
  /** Any packet read: keep-alive. Written on the packet path. */
  lastPacketAt = this.#acceptedAt;
  /** A PUBLISH or PINGREQ read: the idle limit. Written on the packet path. */
  lastActiveAt = this.#acceptedAt;
  #activated = false;
  #keepAliveMs = 0;
  #idleLimitMs = Infinity;
  #timer: NodeJS.Timeout | undefined;
  /** When the session must end and what ends it (endAfter). */
  #endAt = Infinity;
  #onEnd: (() => void) | undefined;

  constructor(limits: BrokerLimits) {
    this.#limits = limits;
  }

  /** CONNACK sent: keep-alive from the CONNECT (0 = off), and the idle limit for devices. */
  activate(keepAliveSeconds: number, isDevice: boolean): void {
    this.#activated = true;
    this.#keepAliveMs = keepAliveSeconds * 1500;
    this.#idleLimitMs = isDevice ? this.#limits.idleLimitMs : Infinity;
    this.lastPacketAt = this.lastActiveAt = performance.now();
  }

  /** `onEnd` is due in `delayMs`; replaces an earlier one. Re-arm afterwards. */
  endAfter(delayMs: number, onEnd: () => void): void {
    this.#endAt = performance.now() + Math.max(0, delayMs);
    this.#onEnd = onEnd;
  }

  /** The peer is not silent (its packets are held back unread): its clocks start again. */
  touch(): void {
    this.lastPacketAt = this.lastActiveAt = performance.now();
  }

  /** The session's end, if it is due: taken, so it runs once. */
  takeDueEnd(): (() => void) | undefined {
    const onEnd = this.#onEnd;
    if (onEnd === undefined || performance.now() < this.#endAt) return undefined;
    this.#onEnd = undefined;
    this.#endAt = Infinity;
    return onEnd;
  }

  /** The deadline that passed, if one has. */
  expired(): Expiry | undefined {
    const deadline = this.#deadline();
    return performance.now() >= deadline.at ? deadline : undefined;
  }

  /**
   * Arms the timer for the next deadline, calling `check(owner)` then (a static callback: no
   * closure per connection).
   */
  arm<T>(check: (owner: T) => void, owner: T): void {
    clearTimeout(this.#timer);
    const at = Math.min(this.#deadline().at, this.#endAt);
    if (at === Infinity) return;
    // Beyond the longest timer: wait that long and look again.
    const delay = Math.min(Math.max(0, Math.ceil(at - performance.now())), MAX_TIMER_MS);
    this.#timer = setTimeout(check, delay, owner);
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  #deadline(): Deadline {
    const timeout = REASON_V5.keepAliveTimeout;
    if (!this.#activated) return { at: this.#acceptedAt + this.#limits.connectTimeoutMs, reason: 'connect timeout', code: timeout };
    // However active, and however often it re-authenticates, no connection outlives this.
    const end = this.#acceptedAt + this.#limits.maxConnectTimeMs;
    const idle = Math.min(this.lastActiveAt + this.#idleLimitMs, end);
    if (this.#keepAliveMs > 0) {
      const keepAlive = this.lastPacketAt + this.#keepAliveMs;
      if (keepAlive <= idle) return { at: keepAlive, reason: 'keep-alive expired', code: timeout };
    }
    if (idle === end) return { at: end, reason: 'maximum connect time reached', code: REASON_V5.maximumConnectTime };
    return { at: idle, reason: 'idle limit reached', code: timeout };
  }
}
