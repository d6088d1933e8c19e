/**
 * PUBACK from a client (MQTT 3.1.1 §3.4): frees the packet id. For a device's pending config it
 * is the config acknowledgement (reference §1.7). For an engine client it completes a QoS 1
 * message of its session. An unknown id is ignored.
 */
import type { IPubackPacket } from 'mqtt-packet';
import type { ActiveState, Connection } from './connection.js';

export function handlePuback(conn: Connection, state: ActiveState, packet: IPubackPacket): void {
  const id = packet.messageId;
  if (id === undefined) return;
  if (state.phase === 'client') {
    state.session.acknowledged(id);
    return;
  }
  const kind = conn.acknowledge(id);
  // A gateway's PUBACK may acknowledge the config of a device it attached (gateway-attachments).
  if (kind === 'config' && state.phase === 'device' && !state.session.config.acknowledged(id)) state.session.attachments?.configAcknowledged(id);
}
