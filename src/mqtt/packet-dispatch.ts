/**
 * Routes each parsed packet to its handler. CONNECT must come first and only once; packets a
 * server never receives close the connection, and so do the QoS 2 flow packets from a device
 * (devices publish and receive at QoS 0 and 1 only).
 */
import type { Packet } from 'mqtt-packet';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { handleAuth } from './handle-auth.js';
import { handleConnect, type ListenerKind } from './handle-connect.js';
import { handleDisconnect } from './handle-disconnect.js';
import { handlePing } from './handle-ping.js';
import { handlePuback } from './handle-puback.js';
import { handlePubcomp } from './handle-pubcomp.js';
import { handlePubrec } from './handle-pubrec.js';
import { handlePubrel } from './handle-pubrel.js';
import { handlePublish } from './handle-publish.js';
import { handleSubscribe } from './handle-subscribe.js';
import { handleUnsubscribe } from './handle-unsubscribe.js';
import { packetProblem, refuseInvalidPacket } from './packet-validation.js';
import { REASON_V5 } from './reason-codes.js';

export function dispatchPacket(
  ctx: BrokerContext,
  conn: Connection,
  packet: Packet,
  listener: ListenerKind = 'tls',
): void | Promise<void> {
  // Well-formedness the codec does not check, once for every packet type, before any handler.
  const problem = packetProblem(packet, conn.isV5);
  if (problem !== undefined) return refuseInvalidPacket(conn, packet, problem);
  if (packet.cmd === 'connect') return handleConnect(ctx, conn, packet, listener);
  const state = conn.state;
  if (state.phase !== 'device' && state.phase !== 'client') {
    conn.close(`${packet.cmd} before CONNECT`, { level: 'info', code: REASON_V5.protocolError });
    return;
  }
  switch (packet.cmd) {
    case 'publish':
      return handlePublish(ctx, conn, state, packet);
    case 'puback':
      return handlePuback(conn, state, packet);
    case 'subscribe':
      return handleSubscribe(ctx, conn, state, packet);
    case 'unsubscribe':
      return handleUnsubscribe(ctx, conn, state, packet);
    case 'pingreq':
      return handlePing(ctx, conn, state);
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      // Only where QoS 2 is served: devices and backends never take part in a QoS 2 flow.
      if (state.phase !== 'client' || state.namespace.policy.maxQos < 2) break;
      if (packet.cmd === 'pubrec') return handlePubrec(conn, state.session, packet);
      if (packet.cmd === 'pubrel') return handlePubrel(conn, state.session, packet);
      return handlePubcomp(state.session, packet);
    case 'disconnect':
      return handleDisconnect(ctx, conn, state, packet);
    case 'auth':
      return handleAuth(ctx, conn, state, packet);
  }
  conn.close(`unexpected ${packet.cmd} packet`, { level: 'info', code: REASON_V5.protocolError });
}
