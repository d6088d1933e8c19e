/**
 * What one subscription of a session asks for (MQTT 5 §3.8.3.1 subscription options), and the
 * shape of a shared subscription's filter (`$share/{group}/{filter}`, MQTT 5 §4.8.2).
 */
import { isValidFilter, type QoS } from './topic-trie.js';

export type RetainHandling = 0 | 1 | 2;

export interface Subscription {
  readonly qos: QoS;
  /** Never deliver the session's own messages to it. */
  readonly noLocal: boolean;
  /** Keep the retain flag a message was published with (otherwise it is cleared on live delivery). */
  readonly retainAsPublished: boolean;
  /** 0: send retained messages on subscribe; 1: only on a new subscription; 2: never. */
  readonly retainHandling: RetainHandling;
  /** MQTT 5 subscription identifiers a delivery carries; undefined when none. */
  readonly identifiers: readonly number[] | undefined;
}

/**
 * One session matching a message through several filters: one copy at the highest QoS, retain as
 * published if any filter asks, with every subscription identifier (MQTT 5 §3.3.4).
 */
export function mergeSubscriptions(a: Subscription, b: Subscription): Subscription {
  const ids = a.identifiers && b.identifiers ? [...a.identifiers, ...b.identifiers] : (a.identifiers ?? b.identifiers);
  return {
    qos: a.qos >= b.qos ? a.qos : b.qos,
    noLocal: false,
    retainAsPublished: a.retainAsPublished || b.retainAsPublished,
    retainHandling: a.retainHandling,
    identifiers: ids,
  };
}

export const SHARE_PREFIX = '$share/';

/** A subscription filter: plain, shared, or neither (invalid). */
export type ParsedFilter =
  | { readonly kind: 'plain'; readonly filter: string }
  | { readonly kind: 'shared'; readonly group: string; readonly filter: string }
  | { readonly kind: 'invalid' };

const INVALID: ParsedFilter = { kind: 'invalid' };

export function parseFilter(filter: string): ParsedFilter {
  if (!filter.startsWith(SHARE_PREFIX)) return isValidFilter(filter) ? { kind: 'plain', filter } : INVALID;
  const rest = filter.slice(SHARE_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return INVALID;
  const group = rest.slice(0, slash);
  const inner = rest.slice(slash + 1);
  if (group.includes('+') || group.includes('#') || !isValidFilter(inner)) return INVALID;
  return { kind: 'shared', group, filter: inner };
}
