/**
 * AUTH (MQTT 5 §3.15, §4.12.1): re-authentication. A device that connected with the `keyway-jwt`
 * method sends a fresh JWT as authentication data (reason 0x19); it is verified exactly like on
 * CONNECT and must be for the same device. Success answers AUTH 0x00 and moves the connection's
 * expiry to the new token's; a token that does not verify ends the connection with 0x87. A
 * connection authenticated by its client certificate cannot re-authenticate: AUTH ends it with 0x82.
 */
import type { IAuthPacket } from 'mqtt-packet';
import type { ActiveState, Connection } from './connection.js';
import { AUTH_METHOD } from './connect-v5.js';
import type { BrokerContext } from './context.js';
import { closeWithDeviceError } from './device-errors.js';
import { armTokenExpiry, verifyDeviceToken } from './handle-connect.js';
import { REASON_V5 } from './reason-codes.js';
import { auditAuthentication } from './audit-decisions.js';

export async function handleAuth(ctx: BrokerContext, conn: Connection, state: ActiveState, packet: IAuthPacket): Promise<void> {
  if (state.phase === 'device' && state.session.device.method === 'certificate') {
    // The client certificate of the TLS session is the identity, and no AUTH can replace it. Such
    // a CONNECT named no authentication method, so AUTH is a protocol error (MQTT 5 §4.12.1);
    // 0x8C "bad authentication method" is not a DISCONNECT reason code (§3.14.2.1).
    conn.close('AUTH on a connection authenticated by its client certificate', { level: 'info', code: REASON_V5.protocolError });
    return;
  }
  const clientId = state.phase === 'device' ? state.session.reauthClientId : undefined;
  const props = packet.properties;
  if (
    state.phase !== 'device' ||
    clientId === undefined ||
    packet.reasonCode !== REASON_V5.reAuthenticate ||
    props?.authenticationMethod !== AUTH_METHOD
  ) {
    conn.close('AUTH without re-authentication by the keyway-jwt method', { level: 'info', code: REASON_V5.protocolError });
    return;
  }
  const session = state.session;
  const token = props.authenticationData?.toString('utf8');
  const verified = await verifyDeviceToken(ctx, conn, clientId, token === '' ? undefined : token);
  if (!conn.isOpen) return;
  if (!verified.ok || verified.device.key !== session.key) {
    const reason = verified.ok ? 'a token of another device' : verified.reason;
    conn.log.info({ device: session.key, reason }, 're-authentication failed');
    auditAuthentication(ctx, conn, 'denied', session.key, `re-authentication failed: ${reason}`, { method: 'jwt' });
    closeWithDeviceError(ctx, conn, session, 'UNAUTHENTICATED', 'mqtt: Re-authentication failed.', REASON_V5.notAuthorized);
    return;
  }
  session.device = verified.device;
  // Compiled afresh with the new token: the policy as it stands now.
  session.policyEpoch++;
  session.policy = verified.policy;
  armTokenExpiry(ctx, conn, session, verified.expiresInMs);
  conn.send({ cmd: 'auth', reasonCode: REASON_V5.success, properties: { authenticationMethod: AUTH_METHOD } });
  conn.log.info(
    { device: session.key, credential: verified.device.credentialFingerprint, tokenExpiresAt: verified.device.tokenExpiresAt.toISOString() },
    'device re-authenticated',
  );
}
