/**
 * Topic aliases a client sets up on its connection (MQTT 5 §3.3.2.3.4): a PUBLISH with a topic and
 * an alias (re)binds the alias; one with an empty topic uses it. At most `topicAliasMaximum`
 * aliases, as announced in the CONNACK; anything else ends the connection.
 */
import type { IPublishPacket } from 'mqtt-packet';
import { REASON_V5 } from './reason-codes.js';

/** Whatever holds a connection's aliases (a device session, or an engine session for its current connection). */
export interface AliasHolder {
  topicAliases: Map<number, string> | undefined;
}

/** Ends the connection with `message` (for the device's error record and the log) and an MQTT 5 reason code. */
export type AliasFailure = (message: string, code: number) => void;

/** The topic a PUBLISH carrying a topic alias is for, or undefined once `fail` was called. */
export function resolveTopicAlias(
  topicAliasMaximum: number,
  holder: AliasHolder,
  packet: IPublishPacket,
  fail: AliasFailure,
): string | undefined {
  const alias = packet.properties?.topicAlias as number;
  if (alias < 1 || alias > topicAliasMaximum) {
    fail(`mqtt: Topic alias ${alias} is outside 1..${topicAliasMaximum}.`, REASON_V5.topicAliasInvalid);
    return undefined;
  }
  const aliases = (holder.topicAliases ??= new Map());
  if (packet.topic !== '') {
    aliases.set(alias, packet.topic);
    return packet.topic;
  }
  const topic = aliases.get(alias);
  if (topic === undefined) {
    fail(`mqtt: Topic alias ${alias} is not set.`, REASON_V5.protocolError);
    return undefined;
  }
  return topic;
}
