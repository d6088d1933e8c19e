/**
 * CONNECT of a session-engine client, once it is authenticated (a backend) or needs none (the
 * open listener): the client id (assigned when empty, MQTT 3.1.1 §3.1.3.1, MQTT 5 §3.2.2.3.7),
 * the session (new, resumed or taken over; CONNACK session present), its expiry, and the will.
 */
import { randomUUID } from 'node:crypto';
import type { IConnackPacket, IConnectPacket } from 'mqtt-packet';
import type { SessionAccess } from './backend-identity.js';
import type { ClientSession, Will } from './client-session.js';
import { connackProperties } from './connect-v5.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { clip } from './device-errors.js';
import type { Namespace } from './namespace.js';
import { CONNACK_RC, REASON_V5 } from './reason-codes.js';
import { isValidTopicName } from './topic-trie.js';

/** The most QoS 1 and 2 messages in flight to a client that announced no receive maximum. */
const DEFAULT_RECEIVE_MAXIMUM = 0xffff;

/** Who a backend client is: its sessions are its own (keyed by owner and client id) and bounded by `access`. */
export interface ClientIdentity {
  readonly owner: string;
  readonly access: SessionAccess;
}

export function connectClient(
  ctx: BrokerContext,
  conn: Connection,
  packet: IConnectPacket,
  namespace: Namespace,
  identity?: ClientIdentity,
): ClientSession | undefined {
  const v5 = conn.isV5;
  const clean = packet.clean !== false;
  let clientId = packet.clientId;
  let assigned = false;
  if (clientId === '') {
    if (!v5 && !clean) {
      refuseClient(conn, CONNACK_RC.identifierRejected, REASON_V5.clientIdentifierNotValid, 'an empty client id with clean session 0');
      return undefined;
    }
    clientId = `keyway-${randomUUID()}`;
    assigned = true;
  }

  const will = namespace.policy.clientsPublish ? willOf(packet) : undefined;
  if (will === 'invalid') {
    refuseClient(conn, CONNACK_RC.notAuthorized, REASON_V5.topicNameInvalid, 'the will topic is not a valid topic name');
    return undefined;
  }
  if (packet.will && !namespace.policy.clientsPublish) conn.log.debug({ willTopic: clip(packet.will.topic) }, 'will discarded: these clients never publish');

  const cap = ctx.limits.maxSessionExpirySeconds;
  const requested = v5 ? (packet.properties?.sessionExpiryInterval ?? 0) : clean ? 0 : cap;
  const expirySeconds = Math.min(requested, cap);

  // Two accounts using one client id get two sessions: neither takes over nor resumes the other's.
  const start = namespace.open(identity ? `${identity.owner}|${clientId}` : clientId, clean, conn);
  if (!start) {
    refuseClient(conn, CONNACK_RC.serverUnavailable, REASON_V5.quotaExceeded, 'too many sessions');
    return undefined;
  }
  const { session, present } = start;
  session.owner = identity?.owner ?? '';
  session.access = identity?.access;
  session.expirySeconds = expirySeconds;
  session.will = will;

  const requestedKeepAlive = packet.keepalive ?? 0;
  const keepAliveCap = namespace.policy.maxKeepAliveSeconds;
  const keepAlive = v5 && keepAliveCap !== undefined && requestedKeepAlive > keepAliveCap ? keepAliveCap : requestedKeepAlive;
  const connack: IConnackPacket = { cmd: 'connack', sessionPresent: present };
  if (v5) {
    connack.reasonCode = REASON_V5.success;
    const props = connackProperties(ctx, packet, keepAlive);
    const policy = namespace.policy;
    if (policy.maxQos === 2) delete props.maximumQoS;
    props.retainAvailable = policy.retain;
    props.subscriptionIdentifiersAvailable = true;
    props.sharedSubscriptionAvailable = true;
    if (assigned) props.assignedClientIdentifier = clientId;
    if (requested > cap) props.sessionExpiryInterval = cap;
    connack.properties = props;
  } else {
    connack.returnCode = CONNACK_RC.accepted;
  }
  conn.send(connack);
  conn.activate({ phase: 'client', session, namespace }, keepAlive);
  const window = Math.min(ctx.limits.maxInflight, packet.properties?.receiveMaximum ?? DEFAULT_RECEIVE_MAXIMUM);
  const topicAliases = Math.min(ctx.limits.topicAliasMaximum, packet.properties?.topicAliasMaximum ?? 0);
  session.attach(conn, window, topicAliases);
  conn.log.info({ namespace: namespace.policy.name, clientId: clip(clientId), sessionPresent: present, ...(identity ? { account: identity.owner } : {}) }, 'client connected');
  return session;
}

/** The will of a CONNECT, undefined when there is none, 'invalid' when its topic is not a topic name. */
function willOf(packet: IConnectPacket): Will | undefined | 'invalid' {
  const w = packet.will;
  if (!w) return undefined;
  if (!isValidTopicName(w.topic)) return 'invalid';
  const { willDelayInterval, ...properties } = w.properties ?? {};
  const payload = typeof w.payload === 'string' ? Buffer.from(w.payload) : w.payload;
  return {
    topic: w.topic,
    payload,
    qos: w.qos ?? 0,
    retain: w.retain === true,
    properties: Object.keys(properties).length > 0 ? properties : undefined,
    delaySeconds: willDelayInterval ?? 0,
  };
}

function refuseClient(conn: Connection, v4: number, v5: number, reason: string): void {
  conn.log.info({ reason }, 'connection refused');
  conn.send(conn.isV5 ? { cmd: 'connack', reasonCode: v5, sessionPresent: false } : { cmd: 'connack', returnCode: v4, sessionPresent: false });
  conn.close(reason);
}
