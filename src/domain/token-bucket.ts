/**
 * A token bucket: `capacity` tokens at once, refilled at `perSecond`. Used for every rate limit of
 * the device plane (connection rates in mqtt/, device and registry quotas in registry/).
 * Times are milliseconds of a monotonic clock (performance.now()); a clock going back changes nothing.
 */
export class TokenBucket {
  #tokens: number;
  #updatedAt: number;
  #capacity: number;
  #perSecond: number;

  constructor(capacity: number, perSecond: number, now: number) {
    this.#capacity = capacity;
    this.#perSecond = perSecond;
    this.#tokens = capacity;
    this.#updatedAt = now;
  }

  get capacity(): number {
    return this.#capacity;
  }

  get perSecond(): number {
    return this.#perSecond;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    return this.takeAmount(1, now);
  }

  /**
   * Takes `amount` tokens (bytes, say) if the bucket holds them. An amount above the capacity
   * could never fit: it is taken once the bucket is full, leaving it in debt, so that the average
   * rate still holds and no single message is refused for ever.
   */
  takeAmount(amount: number, now: number): boolean {
    this.#refill(now);
    if (this.#tokens < Math.min(amount, this.#capacity)) return false;
    this.#tokens -= amount;
    return true;
  }

  /** Seconds until `amount` tokens could be taken (0 when they can now). */
  secondsUntil(amount: number, now: number): number {
    this.#refill(now);
    const missing = Math.min(amount, this.#capacity) - this.#tokens;
    return missing <= 0 ? 0 : missing / this.#perSecond;
  }

  /** Whether the bucket would be full at `now`: it then holds nothing worth remembering. */
  isFull(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.#capacity;
  }

  /**
   * New limits for the same bucket: what was used stays used, the tokens held never exceed the new
   * capacity, and the time since the last use refills at the new rate (a raised limit helps at once).
   */
  retune(capacity: number, perSecond: number, now: number): void {
    if (capacity === this.#capacity && perSecond === this.#perSecond) return;
    this.#capacity = capacity;
    this.#perSecond = perSecond;
    this.#tokens = Math.min(this.#tokens, capacity);
    this.#refill(now);
  }

  #refill(now: number): void {
    const elapsed = now - this.#updatedAt;
    if (elapsed <= 0) return;
    this.#updatedAt = now;
    this.#tokens = Math.min(this.#capacity, this.#tokens + (elapsed * this.#perSecond) / 1000);
  }
}
