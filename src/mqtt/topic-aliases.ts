/**
 * Topic aliases a client sets up on its connection (MQTT 5 §3.3.2.3.4): a PUBLISH with a topic and
 * an alias (re)binds the alias; one with an empty topic uses it. At most `topicAliasMaximum`
 * aliases, as announced in the CONNACK; anything else ends the connection.
 */
import type { IPublishPacket } from 'mqtt-packet';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { closeWithDeviceError } from './device-errors.js';
import type { DeviceSession } from './device-session.js';
import { REASON_V5 } from './reason-codes.js';

/** The topic a PUBLISH carrying a topic alias is for, or undefined once the connection is closed. */
export function resolveTopicAlias(
  ctx: BrokerContext,
  conn: Connection,
  session: DeviceSession,
  packet: IPublishPacket,
): string | undefined {
  const alias = packet.properties?.topicAlias as number;
  if (alias < 1 || alias > ctx.limits.topicAliasMaximum) {
    const message = `mqtt: Topic alias ${alias} is outside 1..${ctx.limits.topicAliasMaximum}.`;
    closeWithDeviceError(ctx, conn, session, 'INVALID_ARGUMENT', message, REASON_V5.topicAliasInvalid);
    return undefined;
  }
  const aliases = (session.topicAliases ??= new Map());
  if (packet.topic !== '') {
    aliases.set(alias, packet.topic);
    return packet.topic;
  }
  const topic = aliases.get(alias);
  if (topic === undefined) {
    closeWithDeviceError(ctx, conn, session, 'INVALID_ARGUMENT', `mqtt: Topic alias ${alias} is not set.`, REASON_V5.protocolError);
    return undefined;
  }
  return topic;
}
