/**
 * PUBLISH from a session-engine client (open namespace; backends may not publish): any valid topic
 * name at QoS 0, 1 or 2, retained or not, routed within the client's namespace only. QoS 2 is
 * exactly once: the message is delivered on the first PUBLISH of a packet id and a duplicate
 * before PUBREL is only acknowledged again. More unreleased QoS 2 messages than the receive
 * maximum we announced ends the connection with 0x93 (MQTT 5 §4.9); QoS 1 is acknowledged at once.
 */
import type { IPublishPacket } from 'mqtt-packet';
import type { ClientSession } from './client-session.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { clip } from './device-errors.js';
import { expiryOf, Message, passThroughProperties } from './message.js';
import type { Namespace } from './namespace.js';
import { REASON_V5 } from './reason-codes.js';
import { resolveTopicAlias } from './topic-aliases.js';
import { isValidTopicName } from './topic-trie.js';
import { auditDenied } from './audit-decisions.js';

export function publishClient(ctx: BrokerContext, conn: Connection, session: ClientSession, namespace: Namespace, packet: IPublishPacket): void {
  const policy = namespace.policy;
  if (!policy.clientsPublish) {
    if (namespace !== ctx.open) auditDenied(ctx, conn, `backend:${session.owner || session.clientId}`, 'publish', packet.topic, `${policy.name} clients may not publish`);
    conn.close(`${policy.name} clients may not publish`, { level: 'info', code: REASON_V5.notAuthorized });
    return;
  }
  const qos = packet.qos;
  if (qos > policy.maxQos) {
    conn.close(`QoS ${qos} is not supported here`, { level: 'info', code: REASON_V5.qosNotSupported });
    return;
  }
  const props = packet.properties;
  const topic =
    props?.topicAlias === undefined
      ? packet.topic
      : resolveTopicAlias(ctx.limits.topicAliasMaximum, session, packet, (message, code) => conn.close(message, { level: 'info', code }));
  if (topic === undefined) return;
  if (!isValidTopicName(topic)) {
    conn.close(`invalid topic name '${clip(topic)}'`, { level: 'info', code: REASON_V5.topicNameInvalid });
    return;
  }
  const id = packet.messageId as number;
  if (qos === 2) {
    if (session.hasInboundQos2(id)) {
      conn.send({ cmd: 'pubrec', messageId: id });
      return;
    }
    if (session.inboundQos2 >= ctx.limits.receiveMaximum) {
      conn.close('more unacknowledged QoS 2 messages than the receive maximum', { level: 'info', code: REASON_V5.receiveMaximumExceeded });
      return;
    }
    session.addInboundQos2(id);
  }
  const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
  const message = new Message(topic, payload, qos, packet.retain, expiryOf(props, Date.now()), session, passThroughProperties(props));
  namespace.publish(message, conn);
  if (qos === 1) conn.send({ cmd: 'puback', messageId: id });
  else if (qos === 2) conn.send({ cmd: 'pubrec', messageId: id });
}
