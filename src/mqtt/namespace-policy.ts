/**
 * What each namespace of the session engine lets its clients do.
 * - backend: service accounts logged in with an API key; they subscribe (plain or shared) to
 *   device traffic under `registries/…` and never publish; device events and state are published
 *   into it by the broker.
 * - open: the development namespace of the plaintext open listener, for conformance testing only:
 *   anonymous clients, any topic, the whole protocol. SUBSCRIBE to exactly `test/nosubscribe` is
 *   refused (0x80): the Eclipse Paho interoperability suite probes subscribe failure with it.
 */
import { backendFilterProblem } from './backend-topics.js';
import { REASON_V5, SUBACK_FAILURE } from './reason-codes.js';
import type { ParsedFilter } from './subscription.js';
import { isValidFilter, type QoS } from './topic-trie.js';

export interface NamespacePolicy {
  readonly name: 'backend' | 'open';
  /** The highest QoS a subscription is granted. */
  readonly maxQos: QoS;
  /** Whether its clients may publish (and leave wills). */
  readonly clientsPublish: boolean;
  /** Whether retained messages are kept. */
  readonly retain: boolean;
  /**
   * The longest keep-alive an MQTT 5 client is granted (a longer one is answered with Server Keep
   * Alive); undefined keeps what the client asked for. MQTT 3.1.1 cannot be told, so it is never capped.
   */
  readonly maxKeepAliveSeconds: number | undefined;
  /** Why a filter is refused, as an MQTT 5 SUBACK reason code (MQTT 3.1.1 gets 0x80); undefined when granted. */
  refuseFilter(parsed: ParsedFilter, filter: string): number | undefined;
}

export const BACKEND_POLICY: NamespacePolicy = {
  name: 'backend',
  maxQos: 1,
  clientsPublish: false,
  retain: false,
  maxKeepAliveSeconds: undefined,
  refuseFilter(parsed) {
    if (parsed.kind === 'invalid') return REASON_V5.topicFilterInvalid;
    if (backendFilterProblem(parsed.filter) === undefined) return undefined;
    return isValidFilter(parsed.filter) ? REASON_V5.notAuthorized : REASON_V5.topicFilterInvalid;
  },
};

/** The Paho interoperability suite's subscribe-failure probe. */
export const NO_SUBSCRIBE_TOPIC = 'test/nosubscribe';

export const OPEN_POLICY: NamespacePolicy = {
  name: 'open',
  maxQos: 2,
  clientsPublish: true,
  retain: true,
  // What the Paho interoperability suite's server keep-alive test expects of a server.
  maxKeepAliveSeconds: 60,
  refuseFilter(parsed, filter) {
    if (parsed.kind === 'invalid') return REASON_V5.topicFilterInvalid;
    if (filter === NO_SUBSCRIBE_TOPIC) return SUBACK_FAILURE;
    return undefined;
  },
};
