/**
 * Gateway control messages (reference §1.10): a PUBLISH to `/devices/{id}/attach` or
 * `/devices/{id}/detach`. Only a gateway (gatewayType GATEWAY) may send one: any other device is
 * disconnected, as Cloud IoT Core did.
 *
 * Attach: the payload is empty, `{}`, `{"authorization": ""}` or `{"authorization": "<the
 * device's JWT>"}`; the device manager decides by the gateway's auth method (binding, token or
 * both), then the device's own policy must allow it to `connect`, as on a connection of its own;
 * that policy governs the attachment from then on. An attach is counted as a connection of the
 * device (attach-quotas). Once the attach is acknowledged (PUBACK) the
 * gateway speaks for the device on its topics (gateway-traffic) until it detaches it, its own connection ends, or the server detaches it
 * (gateway-detach, gateway-effects). Attaching a device takes it over from its own connection or
 * another gateway; attaching it again renews the attachment (a fresh token) and keeps its
 * subscriptions. A refusal never closes the gateway's connection: an error goes to its errors
 * topic, and the PUBLISH is still acknowledged (MQTT 5: with a reason code).
 */
import type { IPublishPacket } from 'mqtt-packet';
import type { CompiledPolicy } from '../policy/index.js';
import type { DeviceAuthResult, GatewayDelegatedDevice } from '../registry/device-manager.js';
import { admitAttachAttempt, admitAttachedDevice } from './attach-quotas.js';
import { auditDenied, auditGatewayControl } from './audit-decisions.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { clip, closeWithDeviceError, recordDeviceError } from './device-errors.js';
import type { DeviceSession } from './device-session.js';
import { GatewayAttachment, GatewayAttachments } from './gateway-attachments.js';
import { detachedBecause, endAttachment } from './gateway-detach.js';
import { acknowledgeRefused, publishInfo, sendGatewayError } from './gateway-errors.js';
import { applyAttachmentPolicy } from './policy-changes.js';
import type { GatewayPublish } from './gateway-topics.js';
import { TOKEN_EXPIRED_MESSAGE } from './handle-connect.js';
import { REASON_V5 } from './reason-codes.js';

/** Far more than a JWT needs: anything larger is not an attach request. */
export const MAX_ATTACH_PAYLOAD_BYTES = 16 * 1024;

export type AttachRequest = { readonly ok: true; readonly token: string | undefined } | { readonly ok: false; readonly reason: string };

/** The device token of an attach payload: none for an empty payload, `{}` or an empty `authorization`. */
export function parseAttachPayload(payload: Buffer): AttachRequest {
  if (payload.length === 0) return { ok: true, token: undefined };
  if (payload.length > MAX_ATTACH_PAYLOAD_BYTES) return { ok: false, reason: `the attach payload exceeds ${MAX_ATTACH_PAYLOAD_BYTES} bytes` };
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'the attach payload is not JSON' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { ok: false, reason: 'the attach payload is not a JSON object' };
  const authorization: unknown = (body as Record<string, unknown>)['authorization'];
  if (authorization === undefined || authorization === null || authorization === '') return { ok: true, token: undefined };
  if (typeof authorization !== 'string') return { ok: false, reason: "'authorization' is not a string" };
  return { ok: true, token: authorization };
}

export function handleGatewayControl(
  ctx: BrokerContext,
  conn: Connection,
  session: DeviceSession,
  control: Extract<GatewayPublish, { kind: 'attach' | 'detach' }>,
  topic: string,
  payload: Buffer,
  packet: IPublishPacket,
): void | Promise<void> {
  if (session.device.gateway === undefined) {
    auditDenied(ctx, conn, session.key, 'publish', topic, 'only gateways may attach or detach devices');
    closeWithDeviceError(
      ctx,
      conn,
      session,
      'PERMISSION_DENIED',
      `mqtt: The device is not a gateway: it may not publish to topic '${clip(topic)}'.`,
      REASON_V5.notAuthorized,
    );
    return;
  }
  if (control.kind === 'detach') {
    detach(ctx, conn, session, control.deviceId, topic, packet);
    return;
  }
  return attach(ctx, conn, session, control.deviceId, topic, payload, packet);
}

interface Refusal {
  /** What the gateway is told: nothing the device manager would keep from a device. */
  readonly description: string;
  /** For the log and the audit entry. */
  readonly reason: string;
  /** The MQTT 5 PUBACK reason code. */
  readonly code: number;
}

const notAuthorized = (deviceId: string, reason: string): Refusal => ({
  description: `The device '${clip(deviceId)}' could not be attached to the gateway: not authorized.`,
  reason,
  code: REASON_V5.notAuthorized,
});

async function attach(
  ctx: BrokerContext,
  conn: Connection,
  gateway: DeviceSession,
  deviceId: string,
  topic: string,
  payload: Buffer,
  packet: IPublishPacket,
): Promise<void> {
  const request = parseAttachPayload(payload);
  if (!request.ok) {
    const description = `The device '${clip(deviceId)}' could not be attached: ${request.reason}.`;
    refuseAttach(ctx, conn, gateway, deviceId, topic, packet, { description, reason: request.reason, code: REASON_V5.payloadFormatInvalid });
    return;
  }
  const attachments = (gateway.attachments ??= new GatewayAttachments(ctx.attached));
  if (attachments.get(deviceId) === undefined && attachments.full) {
    refuseAttach(ctx, conn, gateway, deviceId, topic, packet, tooMany(deviceId, attachments.limit));
    return;
  }
  const attempt = admitAttachAttempt(ctx, conn, gateway.device);
  if (attempt !== undefined) {
    refuseAttach(ctx, conn, gateway, deviceId, topic, packet, overLimit(deviceId, attempt.message));
    return;
  }
  const ticket = attachments.beginAttach();
  const mark = ctx.revocations.mark();
  let result: DeviceAuthResult<GatewayDelegatedDevice>;
  let policy: CompiledPolicy | undefined;
  /** The policy epoch of an attachment of this device here when its policy was compiled (attached again). */
  let compiledAtEpoch: number | undefined;
  try {
    result = await ctx.gateway.authorizeGatewayDevice(gateway.device, deviceId, request.token, 'mqtt', ctx.now());
    // The device's own policy, as its own connection would get (no client certificate: none of `${cert.subject.*}`).
    if (result.ok) {
      compiledAtEpoch = attachments.get(result.device.name.device)?.policyEpoch;
      policy = await ctx.policies.compile(result.device);
      if (!policy) result = { ok: false, reason: 'the device no longer exists' };
      else if (!policy.can('connect', result.device.name.device)) result = { ok: false, reason: 'the device policy denies connect' };
    }
  } catch (e) {
    conn.log.warn({ err: e, device: clip(deviceId) }, 'a gateway attach could not complete');
    result = { ok: false, reason: 'could not complete' };
  } finally {
    attachments.finishAttach(ticket);
  }
  // The gateway's connection may have ended meanwhile, taking its attachments with it.
  if (!conn.isOpen) return;
  if (!result.ok) {
    refuseAttach(ctx, conn, gateway, deviceId, topic, packet, notAuthorized(deviceId, result.reason));
    return;
  }
  const device = result.device;
  const quota = admitAttachedDevice(ctx, device);
  if (quota !== undefined) {
    recordDeviceError(ctx, conn, device, 'RESOURCE_EXHAUSTED', quota.message);
    refuseAttach(ctx, conn, gateway, deviceId, topic, packet, overLimit(deviceId, quota.message));
    return;
  }
  let stale: string | undefined;
  if (ticket.stale) stale = "the gateway's associations changed while attaching";
  else if (ctx.revocations.revokedSince(mark, device)) stale = 'revoked while attaching';
  // The token's exp with the clock skew the device manager allowed, as for a device's own connection.
  const expiresInMs = device.token ? device.token.expiresAt.getTime() + ctx.limits.jwtSkewSeconds * 1000 - ctx.now().getTime() : undefined;
  if (expiresInMs !== undefined && expiresInMs <= 0) stale = 'token expired';
  if (stale !== undefined || policy === undefined) {
    refuseAttach(ctx, conn, gateway, deviceId, topic, packet, notAuthorized(deviceId, stale ?? 'no policy'));
    return;
  }
  let attachment = attachments.get(device.name.device);
  if (attachment !== undefined) {
    attachment.device = device;
    // Unless a policy change began recompiling it meanwhile (newer than this compile), this one is the newest.
    if (attachment.policyEpoch === compiledAtEpoch) {
      attachment.policyEpoch++;
      applyAttachmentPolicy(attachment, policy);
    }
  } else {
    if (attachments.full) {
      refuseAttach(ctx, conn, gateway, deviceId, topic, packet, tooMany(deviceId, attachments.limit));
      return;
    }
    attachment = new GatewayAttachment(device, conn, gateway, attachments, {
      policy,
      config: { gateway: ctx.gateway, retryMs: ctx.limits.configRetryMs, now: ctx.now },
      onOverflow: (a, reason) => endAttachment(a, reason, detachedBecause(`Too many unacknowledged messages to deliver the device's config.`)),
    });
    // One connection per device: its own connection, or its attachment to another gateway, ends.
    ctx.devices.get(device.key)?.close('taken over by a gateway attachment', { level: 'info', code: REASON_V5.sessionTakenOver });
    const displaced = attachments.add(attachment);
    if (displaced !== undefined) endAttachment(displaced, 'attached to another gateway', detachedBecause('The device was attached to another gateway.'));
  }
  const attached = attachment;
  attached.expireAfter(expiresInMs, () => {
    recordDeviceError(ctx, conn, attached, 'UNAUTHENTICATED', TOKEN_EXPIRED_MESSAGE);
    endAttachment(attached, 'the authorization token expired', detachedBecause('The authorization token of the device expired.'));
  });
  auditGatewayControl(ctx, conn, gateway.key, 'attach', 'allowed', device.key, undefined, {
    byAssociation: device.byAssociation,
    ...(device.token ? { credential: device.token.credentialFingerprint } : {}),
  });
  conn.log.info(
    { gateway: gateway.key, device: device.key, byAssociation: device.byAssociation, ...(device.token ? { tokenExpiresAt: device.token.expiresAt.toISOString() } : {}) },
    'device attached to its gateway',
  );
  if (packet.qos === 1) conn.sendPuback(packet.messageId as number);
}

const tooMany = (deviceId: string, limit: number): Refusal => ({
  description: `The device '${clip(deviceId)}' could not be attached: the gateway has ${limit} devices attached.`,
  reason: 'too many devices attached',
  code: REASON_V5.quotaExceeded,
});

const overLimit = (deviceId: string, message: string): Refusal => ({
  description: `The device '${clip(deviceId)}' could not be attached: ${message.replace(/^mqtt: /, '')}`,
  reason: 'over a rate limit',
  code: REASON_V5.quotaExceeded,
});

function refuseAttach(
  ctx: BrokerContext,
  conn: Connection,
  gateway: DeviceSession,
  deviceId: string,
  topic: string,
  packet: IPublishPacket,
  refusal: Refusal,
): void {
  conn.log.info({ gateway: gateway.key, device: clip(deviceId), reason: refusal.reason }, 'gateway attach refused');
  auditGatewayControl(ctx, conn, gateway.key, 'attach', 'denied', topic, refusal.reason);
  sendGatewayError(conn, gateway, {
    type: 'GATEWAY_ATTACHMENT_ERROR',
    deviceId,
    description: refusal.description,
    message: publishInfo(packet, topic),
  });
  acknowledgeRefused(conn, packet, refusal.code);
}

function detach(ctx: BrokerContext, conn: Connection, gateway: DeviceSession, deviceId: string, topic: string, packet: IPublishPacket): void {
  const attachment = gateway.attachments?.get(deviceId);
  if (attachment === undefined) {
    auditGatewayControl(ctx, conn, gateway.key, 'detach', 'denied', topic, 'the device is not attached to the gateway');
    sendGatewayError(conn, gateway, {
      type: 'GATEWAY_DETACHMENT_ERROR',
      deviceId,
      description: `The device '${clip(deviceId)}' is not attached to the gateway.`,
      message: publishInfo(packet, topic),
    });
    acknowledgeRefused(conn, packet, REASON_V5.notAuthorized);
    return;
  }
  endAttachment(attachment, 'detached by its gateway');
  auditGatewayControl(ctx, conn, gateway.key, 'detach', 'allowed', attachment.key, undefined);
  if (packet.qos === 1) conn.sendPuback(packet.messageId as number);
}
