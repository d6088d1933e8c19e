/**
 * Backpressure from one subscriber to the publishers that feed it. While a session-engine client
 * is congested (its outbound bytes over the soft bound, or its session's queue backlogged), its
 * connection has a FlowGate; a publisher whose message was just delivered to it is added to the
 * gate and reads no further PUBLISH until every gate it waits on has opened. Its PUBACKs wait, its
 * window fills, and TCP pushes back on it: a QoS 1 message is only acknowledged once it could be
 * queued without risk, so nothing acknowledged is dropped for lack of room, and QoS 0 messages
 * are slowed down rather than dropped (only what was read before the gate closed may be).
 *
 * Only the publishers of that subscriber wait: a slow backend of one registry, or a slow client
 * of the development open listener, holds no one else. A gate exists only while its subscriber is
 * congested, and opens once, for good, when the subscriber catches up or goes away (closed, taken
 * over, or cut off as a slow consumer); a later congestion makes a new gate.
 */

/** A publisher held back by one or more gates. */
export interface GateWaiter {
  /** `gate` opened (on a later turn, never inside the call that opened it). */
  gateOpened(gate: FlowGate): void;
}

export class FlowGate {
  /** Who waits; undefined once the gate has opened. */
  #waiters: Set<GateWaiter> | undefined = new Set();

  get isOpen(): boolean {
    return this.#waiters === undefined;
  }

  /** Publishers waiting on it. */
  get waiting(): number {
    return this.#waiters?.size ?? 0;
  }

  /**
   * `waiter` waits until the gate opens. Returns whether that is new: false when it waits already,
   * or when the gate has opened (then there is nothing to wait for).
   */
  hold(waiter: GateWaiter): boolean {
    const waiters = this.#waiters;
    if (waiters === undefined || waiters.has(waiter)) return false;
    waiters.add(waiter);
    return true;
  }

  /** `waiter` went away (its connection closed): it is no longer kept. */
  forget(waiter: GateWaiter): void {
    this.#waiters?.delete(waiter);
  }

  /** The subscriber caught up or went away: every waiter is told, on a later turn. */
  open(): void {
    const waiters = this.#waiters;
    if (waiters === undefined) return;
    this.#waiters = undefined;
    // Waking inside open() would re-enter the delivery or acknowledgement that opened the gate.
    if (waiters.size > 0) setImmediate(wake, this, waiters);
  }
}

/** In the order they began to wait. */
function wake(gate: FlowGate, waiters: Set<GateWaiter>): void {
  for (const waiter of waiters) waiter.gateOpened(gate);
}
