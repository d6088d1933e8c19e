/**
 * CONNECT (MQTT 3.1.1 §3.1, reference §1.2–1.4). Authentication happens before any session
 * state exists:
 * - a client id starting with `projects/` is a device: over TLS with a client certificate, the
 *   certificate chain authenticates it (connect-certificate; the password is ignored, and an MQTT 5
 *   authentication method is refused); otherwise the password is its JWT (the user name is
 *   ignored). The device manager verifies either;
 * - any other client id with a user name is a backend subscriber: the user name names a service
 *   account as `{project}/{account id}` and the password is one of its API keys (`kwk_…`); what it
 *   may subscribe to and receive follows from the registries its role bindings reach
 *   (backend-identity). There is no admin-token login;
 * - anything else, and every failure, is refused and the connection closes: MQTT 3.1.1 gets
 *   CONNACK 5 "not authorised", MQTT 5 the reason codes of `REFUSAL`.
 * Protocol levels 4 and 5 are served; 3.1 gets CONNACK 1. Device sessions are never persistent
 * (clean session is assumed) and their wills are discarded; backends are clients of the session
 * engine (client-connect). On the development open listener every client is anonymous and joins
 * the open namespace, whatever its credentials.
 */
import mqttPacket, { type IConnackPacket, type IConnectPacket } from 'mqtt-packet';
import type { AuthenticatedDevice, JwtAuthenticatedDevice } from '../registry/device-manager.js';
import { describeLimit } from '../registry/device-quotas.js';
import { connectClient } from './client-connect.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { clip } from './device-errors.js';
import { DeviceSession } from './device-session.js';
import { connackProperties, connectCredential, deviceKeepAlive } from './connect-v5.js';
import { armCertificateExpiry, certificateFingerprint, verifyDeviceCertificate } from './connect-certificate.js';
import { endAtExpiry, verifyDevice, type DeviceVerification } from './device-verification.js';
import { PROTOCOL_LEVEL, REASON_V5, REFUSAL, type Refusal } from './reason-codes.js';
import { auditAuthentication, claimedIdentity } from './audit-decisions.js';
import { backendAccess, backendAccountName, type BackendAuthentication } from './backend-identity.js';
import { detachConnectedDevice } from './gateway-effects.js';

const DEVICE_CLIENT_PREFIX = 'projects/';
export const TOKEN_EXPIRED_MESSAGE = 'mqtt: SERVER: The authorization token expired.';

/** Which listener a connection came in on. */
export type ListenerKind = 'tls' | 'open';

export function handleConnect(
  ctx: BrokerContext,
  conn: Connection,
  packet: IConnectPacket,
  listener: ListenerKind = 'tls',
): void | Promise<void> {
  if (conn.state.phase !== 'awaiting-connect') {
    conn.close('a second CONNECT on the connection', { level: 'info', code: REASON_V5.protocolError });
    return;
  }
  const v5 = packet.protocolVersion === PROTOCOL_LEVEL.mqtt5;
  if (v5) {
    const props = packet.properties;
    conn.useV5({ maximumPacketSize: props?.maximumPacketSize, receiveMaximum: props?.receiveMaximum });
  } else if (packet.protocolVersion !== PROTOCOL_LEVEL.mqtt311 || packet.protocolId !== 'MQTT') {
    refuse(ctx, conn, REFUSAL.unsupportedProtocol, `unsupported protocol ${packet.protocolId} level ${packet.protocolVersion}`, packet.clientId);
    return;
  }
  if (listener === 'open') {
    if (v5 && packet.properties?.authenticationMethod !== undefined) {
      refuse(ctx, conn, REFUSAL.badAuthenticationMethod, 'the open listener has no authentication', packet.clientId);
      return;
    }
    connectClient(ctx, conn, packet, ctx.open);
    return;
  }

  if (!ctx.connectRate.admitConnect()) {
    refuse(ctx, conn, REFUSAL.rateExceeded, 'the listener is over its connection rate', packet.clientId);
    return;
  }
  const credential = v5 ? connectCredential(packet) : packet.password?.toString('utf8');
  if (credential === 'bad-method') {
    refuse(ctx, conn, REFUSAL.badAuthenticationMethod, 'unsupported authentication method', packet.clientId);
    return;
  }
  if (packet.clientId.startsWith(DEVICE_CLIENT_PREFIX)) {
    const chain = conn.presentedCertificates();
    if (chain.length > 0 && v5 && packet.properties?.authenticationMethod !== undefined) {
      refuse(ctx, conn, REFUSAL.badAuthenticationMethod, 'a device with a client certificate is authenticated by it, not by an authentication method', packet.clientId);
      return;
    }
    if (packet.will) conn.log.debug({ willTopic: clip(packet.will.topic) }, 'will message discarded: devices get no last will');
    return chain.length === 0 ? authenticateDevice(ctx, conn, packet, credential) : authenticateDeviceCertificate(ctx, conn, packet, chain);
  }
  if (packet.username !== undefined && packet.username !== '') return authenticateBackend(ctx, conn, packet, packet.username, credential);
  refuse(ctx, conn, REFUSAL.notAuthorized, 'neither a device client id nor a service account user name', packet.clientId);
}

/** Verifies a device token (on CONNECT and on re-authentication alike). */
export async function verifyDeviceToken(
  ctx: BrokerContext,
  conn: Connection,
  clientId: string,
  token: string | undefined,
): Promise<DeviceVerification<JwtAuthenticatedDevice>> {
  if (token === undefined) return { ok: false, refusal: REFUSAL.badCredentials, reason: 'no password (JWT)' };
  return verifyDevice(ctx, conn, {
    authenticate: () => ctx.gateway.authenticateJwt(clientId, token, ctx.now()),
    refusal: REFUSAL.badCredentials,
    // The token's exp, with the clock skew the device manager allowed.
    validUntil: (device) => device.tokenExpiresAt.getTime() + ctx.limits.jwtSkewSeconds * 1000,
    failureMessage: 'device authentication could not complete',
    expiredReason: 'token expired',
  });
}

async function authenticateDevice(
  ctx: BrokerContext,
  conn: Connection,
  packet: IConnectPacket,
  token: string | undefined,
): Promise<void> {
  const clientId = packet.clientId;
  if (token !== undefined) conn.authenticating();
  const verified = await verifyDeviceToken(ctx, conn, clientId, token);
  // The connect timeout or a shutdown may have ended the connection meanwhile.
  if (!conn.isOpen) return;
  if (!verified.ok) {
    refuse(ctx, conn, verified.refusal, `device authentication failed: ${verified.reason}`, clientId);
    return;
  }
  const { device, expiresInMs } = verified;
  const session = admitDevice(ctx, conn, packet, verified);
  if (!session) return;
  if (packet.properties?.authenticationMethod !== undefined) session.reauthClientId = clientId;
  armTokenExpiry(ctx, conn, session, expiresInMs);
  conn.log.info(
    { device: device.key, credential: device.credentialFingerprint, tokenExpiresAt: device.tokenExpiresAt.toISOString() },
    'device connected',
  );
  auditAuthentication(ctx, conn, 'allowed', device.key, undefined, { method: 'jwt', credential: device.credentialFingerprint });
}

async function authenticateDeviceCertificate(
  ctx: BrokerContext,
  conn: Connection,
  packet: IConnectPacket,
  chain: readonly Buffer[],
): Promise<void> {
  const clientId = packet.clientId;
  conn.authenticating();
  const verified = await verifyDeviceCertificate(ctx, conn, clientId, chain);
  if (!conn.isOpen) return;
  if (!verified.ok) {
    // The leaf's fingerprint names the refused certificate; it is public, unlike a JWT.
    const certificate = certificateFingerprint(chain[0] as Buffer);
    refuse(ctx, conn, verified.refusal, `device certificate refused: ${verified.reason}`, clientId, { certificate });
    return;
  }
  const { device, expiresInMs } = verified;
  const session = admitDevice(ctx, conn, packet, verified);
  if (!session) return;
  ctx.certificates.add(conn, device.revocationKeys);
  armCertificateExpiry(ctx, conn, session, expiresInMs);
  auditAuthentication(ctx, conn, 'allowed', device.key, undefined, {
    method: 'certificate',
    certificate: device.certificateFingerprint,
    ...(device.provisioned ? { provisioned: true } : {}),
  });
  conn.log.info(
    {
      device: device.key,
      certificate: device.certificateFingerprint,
      notAfter: device.notAfter.toISOString(),
      ...(device.provisioned ? { provisioned: true } : {}),
    },
    device.provisioned ? 'device provisioned on its first connection and connected' : 'device connected with a client certificate',
  );
}

/**
 * What JWT and certificate connections share once the device is known: the per-identity connect
 * rate, the session, taking over an older connection of the device, CONNACK. Undefined when refused.
 */
function admitDevice(
  ctx: BrokerContext,
  conn: Connection,
  packet: IConnectPacket,
  verified: Extract<DeviceVerification<AuthenticatedDevice>, { ok: true }>,
): DeviceSession | undefined {
  const { device } = verified;
  // The registry's limits (connections per device per second, per registry per minute), shared with the HTTP bridge.
  const quota = ctx.quotas.admitConnection(device, 'mqtt');
  if (!quota.ok) {
    refuse(ctx, conn, REFUSAL.rateExceeded, describeLimit(quota.limit, device.rateLimits), packet.clientId);
    return undefined;
  }
  const session = new DeviceSession(device, {
    gateway: ctx.gateway,
    link: conn,
    retryMs: ctx.limits.configRetryMs,
    now: ctx.now,
  }, verified.policy, verified.certSubject);
  const takenOver = { level: 'info', code: REASON_V5.sessionTakenOver } as const;
  ctx.devices.claim(device.key, conn)?.close('taken over by a new connection of the same device', takenOver);
  detachConnectedDevice(ctx, device.key);
  const keepAlive = conn.isV5 ? deviceKeepAlive(ctx, packet.keepalive ?? 0) : (packet.keepalive ?? 0);
  accept(ctx, conn, packet, keepAlive);
  conn.activate({ phase: 'device', session }, keepAlive);
  return session;
}

/** Ends the connection when the token expires (plus skew); a re-authentication re-arms it. */
export function armTokenExpiry(ctx: BrokerContext, conn: Connection, session: DeviceSession, expiresInMs: number): void {
  endAtExpiry(ctx, conn, session, expiresInMs, {
    errorMessage: TOKEN_EXPIRED_MESSAGE,
    closeReason: 'the authorization token expired',
    code: REASON_V5.notAuthorized,
  });
}

/**
 * A backend subscriber: a service account's API key. Its session is bounded by the registries the
 * account reaches, and the connection is tracked so that revoking the key, disabling or deleting
 * the account or changing its bindings ends it; it also ends when the key expires.
 */
async function authenticateBackend(
  ctx: BrokerContext,
  conn: Connection,
  packet: IConnectPacket,
  username: string,
  key: string | undefined,
): Promise<void> {
  if (packet.properties?.authenticationMethod !== undefined) {
    refuse(ctx, conn, REFUSAL.badAuthenticationMethod, 'backends authenticate with an API key as password', packet.clientId);
    return;
  }
  const actor = `backend:${clip(username)}`;
  if (!key || !ctx.backends) {
    refuse(ctx, conn, REFUSAL.badCredentials, `backend authentication failed: ${key ? 'no service accounts on this server' : 'no password (API key)'}`, packet.clientId, { account: clip(username) });
    return;
  }
  conn.authenticating();
  let result: BackendAuthentication;
  try {
    result = await ctx.backends.authenticate(username, key);
  } catch (e) {
    conn.log.warn({ err: e }, 'backend authentication could not complete');
    if (conn.isOpen) refuse(ctx, conn, REFUSAL.unavailable, 'backend authentication could not complete', packet.clientId, { account: clip(username) });
    return;
  }
  if (!conn.isOpen) return;
  if (!result.ok) {
    refuse(ctx, conn, REFUSAL.badCredentials, `backend authentication failed: ${result.reason}`, packet.clientId, { account: clip(username) });
    return;
  }
  const owner = backendAccountName(result.principal);
  if (!ctx.connectRate.admitIdentity(`backend:${owner}|${packet.clientId}`)) {
    refuse(ctx, conn, REFUSAL.rateExceeded, 'the backend client id connected too often lately', packet.clientId, { account: owner });
    return;
  }
  const session = connectClient(ctx, conn, packet, ctx.backend, { owner, access: backendAccess(result.reach) });
  if (!session || !conn.isOpen) return;
  ctx.backendConnections.add(conn, result.principal);
  if (result.expiresAt !== undefined) {
    conn.endAfter(result.expiresAt.getTime() - ctx.now().getTime(), () =>
      conn.close('the API key expired', { level: 'info', code: REASON_V5.notAuthorized }),
    );
  }
  auditAuthentication(ctx, conn, 'allowed', actor, undefined, { method: 'api-key', account: owner, key: result.principal.keyId, clientId: clip(packet.clientId) });
}

function accept(ctx: BrokerContext, conn: Connection, packet: IConnectPacket, keepAlive: number): void {
  const connack: IConnackPacket = { cmd: 'connack', sessionPresent: false };
  if (conn.isV5) {
    connack.reasonCode = REASON_V5.success;
    connack.properties = connackProperties(ctx, packet, keepAlive);
  } else {
    connack.returnCode = 0;
  }
  conn.send(connack);
}

/** CONNACK with a refusal, then close. The reason is logged and audited, never the credentials. */
function refuse(ctx: BrokerContext, conn: Connection, refusal: Refusal, reason: string, clientId: string, extra: Record<string, string> = {}): void {
  const code = conn.isV5 ? refusal.v5 : refusal.v4;
  conn.log.info({ clientId: clip(clientId), code, reason, ...extra }, 'connection refused');
  auditAuthentication(ctx, conn, 'denied', claimedIdentity(clientId), reason, { code, ...extra });
  conn.send(conn.isV5 ? { cmd: 'connack', reasonCode: code, sessionPresent: false } : { cmd: 'connack', returnCode: code, sessionPresent: false });
  conn.close(reason);
}

/**
 * A CONNECT the codec refused may still name a protocol level this server does not speak, and
 * MQTT 3.1.1 §3.1.2.2 wants CONNACK 1 for that rather than a silent close.
 */
export function handleUnparsableConnect(conn: Connection, frame: Buffer): void {
  if (conn.state.phase !== 'awaiting-connect') return;
  const level = connectProtocolLevel(frame);
  if (level === PROTOCOL_LEVEL.mqtt5) {
    conn.log.info('connection refused: malformed MQTT 5 CONNECT');
    conn.write(mqttPacket.generate({ cmd: 'connack', reasonCode: REASON_V5.malformedPacket, sessionPresent: false }, { protocolVersion: 5 }));
    return;
  }
  if (level === undefined || level === PROTOCOL_LEVEL.mqtt31 || level === PROTOCOL_LEVEL.mqtt311) return;
  conn.log.info({ level }, 'connection refused: unsupported protocol level');
  conn.send({ cmd: 'connack', returnCode: REFUSAL.unsupportedProtocol.v4, sessionPresent: false });
}

/** An MQTT 5 CONNECT over the bound before authentication: CONNACK 0x95 (MQTT 5 §3.2.2.2). */
export function refuseOversizeConnect(conn: Connection, head: Buffer): boolean {
  if (conn.state.phase !== 'awaiting-connect' || connectProtocolLevel(head) !== PROTOCOL_LEVEL.mqtt5) return false;
  conn.log.info('connection refused: CONNECT too large');
  conn.write(mqttPacket.generate({ cmd: 'connack', reasonCode: REASON_V5.packetTooLarge, sessionPresent: false }, { protocolVersion: 5 }));
  return true;
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
