/**
 * The broker's bounds. Every resource a peer can make the broker spend (bytes buffered in and
 * out, unacknowledged messages, subscriptions, time) has one, with a default that follows
 * Cloud IoT Core's documented limits where it documented one (reference §1.2, §1.3, §1.11).
 */
import { fieldError } from '../domain/errors.js';
import { LIMITS } from '../domain/resources.js';

export interface BrokerLimits {
  /** The TLS handshake, and then CONNECT → CONNACK (authentication included), must each finish within this. */
  readonly connectTimeoutMs: number;
  /** A device connection without PUBLISH or PINGREQ for this long is closed, whatever its keep-alive. */
  readonly idleLimitMs: number;
  /** A QoS 1 config delivery is re-sent (DUP) at this interval until the device acknowledges it. */
  readonly configRetryMs: number;
  /** Largest packet accepted before authentication: a CONNECT carries a client id and a JWT. */
  readonly maxConnectPacketBytes: number;
  /** Largest packet accepted after authentication (fixed header included). */
  readonly maxPacketBytes: number;
  /** Allowed clock skew after a token's `exp` before its connection is ended. */
  readonly jwtSkewSeconds: number;
  /**
   * Bytes queued towards a peer beyond which it is congested: the publishers feeding it wait (see
   * flow-gate), and QoS 0 deliveries that hold no publisher back are dropped.
   */
  readonly outboundSoftBytes: number;
  /** Bytes queued towards a peer beyond which its connection is closed at once. */
  readonly outboundHardBytes: number;
  /** A peer that stays above `outboundSoftBytes` this long is closed (a slow consumer). */
  readonly slowConsumerMs: number;
  /** QoS 1 messages sent to one peer and not yet acknowledged. */
  readonly maxInflight: number;
  /** MQTT 5 receive maximum announced to clients: their QoS 1 PUBLISHes not yet acknowledged. */
  readonly receiveMaximum: number;
  /** MQTT 5 topic aliases a client may set up on its connection (0: none). */
  readonly topicAliasMaximum: number;
  /** Subscriptions one session (backend or open client) may hold. */
  readonly maxBackendSubscriptions: number;
  /** Messages one session may hold queued (offline, or behind its in-flight window). */
  readonly sessionQueueMessages: number;
  /** Payload and topic bytes one session may hold queued. */
  readonly sessionQueueBytes: number;
  /**
   * Longest a session outlives its connection: the cap on an MQTT 5 session expiry interval, and
   * the lifetime of an MQTT 3.1.1 persistent session (clean session 0), which the protocol leaves unbounded.
   */
  readonly maxSessionExpirySeconds: number;
  /** Sessions (connected or not) one namespace holds; a CONNECT that would need more is refused. */
  readonly maxSessions: number;
  /** Retained messages one namespace holds. */
  readonly retainedMessages: number;
  /** Payload and topic bytes of the retained messages of one namespace. */
  readonly retainedBytes: number;
  /** Open TLS connections the listener accepts. */
  readonly maxConnections: number;
  /** After the broker ends a connection, the peer has this long to close before it is destroyed. */
  readonly closeGraceMs: number;
  /**
   * Longest a connection lasts, re-authentication or not: then it is closed (MQTT 5 DISCONNECT
   * 0xA0, maximum connect time), so that no credential check is ever more than this old.
   */
  readonly maxConnectTimeMs: number;
  /** CONNECT packets per second the TLS listener takes (a one-second burst); more get CONNACK 0x9F before any credential check. */
  readonly connectsPerSecond: number;
  /**
   * Accepted connections per minute for one backend client id (a burst of as many); more get
   * CONNACK 0x9F. Devices are limited by their registry's `rateLimits.connectionsPerSecond` instead.
   */
  readonly identityConnectsPerMinute: number;
}

/** Headroom above the largest payload (256 KB events) for the fixed header, topic and packet id. */
const PACKET_OVERHEAD_BYTES = 4 * 1024;

export const DEFAULT_LIMITS: BrokerLimits = {
  connectTimeoutMs: 10_000,
  idleLimitMs: 20 * 60_000,
  configRetryMs: 10_000,
  maxConnectPacketBytes: 16 * 1024,
  maxPacketBytes: LIMITS.eventBytes + PACKET_OVERHEAD_BYTES,
  jwtSkewSeconds: 600,
  outboundSoftBytes: 2 * 1024 * 1024,
  outboundHardBytes: 16 * 1024 * 1024,
  slowConsumerMs: 30_000,
  maxInflight: 1024,
  receiveMaximum: 100,
  topicAliasMaximum: 32,
  maxBackendSubscriptions: 1000,
  sessionQueueMessages: 10_000,
  sessionQueueBytes: 16 * 1024 * 1024,
  maxSessionExpirySeconds: 24 * 3600,
  maxSessions: 100_000,
  retainedMessages: 10_000,
  retainedBytes: 64 * 1024 * 1024,
  maxConnections: 100_000,
  closeGraceMs: 2_000,
  maxConnectTimeMs: 24 * 3600_000,
  connectsPerSecond: 5_000,
  identityConnectsPerMinute: 60,
};

const MAX_SESSION_EXPIRY_SECONDS = Math.floor(0x7fffffff / 1000);

/** Packet ids are 16 bits; some must stay free for allocation to terminate quickly. */
const MAX_INFLIGHT_CEILING = 60_000;

const MINIMUMS: { readonly [K in keyof BrokerLimits]: number } = {
  connectTimeoutMs: 1,
  idleLimitMs: 1,
  configRetryMs: 1,
  maxConnectPacketBytes: 64,
  maxPacketBytes: 64,
  jwtSkewSeconds: 0,
  outboundSoftBytes: 0,
  outboundHardBytes: 1,
  slowConsumerMs: 1,
  maxInflight: 1,
  receiveMaximum: 1,
  topicAliasMaximum: 0,
  maxBackendSubscriptions: 1,
  sessionQueueMessages: 1,
  sessionQueueBytes: 1,
  maxSessionExpirySeconds: 0,
  maxSessions: 1,
  retainedMessages: 0,
  retainedBytes: 0,
  maxConnections: 1,
  closeGraceMs: 0,
  maxConnectTimeMs: 1,
  connectsPerSecond: 1,
  identityConnectsPerMinute: 1,
};

/** Fills in defaults and refuses values that would switch a bound off or make it meaningless. */
export function resolveLimits(given: Partial<BrokerLimits> = {}): BrokerLimits {
  const limits: { -readonly [K in keyof BrokerLimits]: number } = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(given) as (keyof BrokerLimits)[]) {
    if (!(key in DEFAULT_LIMITS)) throw fieldError(`limits.${key}`, 'is not a broker limit');
    const value = given[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < MINIMUMS[key]) {
      throw fieldError(`limits.${key}`, `must be an integer of at least ${MINIMUMS[key]}`);
    }
    limits[key] = value;
  }
  if (limits.maxInflight > MAX_INFLIGHT_CEILING) {
    throw fieldError('limits.maxInflight', `must be at most ${MAX_INFLIGHT_CEILING}`);
  }
  // Session timers are one setTimeout each, which cannot wait longer than 2^31-1 ms (24.8 days).
  if (limits.maxSessionExpirySeconds > MAX_SESSION_EXPIRY_SECONDS) {
    throw fieldError('limits.maxSessionExpirySeconds', `must be at most ${MAX_SESSION_EXPIRY_SECONDS}`);
  }
  // The connection's liveness timer is one setTimeout, which cannot wait longer than 2^31-1 ms.
  if (limits.maxConnectTimeMs > 0x7fffffff) throw fieldError('limits.maxConnectTimeMs', 'must be at most 2147483647');
  for (const key of ['receiveMaximum', 'topicAliasMaximum'] as const) {
    if (limits[key] > 0xffff) throw fieldError(`limits.${key}`, 'must be at most 65535');
  }
  if (limits.outboundHardBytes < limits.outboundSoftBytes) {
    throw fieldError('limits.outboundHardBytes', 'must not be below limits.outboundSoftBytes');
  }
  return limits;
}
