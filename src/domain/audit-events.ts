/**
 * What producers (the broker, the services, the admin API) tell the audit log. Types only, so
 * that they can emit events without importing `audit/`: the composition root injects the sink.
 */

/** `allowed`/`denied` for access decisions, `ok`/`error` for actions. */
export const AUDIT_OUTCOMES = ['allowed', 'denied', 'ok', 'error'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/**
 * Kinds in use. Device-plane kinds (`device.*`) and refused admin logins come from untrusted
 * traffic and may be aggregated under load; every other kind is written one entry per event.
 */
export type AuditKind =
  | 'device.authenticate'
  | 'device.authorize'
  | 'admin.request'
  | 'admin.authenticate'
  | 'revocation'
  | 'audit.genesis'
  | 'audit.start'
  | (string & {});

/** A JSON value: what `details` may hold. */
export type AuditJson = string | number | boolean | null | readonly AuditJson[] | { readonly [key: string]: AuditJson | undefined };

export interface AuditEvent {
  readonly kind: AuditKind;
  readonly outcome: AuditOutcome;
  /** Who acted: a device path (or the client id it claimed), `admin`, a service account… */
  readonly actor: string;
  /** What it acted on: a topic, a resource name, an API path. */
  readonly subject?: string;
  /** Why it was refused or what happened, in words. */
  readonly reason?: string;
  /** Source address, before/after of a change, counts… */
  readonly details?: { readonly [key: string]: AuditJson | undefined };
  /** When it happened; the time it was recorded by default. */
  readonly time?: Date;
}

/** Where producers send events. Never blocks and never throws: the log absorbs bursts. */
export interface AuditSink {
  record(event: AuditEvent): void;
}

/**
 * Events untrusted traffic can produce in floods (device-plane decisions, refused admin
 * logins): aggregated when the log is behind. Everything else is written one by one.
 */
export const isAggregatable = (kind: string): boolean => kind.startsWith('device.') || kind === 'admin.authenticate';
