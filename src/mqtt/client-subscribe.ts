/**
 * SUBSCRIBE from a session-engine client: each filter is checked by its namespace's policy (a
 * refused one gets 0x80, or its MQTT 5 reason), bounded by the subscription quota, granted at most
 * the namespace's QoS and added to the session (plain) or to a shared group. After the SUBACK,
 * retained messages matching a plain filter are sent with the retain flag, as its retain handling
 * says (MQTT 5 §3.3.1.3); shared subscriptions never get retained messages (§4.8.2).
 */
import type { ISubscribePacket } from 'mqtt-packet';
import type { ClientSession } from './client-session.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { clip } from './device-errors.js';
import type { Namespace } from './namespace.js';
import { REASON_V5, SUBACK_FAILURE } from './reason-codes.js';
import { auditDenied } from './audit-decisions.js';
import { parseFilter, type RetainHandling, type Subscription } from './subscription.js';
import type { QoS } from './topic-trie.js';

const minQos = (a: QoS, b: QoS): QoS => (a <= b ? a : b);

export function subscribeClient(ctx: BrokerContext, conn: Connection, session: ClientSession, namespace: Namespace, packet: ISubscribePacket): void {
  const { policy, router } = namespace;
  const v5 = conn.isV5;
  const id = packet.properties?.subscriptionIdentifier;
  const identifiers = typeof id === 'number' ? [id] : undefined;
  const granted: number[] = [];
  const sendRetained: Array<{ readonly filter: string; readonly sub: Subscription }> = [];
  for (const requested of packet.subscriptions) {
    const filter = requested.topic;
    const parsed = parseFilter(filter);
    let refusal = policy.refuseFilter(parsed, filter);
    // A backend's account must reach the filter's registry (deliveries are checked again, one by one).
    if (refusal === undefined && parsed.kind !== 'invalid' && session.access?.mayFilter(parsed.filter) === false) refusal = REASON_V5.notAuthorized;
    if (refusal !== undefined) {
      conn.log.info({ filter: clip(filter), code: refusal }, 'subscription refused');
      if (namespace !== ctx.open) auditDenied(ctx, conn, `backend:${session.owner || session.clientId}`, 'subscribe', filter, `refused with reason code ${refusal}`);
      granted.push(v5 ? refusal : SUBACK_FAILURE);
      continue;
    }
    if (parsed.kind === 'shared' && requested.nl === true) {
      conn.close('no local on a shared subscription', { level: 'info', code: REASON_V5.protocolError });
      return;
    }
    if (!session.subscriptions.has(filter) && session.subscriptions.size >= ctx.limits.maxBackendSubscriptions) {
      conn.log.info({ filter: clip(filter) }, 'subscription refused: too many subscriptions');
      granted.push(v5 ? REASON_V5.quotaExceeded : SUBACK_FAILURE);
      continue;
    }
    const sub: Subscription = {
      qos: minQos(requested.qos, policy.maxQos),
      noLocal: requested.nl === true,
      retainAsPublished: requested.rap === true,
      retainHandling: (requested.rh ?? 0) as RetainHandling,
      identifiers,
    };
    if (parsed.kind === 'shared') {
      router.subscribeShared(session, filter, parsed.filter, sub);
    } else {
      const existed = router.subscribe(session, filter, sub);
      if (sub.retainHandling === 0 || (sub.retainHandling === 1 && !existed)) sendRetained.push({ filter, sub });
    }
    granted.push(sub.qos);
  }
  conn.send({ cmd: 'suback', messageId: packet.messageId as number, granted });
  if (!policy.retain) return;
  const now = Date.now();
  for (const { filter, sub } of sendRetained) {
    namespace.retained.forEachMatching(filter, now, (message) => session.deliver(message, minQos(sub.qos, message.qos), true, sub.identifiers));
  }
}
