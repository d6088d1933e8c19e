/**
 * Revocations into the audit log: the composition root subscribes the log to the bus, where the
 * device manager and the PKI announce what they revoked. The admin request that caused a
 * revocation is recorded by the API on its own; this entry says what it took away.
 */
import type { Bus } from '../bus/bus.js';
import type { AuditSink } from '../domain/audit-events.js';

/** Records every revocation the bus carries; returns the unsubscribe function. */
export function auditRevocations(bus: Bus, audit: AuditSink): () => void {
  const offDevice = bus.onRevoked((e) =>
    audit.record({
      kind: 'revocation',
      outcome: 'ok',
      actor: 'keyway',
      subject: e.device,
      reason: e.reason,
      details: { blocked: e.blocked, credentials: e.credentialFingerprints.length },
    }),
  );
  const offCertificates = bus.onCertificatesRevoked((e) =>
    audit.record({
      kind: 'revocation',
      outcome: 'ok',
      actor: 'keyway',
      subject: e.keys.length === 1 ? e.keys[0] : `${e.keys.length} certificates`,
      reason: e.reason,
      // Bounded: a CRL upload can name many thousands.
      details: { count: e.keys.length, keys: e.keys.slice(0, 100), ...(e.keys.length > 100 ? { truncated: true } : {}) },
    }),
  );
  return () => {
    offDevice();
    offCertificates();
  };
}
