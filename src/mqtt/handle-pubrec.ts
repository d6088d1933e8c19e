/**
 * PUBREC from a client (MQTT 5 §3.5, §4.3.3): it has our QoS 2 message; we answer PUBREL and wait
 * for PUBCOMP. An MQTT 5 PUBREC with a failure reason (0x80 or more) ends that message's flow.
 * For an id not in flight the PUBREL carries 0x92 (MQTT 5), so the client can free it too.
 */
import type { IPubrecPacket } from 'mqtt-packet';
import type { ClientSession } from './client-session.js';
import type { Connection } from './connection.js';
import { REASON_V5 } from './reason-codes.js';

export function handlePubrec(conn: Connection, session: ClientSession, packet: IPubrecPacket): void {
  const id = packet.messageId;
  if (id === undefined) return;
  const failed = (packet.reasonCode ?? 0) >= 0x80;
  const known = session.received(id, failed);
  if (failed) return;
  if (known || !conn.isV5) conn.send({ cmd: 'pubrel', messageId: id });
  else conn.send({ cmd: 'pubrel', messageId: id, reasonCode: REASON_V5.packetIdentifierNotFound });
}
