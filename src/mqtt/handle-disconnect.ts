/** DISCONNECT (MQTT 3.1.1 §3.14): the client leaves cleanly. */
import type { Connection } from './connection.js';

export function handleDisconnect(conn: Connection): void {
  conn.close('client disconnected');
}
