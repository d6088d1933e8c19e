/**
 * CONNECT (MQTT 3.1.1 §3.1, reference §1.2–1.4). Authentication happens before any session
 * state exists:
 * - a client id starting with `projects/` is a device: the password is its JWT (the user name is
 *   ignored) and the device manager verifies it;
 * - the user name `admin` with any other client id is a backend subscriber: the password is the
 *   admin token;
 * - anything else, and every failure, is CONNACK 5 "not authorised" and the connection closes.
 * Only protocol level 4 is served: 3.1 gets CONNACK 1, MQTT 5 its own CONNACK with reason 0x84.
 * Sessions are never persistent (clean session is assumed) and wills are discarded.
 */
import mqttPacket, { type IConnectPacket } from 'mqtt-packet';
import type { DeviceAuthResult } from '../registry/device-manager.js';
import { BackendSession } from './backend-session.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { clip, recordDeviceError } from './device-errors.js';
import { DeviceSession } from './device-session.js';
import { CONNACK_RC, PROTOCOL_LEVEL, REASON_V5, type ConnackReturnCode } from './reason-codes.js';

const DEVICE_CLIENT_PREFIX = 'projects/';
const ADMIN_USERNAME = 'admin';
export const TOKEN_EXPIRED_MESSAGE = 'mqtt: SERVER: The authorization token expired.';

export function handleConnect(ctx: BrokerContext, conn: Connection, packet: IConnectPacket): void | Promise<void> {
  if (conn.state.phase !== 'awaiting-connect') {
    conn.close('a second CONNECT on the connection', { level: 'info' });
    return;
  }
  if (packet.protocolVersion === PROTOCOL_LEVEL.mqtt5) {
    conn.write(
      mqttPacket.generate(
        { cmd: 'connack', sessionPresent: false, reasonCode: REASON_V5.unsupportedProtocolVersion },
        { protocolVersion: 5 },
      ),
    );
    conn.close('MQTT 5 is not served yet', { level: 'info' });
    return;
  }
  if (packet.protocolVersion !== PROTOCOL_LEVEL.mqtt311 || packet.protocolId !== 'MQTT') {
    refuse(conn, CONNACK_RC.unacceptableProtocolVersion, `unsupported protocol ${packet.protocolId} level ${packet.protocolVersion}`, packet.clientId);
    return;
  }
  if (packet.will) conn.log.debug({ willTopic: clip(packet.will.topic) }, 'will message discarded: devices get no last will');

  if (packet.clientId.startsWith(DEVICE_CLIENT_PREFIX)) return authenticateDevice(ctx, conn, packet);
  if (packet.username === ADMIN_USERNAME) {
    authenticateBackend(ctx, conn, packet);
    return;
  }
  refuse(conn, CONNACK_RC.notAuthorized, 'neither a device client id nor the admin user', packet.clientId);
}

async function authenticateDevice(ctx: BrokerContext, conn: Connection, packet: IConnectPacket): Promise<void> {
  const clientId = packet.clientId;
  if (!packet.password || packet.password.length === 0) {
    refuse(conn, CONNACK_RC.notAuthorized, 'device authentication failed: no password (JWT)', clientId);
    return;
  }
  conn.authenticating();
  const mark = ctx.revocations.mark();
  let result: DeviceAuthResult;
  try {
    result = await ctx.gateway.authenticateJwt(clientId, packet.password.toString('utf8'), ctx.now());
  } catch (e) {
    conn.log.warn({ err: e }, 'device authentication could not complete');
    refuse(conn, CONNACK_RC.serverUnavailable, 'device authentication could not complete', clientId);
    return;
  }
  // The connect timeout or a shutdown may have ended the connection meanwhile.
  if (!conn.isOpen) return;
  if (!result.ok) {
    refuse(conn, CONNACK_RC.notAuthorized, `device authentication failed: ${result.reason}`, clientId);
    return;
  }
  const device = result.device;
  if (ctx.revocations.revokedSince(mark, device.key, device.credentialFingerprint)) {
    refuse(conn, CONNACK_RC.notAuthorized, 'device authentication failed: revoked while authenticating', clientId);
    return;
  }
  const expiresInMs = device.tokenExpiresAt.getTime() + ctx.limits.jwtSkewSeconds * 1000 - ctx.now().getTime();
  if (expiresInMs <= 0) {
    refuse(conn, CONNACK_RC.notAuthorized, 'device authentication failed: token expired', clientId);
    return;
  }

  const session = new DeviceSession(device, {
    gateway: ctx.gateway,
    link: conn,
    retryMs: ctx.limits.configRetryMs,
    now: ctx.now,
    log: conn.log,
  });
  ctx.devices.claim(device.key, conn)?.close('taken over by a new connection of the same device', { level: 'info' });
  conn.send({ cmd: 'connack', returnCode: CONNACK_RC.accepted, sessionPresent: false });
  conn.activate({ phase: 'device', session }, packet.keepalive ?? 0);
  session.armTokenExpiry(expiresInMs, () => {
    recordDeviceError(ctx, conn, session, 'UNAUTHENTICATED', TOKEN_EXPIRED_MESSAGE);
    conn.close('the authorization token expired', { level: 'info' });
  });
  conn.log.info(
    { device: device.key, credential: device.credentialFingerprint, tokenExpiresAt: device.tokenExpiresAt.toISOString() },
    'device connected',
  );
}

function authenticateBackend(ctx: BrokerContext, conn: Connection, packet: IConnectPacket): void {
  const token = packet.password?.toString('utf8');
  if (!token || !ctx.verifyAdminToken(token)) {
    refuse(conn, CONNACK_RC.notAuthorized, 'backend authentication failed', packet.clientId);
    return;
  }
  const session = new BackendSession(packet.clientId);
  if (packet.clientId !== '') {
    ctx.backends.claim(packet.clientId, conn)?.close('taken over by a new connection with the same client id', { level: 'info' });
  }
  conn.send({ cmd: 'connack', returnCode: CONNACK_RC.accepted, sessionPresent: false });
  conn.activate({ phase: 'backend', session }, packet.keepalive ?? 0);
  conn.log.info({ clientId: clip(packet.clientId) }, 'backend subscriber connected');
}

/** CONNACK with a refusal, then close. The reason is logged, never the credentials. */
function refuse(conn: Connection, returnCode: ConnackReturnCode, reason: string, clientId: string): void {
  conn.log.info({ clientId: clip(clientId), returnCode, reason }, 'connection refused');
  conn.send({ cmd: 'connack', returnCode, sessionPresent: false });
  conn.close(reason);
}

/**
 * A CONNECT the codec refused may still name a protocol level this server does not speak, and
 * MQTT 3.1.1 §3.1.2.2 wants CONNACK 1 for that rather than a silent close.
 */
export function handleUnparsableConnect(conn: Connection, frame: Buffer): void {
  if (conn.state.phase !== 'awaiting-connect') return;
  const level = connectProtocolLevel(frame);
  if (level === undefined || level === PROTOCOL_LEVEL.mqtt31 || level === PROTOCOL_LEVEL.mqtt311 || level === PROTOCOL_LEVEL.mqtt5) return;
  conn.log.info({ level }, 'connection refused: unsupported protocol level');
  conn.send({ cmd: 'connack', returnCode: CONNACK_RC.unacceptableProtocolVersion, sessionPresent: false });
}

const PROTOCOL_NAMES = new Set(['MQTT', 'MQIsdp']);

/** The protocol level of a CONNECT frame whose protocol name is MQTT's, else undefined. */
export function connectProtocolLevel(frame: Buffer): number | undefined {
  if (frame[0] !== 0x10) return undefined;
  let pos = 1;
  while (pos < frame.length && pos <= 4 && ((frame[pos] as number) & 0x80) !== 0) pos++;
  pos++;
  if (pos + 2 > frame.length) return undefined;
  const nameLength = frame.readUInt16BE(pos);
  pos += 2;
  if (pos + nameLength >= frame.length) return undefined;
  if (!PROTOCOL_NAMES.has(frame.toString('latin1', pos, pos + nameLength))) return undefined;
  return frame[pos + nameLength];
}
