/**
 * Backpressure from subscribers to publishers: while any subscriber connection is congested (its
 * outbound bytes over the soft bound, or its session's queue backlogged), the gate is closed and
 * device connections stop reading PUBLISHes. Their PUBACKs wait, their windows fill, and TCP pushes
 * back on them: a QoS 1 message is only acknowledged once it could be queued without risk, so
 * nothing acknowledged is dropped for lack of room, and QoS 0 messages are slowed down rather than
 * dropped (only what was read before the gate closed may be). The gate is shared by all
 * connections of a broker: a congested subscriber holds every device, at most until it is closed
 * as a slow consumer.
 */

/** A connection waiting for the gate to open again. */
export interface GateWaiter {
  gateOpened(): void;
}

export class FlowGate {
  readonly #holders = new Set<object>();
  #waiters: GateWaiter[] = [];
  #wakeScheduled = false;

  get open(): boolean {
    return this.#holders.size === 0;
  }

  /** `holder` is congested: the gate stays closed until it (and every other holder) lets go. */
  hold(holder: object): void {
    this.#holders.add(holder);
  }

  release(holder: object): void {
    if (this.#holders.delete(holder) && this.#holders.size === 0 && this.#waiters.length > 0) this.#scheduleWake();
  }

  /** Calls `waiter.gateOpened()` once, after the gate opens (on a later turn, never inside release). */
  wait(waiter: GateWaiter): void {
    this.#waiters.push(waiter);
    if (this.open) this.#scheduleWake();
  }

  #scheduleWake(): void {
    if (this.#wakeScheduled) return;
    this.#wakeScheduled = true;
    // Waking inside release() would re-enter the delivery that released the gate.
    setImmediate(this.#wake);
  }

  readonly #wake = (): void => {
    this.#wakeScheduled = false;
    if (!this.open) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    // In the order they began to wait; one that meets a closed gate again waits again.
    for (const waiter of waiters) waiter.gateOpened();
  };
}
