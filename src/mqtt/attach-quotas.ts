/**
 * Rate limits on a gateway's attaches (reference §1.10, §1.11). An attach costs what a CONNECT
 * costs (a store read; for token auth methods a JWT verification), so it is counted in two steps:
 *
 * - before authorizing, against the gateway connection's attach bucket, shaped like its
 *   registry's connection limit (`registryConnectionsPerMinute`, a minute's worth at once). The
 *   device's own buckets cannot be used yet: its limits and its key (the gateway may name it by
 *   numeric id, or name a device that does not exist) are known only once it is authorized, and
 *   keying buckets by whatever a gateway writes would let it fill the device table. This bucket
 *   bounds the work one gateway connection can cause, whatever it names; a reconnecting gateway
 *   is held by its own connection limit.
 * - once authorized, as a connection of the attached device (`admitConnection`: its
 *   `connectionsPerSecond` and its registry's connections), exactly as its own CONNECT would be
 *   and, like a CONNECT, only once it authenticated: so a gateway attaching a device in a loop is
 *   held like a device reconnecting in a loop, and an attach that failed locks out nobody.
 */
import type { TokenBucket } from '../domain/token-bucket.js';
import { describeLimit, limitBucket, type QuotaVerdict, type RateLimitedDevice } from '../registry/device-quotas.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';

/** Attaches of each gateway connection, before they are authorized. */
const attachBuckets = new WeakMap<Connection, TokenBucket>();

/** The refusal's description for the gateway (and the device's lastErrorStatus), or undefined when admitted. */
export type AttachQuotaRefusal = { readonly message: string } | undefined;

/** Before authorizing an attach by the gateway `gateway` on `conn`. */
export function admitAttachAttempt(ctx: BrokerContext, conn: Connection, gateway: RateLimitedDevice): AttachQuotaRefusal {
  const now = ctx.quotas.now();
  let bucket = attachBuckets.get(conn);
  if (bucket === undefined) {
    bucket = limitBucket('registryConnectionsPerMinute', gateway.rateLimits, now);
    attachBuckets.set(conn, bucket);
  }
  if (bucket.take(now)) return undefined;
  const perMinute = gateway.rateLimits.registryConnectionsPerMinute;
  return { message: `mqtt: The gateway exceeded its attach rate limit of ${perMinute} per minute (the registry's connection rate limit).` };
}

/** Once the device is authorized: the attach is one connection of it. */
export function admitAttachedDevice(ctx: BrokerContext, device: RateLimitedDevice): AttachQuotaRefusal {
  const verdict: QuotaVerdict = ctx.quotas.admitConnection(device, 'mqtt');
  return verdict.ok ? undefined : { message: `mqtt: ${describeLimit(verdict.limit, device.rateLimits)}` };
}
