/**
 * Who a device HTTP request is from and for (reference §1.3, §2). Every request carries the
 * device's JWT as `Authorization: Bearer`; it is verified like an MQTT password, against the
 * device the URL names, with HTTP as the protocol (a registry may switch HTTP off). There is no
 * session: each request stands alone.
 *
 * What the caller learns: nothing but 401 for a missing or bad token, an unknown registry or
 * device — the reason goes to the log and the audit log only. 403 once the token proved the
 * caller is the device (blocked, HTTP disabled), and for `gatewayInfo` a gateway may not use.
 * An unknown device is never 404: the device must authenticate first, as with Cloud IoT Core.
 */
import type { Logger } from 'pino';
import type { AuditSink } from '../domain/audit-events.js';
import type {
  AuthenticatedDevice,
  DeviceGateway,
  GatewayDelegatedDevice,
  JwtAuthenticatedDevice,
} from '../registry/device-manager.js';
import { permissionDenied, unauthenticated, unavailable } from './bridge-errors.js';
import type { GatewayInfo } from './device-requests.js';

/** A device's policy, as the broker checks it: what it may do on which of its topics. */
export interface DevicePolicy {
  can(action: 'connect' | 'publish' | 'receive', resource: string): boolean;
}

/** The devices' stored policies (device policies); compiled per request, there being no session. */
export interface BridgePolicies {
  /** Undefined when the device no longer exists. */
  compile(device: AuthenticatedDevice | GatewayDelegatedDevice): Promise<DevicePolicy | undefined>;
}

export interface RequestAuthDeps {
  readonly gateway: DeviceGateway;
  /** Without them every device has exactly its Cloud IoT Core topics, as over MQTT. */
  readonly policies?: BridgePolicies;
  readonly audit?: AuditSink;
  readonly logger: Logger;
  readonly now: () => Date;
}

/** Where a request came from, for the log and the audit log. */
export interface RequestOrigin {
  readonly source: string | undefined;
  /** Method and path, without the query string. */
  readonly request: string;
}

/** Device paths and ids come from untrusted input: bounded in logs. */
const clip = (text: string, max = 512): string => (text.length > max ? `${text.slice(0, max)}…` : text);

/** The token of `Authorization: Bearer <token>`; undefined for anything else. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer +([^\s]+) *$/i.exec(header);
  return m?.[1];
}

function auditRefusal(deps: RequestAuthDeps, origin: RequestOrigin, kind: 'device.authenticate' | 'device.authorize', actor: string, subject: string, reason: string): void {
  deps.audit?.record({
    kind,
    outcome: 'denied',
    actor,
    subject,
    reason,
    details: { source: origin.source ?? null, protocol: 'http', request: clip(origin.request) },
  });
}

/** The device `devicePath` names, if `authorization` proves the caller is it; throws the refusal otherwise. */
export async function authenticateRequest(
  deps: RequestAuthDeps,
  devicePath: string,
  authorization: string | undefined,
  origin: RequestOrigin,
): Promise<JwtAuthenticatedDevice> {
  const claimed = clip(devicePath);
  const refuse = (reason: string, forbidden?: string): never => {
    deps.logger.debug({ device: claimed, source: origin.source, reason }, 'device request refused');
    auditRefusal(deps, origin, 'device.authenticate', claimed, claimed, reason);
    throw forbidden === undefined ? unauthenticated() : permissionDenied(forbidden);
  };
  const token = bearerToken(authorization);
  if (token === undefined) return refuse(authorization === undefined ? 'no Authorization header' : 'the Authorization header is not a Bearer token');
  let result;
  try {
    result = await deps.gateway.authenticateJwt(devicePath, token, deps.now(), 'http');
  } catch (e) {
    deps.logger.warn({ err: e, device: claimed }, 'device authentication could not complete');
    throw unavailable();
  }
  if (!result.ok) return refuse(result.reason, result.forbidden);
  return result.device;
}

/**
 * The device the request's data is for: the caller itself, or the device a gateway acts for
 * (`delegatedDeviceId`). With `gatewayId` the caller says it came through that gateway, which
 * must be one it may use. Refusals are 403: the caller did authenticate.
 */
export async function actingDevice(
  deps: RequestAuthDeps,
  caller: JwtAuthenticatedDevice,
  info: GatewayInfo | undefined,
  origin: RequestOrigin,
): Promise<AuthenticatedDevice | GatewayDelegatedDevice> {
  if (info === undefined) return caller;
  const refuse = (subject: string, reason: string, message: string): never => {
    deps.logger.debug({ device: caller.key, subject, reason }, 'gateway request refused');
    auditRefusal(deps, origin, 'device.authorize', caller.key, subject, reason);
    throw permissionDenied(message);
  };
  const ask = <T>(check: () => Promise<T>): Promise<T> =>
    check().catch((e: unknown) => {
      deps.logger.warn({ err: e, device: caller.key }, 'gateway authorization could not complete');
      throw unavailable();
    });
  if ('gatewayId' in info) {
    const subject = clip(info.gatewayId, 255);
    const r = await ask(() => deps.gateway.checkGatewayRelay(caller, info.gatewayId, deps.now()));
    if (!r.ok) return refuse(subject, `device may not be relayed by the gateway: ${r.reason}`, `The device may not be relayed by gateway '${subject}'.`);
    return caller;
  }
  const subject = clip(info.delegatedDeviceId, 255);
  const r = await ask(() => deps.gateway.authorizeGatewayDevice(caller, info.delegatedDeviceId, undefined, 'http', deps.now()));
  if (!r.ok) return refuse(subject, `gateway may not act for the device: ${r.reason}`, `The gateway may not act for device '${subject}'.`);
  return r.device;
}

/** The Cloud IoT Core topic an HTTP call stands for, as the device's policy names it (reference §1.6). */
export type DeviceAction =
  | { readonly action: 'publish'; readonly topic: 'events'; readonly subfolder?: string }
  | { readonly action: 'publish'; readonly topic: 'state' }
  | { readonly action: 'receive'; readonly topic: 'config' };

/**
 * The device's policy must let it connect and do `what` on its own topic, as over MQTT: an explicit
 * Deny takes a topic away whichever protocol the device uses. Refusals are 403 and audited.
 */
export async function authorizeAction(
  deps: RequestAuthDeps,
  device: AuthenticatedDevice | GatewayDelegatedDevice,
  what: DeviceAction,
  origin: RequestOrigin,
): Promise<void> {
  if (!deps.policies) return;
  const id = device.name.device;
  const topic = `/devices/${id}/${what.topic}${what.topic === 'events' && what.subfolder !== undefined ? `/${what.subfolder}` : ''}`;
  let policy;
  try {
    policy = await deps.policies.compile(device);
  } catch (e) {
    deps.logger.warn({ err: e, device: device.key }, 'the device policy could not be compiled');
    throw unavailable();
  }
  const reason = !policy
    ? 'the device no longer exists'
    : !policy.can('connect', id)
      ? 'the device policy denies connect'
      : !policy.can(what.action, topic)
        ? `${what.action} denied by the device policy`
        : undefined;
  if (reason === undefined) return;
  deps.logger.debug({ device: device.key, topic, reason }, 'device request refused');
  auditRefusal(deps, origin, 'device.authorize', device.key, topic, reason);
  throw permissionDenied(
    what.action === 'publish' ? `The device is not allowed to publish to topic '${clip(topic, 300)}'.` : `The device is not allowed to receive topic '${topic}'.`,
  );
}
