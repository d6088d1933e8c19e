/**
 * One namespace of the session engine: its sessions by client id, its router and its retained
 * messages. Namespaces never see each other's traffic. This is where a session's life is decided:
 * opened, resumed or taken over on CONNECT; kept for its expiry interval when its connection ends,
 * with the will published then (or after its delay, unless the session is resumed in time, and at
 * the latest when the session ends); ended at expiry. Sessions live in memory, on this node only.
 */
import { REASON_V5 } from './reason-codes.js';
import { ClientSession, type SessionBounds, type Will } from './client-session.js';
import type { Connection } from './connection.js';
import { expiryOf, Message, passThroughProperties } from './message.js';
import type { NamespacePolicy } from './namespace-policy.js';
import { RetainedStore } from './retained-store.js';
import { Router } from './router.js';

export interface NamespaceBounds extends SessionBounds {
  readonly maxSessions: number;
  readonly retainedMessages: number;
  readonly retainedBytes: number;
}

/** What a CONNECT found: a fresh session, or the one it resumed (session present). */
export interface SessionStart {
  readonly session: ClientSession;
  readonly present: boolean;
}

/** The timers of a session whose connection is gone. */
interface Offline {
  readonly expiry: NodeJS.Timeout;
  willTimer?: NodeJS.Timeout;
  pendingWill?: Will;
}

/** setTimeout's ceiling; limits keep session expiry below it. */
const MAX_TIMER_MS = 0x7fffffff;

export class Namespace {
  readonly router = new Router();
  readonly retained: RetainedStore;
  readonly #sessions = new Map<string, ClientSession>();
  readonly #offline = new Map<ClientSession, Offline>();

  constructor(
    readonly policy: NamespacePolicy,
    private readonly bounds: NamespaceBounds,
  ) {
    this.retained = new RetainedStore(bounds.retainedMessages, bounds.retainedBytes);
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  session(clientId: string): ClientSession | undefined {
    return this.#sessions.get(clientId);
  }

  /**
   * The session for a CONNECT of `clientId` on `conn`: a connection holding it is taken over
   * (MQTT 5: DISCONNECT 0x8E), then it is resumed, or replaced when `clean`. Undefined when a new
   * session would exceed the namespace's bound.
   */
  open(clientId: string, clean: boolean, conn: Connection): SessionStart | undefined {
    const holder = this.#sessions.get(clientId)?.connection;
    if (holder !== undefined && holder !== conn) {
      holder.close('taken over by a new connection with the same client id', { level: 'info', code: REASON_V5.sessionTakenOver });
    }
    let session = this.#sessions.get(clientId);
    if (session !== undefined && clean) {
      this.#end(session);
      session = undefined;
    }
    if (session !== undefined) {
      this.#resume(session);
      return { session, present: true };
    }
    if (this.#sessions.size >= this.bounds.maxSessions) return undefined;
    session = new ClientSession(clientId, this.bounds);
    this.#sessions.set(clientId, session);
    return { session, present: false };
  }

  /** The session's connection closed: end the session or keep it for its expiry interval; the will goes out. */
  closed(session: ClientSession, conn: Connection): void {
    if (this.#sessions.get(session.clientId) !== session || session.connection !== conn) return;
    session.detach(conn);
    const will = session.will;
    session.will = undefined;
    if (session.expirySeconds === 0) {
      this.#end(session);
      if (will) this.#publishWill(will, session);
      return;
    }
    const offline: Offline = { expiry: timer(() => this.#end(session), session.expirySeconds * 1000) };
    this.#offline.set(session, offline);
    if (!will) return;
    if (will.delaySeconds === 0) {
      this.#publishWill(will, session);
      return;
    }
    // A delay beyond the session's expiry ends at the expiry: #end publishes what is pending.
    offline.pendingWill = will;
    if (will.delaySeconds < session.expirySeconds) {
      offline.willTimer = timer(() => {
        offline.pendingWill = undefined;
        this.#publishWill(will, session);
      }, will.delaySeconds * 1000);
    }
  }

  /**
   * Retains (when flagged and allowed) and routes one message; returns the copies delivered or
   * queued. `publisher` is the connection it came from, held back by congested subscribers.
   */
  publish(message: Message, publisher?: Connection): number {
    if (message.retain && this.policy.retain) this.retained.retain(message);
    return this.router.publish(message, publisher);
  }

  /**
   * Ends every session of `owner` (its rights changed: nothing queued under the old ones survives).
   * Their connections must be closed first; returns how many ended.
   */
  endOwnedBy(owner: string): number {
    let ended = 0;
    for (const session of [...this.#sessions.values()]) {
      if (session.owner !== owner) continue;
      // No will: a backend never leaves one, and a revoked identity publishes nothing more.
      const offline = this.#offline.get(session);
      if (offline) offline.pendingWill = undefined;
      session.will = undefined;
      this.#end(session);
      ended++;
    }
    return ended;
  }

  /** Stops every timer; sessions are forgotten (they live in memory only). */
  close(): void {
    for (const offline of this.#offline.values()) {
      clearTimeout(offline.expiry);
      clearTimeout(offline.willTimer);
    }
    this.#offline.clear();
    for (const session of this.#sessions.values()) session.clear();
    this.#sessions.clear();
  }

  /** A session resumed in time: its timers stop and a will still waiting is not sent (MQTT 5 §3.1.3.2.2). */
  #resume(session: ClientSession): void {
    const offline = this.#offline.get(session);
    if (!offline) return;
    clearTimeout(offline.expiry);
    clearTimeout(offline.willTimer);
    this.#offline.delete(session);
  }

  #end(session: ClientSession): void {
    if (this.#sessions.get(session.clientId) !== session) return;
    this.#sessions.delete(session.clientId);
    const offline = this.#offline.get(session);
    if (offline) {
      clearTimeout(offline.expiry);
      clearTimeout(offline.willTimer);
      this.#offline.delete(session);
    }
    this.router.unsubscribeAll(session);
    session.clear();
    if (offline?.pendingWill) this.#publishWill(offline.pendingWill, session);
  }

  #publishWill(will: Will, session: ClientSession): void {
    const now = Date.now();
    const given = will.properties;
    this.publish(new Message(will.topic, will.payload, will.qos, will.retain, expiryOf(given, now), session, passThroughProperties(given)));
  }
}

function timer(fn: () => void, ms: number): NodeJS.Timeout {
  const t = setTimeout(fn, Math.min(ms, MAX_TIMER_MS));
  t.unref();
  return t;
}
