/**
 * Routes each parsed packet to its handler. CONNECT must come first and only once; packets a
 * server never receives in MQTT 3.1.1 (or that belong to QoS 2 flows, which are not served)
 * close the connection.
 */
import type { Packet } from 'mqtt-packet';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { handleAuth } from './handle-auth.js';
import { handleConnect } from './handle-connect.js';
import { handleDisconnect } from './handle-disconnect.js';
import { handlePing } from './handle-ping.js';
import { handlePuback } from './handle-puback.js';
import { handlePublish } from './handle-publish.js';
import { handleSubscribe } from './handle-subscribe.js';
import { handleUnsubscribe } from './handle-unsubscribe.js';
import { REASON_V5 } from './reason-codes.js';

export function dispatchPacket(ctx: BrokerContext, conn: Connection, packet: Packet): void | Promise<void> {
  if (packet.cmd === 'connect') return handleConnect(ctx, conn, packet);
  const state = conn.state;
  if (state.phase !== 'device' && state.phase !== 'backend') {
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
    case 'disconnect':
      return handleDisconnect(conn);
    case 'auth':
      return handleAuth(ctx, conn, state, packet);
    default:
      conn.close(`unexpected ${packet.cmd} packet`, { level: 'info', code: REASON_V5.protocolError });
  }
}
