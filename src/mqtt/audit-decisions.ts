/**
 * The broker's authentication and authorization decisions, told to the audit sink when the
 * composition root gave one. Recording never waits: the sink queues (and under a flood,
 * aggregates), so a refused connection costs the same with or without the audit log.
 */
import type { AuditJson } from '../domain/audit-events.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';

/** A connection's claimed identity before it is authenticated: its client id (never empty in the log). */
export const claimedIdentity = (clientId: string): string => (clientId === '' ? '(empty client id)' : clientId);

export function auditAuthentication(
  ctx: BrokerContext,
  conn: Connection,
  outcome: 'allowed' | 'denied',
  actor: string,
  reason: string | undefined,
  details: Record<string, AuditJson | undefined> = {},
): void {
  ctx.audit?.record({
    kind: 'device.authenticate',
    outcome,
    actor,
    subject: actor,
    ...(reason !== undefined ? { reason } : {}),
    details: { source: conn.remoteAddress, protocol: conn.isV5 ? 'mqtt5' : 'mqtt3.1.1', transport: conn.transport, ...details },
  });
}

/** A publish or subscribe refused by the topic rules. */
export function auditDenied(ctx: BrokerContext, conn: Connection, actor: string, action: 'publish' | 'subscribe', topic: string, reason: string): void {
  ctx.audit?.record({
    kind: 'device.authorize',
    outcome: 'denied',
    actor,
    subject: topic,
    reason,
    details: { action, source: conn.remoteAddress },
  });
}

/**
 * A gateway's attach or detach (gateway-control), allowed or refused. `subject` is the device's
 * path once known, else the control topic the gateway published on.
 */
export function auditGatewayControl(
  ctx: BrokerContext,
  conn: Connection,
  gateway: string,
  action: 'attach' | 'detach',
  outcome: 'allowed' | 'denied',
  subject: string,
  reason: string | undefined,
  details: Record<string, AuditJson | undefined> = {},
): void {
  ctx.audit?.record({
    kind: 'device.authorize',
    outcome,
    actor: gateway,
    subject,
    ...(reason !== undefined ? { reason } : {}),
    details: { action, source: conn.remoteAddress, ...details },
  });
}
