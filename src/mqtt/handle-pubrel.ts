/**
 * PUBREL from a client (MQTT 5 §3.6, §4.3.3): the end of an inbound QoS 2 flow. The message was
 * delivered on its first PUBLISH; from now on the packet id may be reused for a new message.
 * PUBCOMP in every case, with 0x92 (MQTT 5) for an id that was not awaiting release.
 */
import type { IPubrelPacket } from 'mqtt-packet';
import type { ClientSession } from './client-session.js';
import type { Connection } from './connection.js';
import { REASON_V5 } from './reason-codes.js';

export function handlePubrel(conn: Connection, session: ClientSession, packet: IPubrelPacket): void {
  const id = packet.messageId;
  if (id === undefined) return;
  if (session.releaseInboundQos2(id) || !conn.isV5) conn.send({ cmd: 'pubcomp', messageId: id });
  else conn.send({ cmd: 'pubcomp', messageId: id, reasonCode: REASON_V5.packetIdentifierNotFound });
}
