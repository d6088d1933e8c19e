/** PUBCOMP from a client (MQTT 5 §3.7): our QoS 2 message is complete; its packet id is free. An unknown id is ignored. */
import type { IPubcompPacket } from 'mqtt-packet';
import type { ClientSession } from './client-session.js';

export function handlePubcomp(session: ClientSession, packet: IPubcompPacket): void {
  if (packet.messageId !== undefined) session.completed(packet.messageId);
}
