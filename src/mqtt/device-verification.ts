/**
 * What a device's CONNECT does around the device manager's verdict, whether the credential is a
 * JWT (handle-connect) or a client certificate (connect-certificate): a revocation that arrives
 * while the credential is being checked still refuses the connection, a device manager that
 * fails is "server unavailable", and a connection lives only until its credential expires.
 */
import type { CompiledPolicy } from '../policy/index.js';
import type { AuthenticatedDevice, DeviceAuthResult } from '../registry/device-manager.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { recordDeviceError } from './device-errors.js';
import type { CertSubjectSource } from './device-policies.js';
import type { DeviceSession } from './device-session.js';
import { REFUSAL, type Refusal } from './reason-codes.js';

/** The device, its compiled policy and how long its credential is good for, or why it was refused. */
export type DeviceVerification<D extends AuthenticatedDevice> =
  | { readonly ok: true; readonly device: D; readonly expiresInMs: number; readonly policy: CompiledPolicy; readonly certSubject?: CertSubjectSource }
  | { readonly ok: false; readonly refusal: Refusal; readonly reason: string };

export interface CredentialCheck<D extends AuthenticatedDevice> {
  /** Asks the device manager. */
  readonly authenticate: () => Promise<DeviceAuthResult<D>>;
  /** How a credential that does not verify is refused. */
  readonly refusal: Refusal;
  /** When the credential stops being good (epoch ms). */
  readonly validUntil: (device: D) => number;
  /** Logged (warn) when the device manager could not give a verdict. */
  readonly failureMessage: string;
  /** The reason of a refusal for a credential already expired. */
  readonly expiredReason: string;
  /** The client certificate's subject, for `${cert.subject.*}` in policies. */
  readonly certSubject?: CertSubjectSource;
}

export async function verifyDevice<D extends AuthenticatedDevice>(
  ctx: BrokerContext,
  conn: Connection,
  check: CredentialCheck<D>,
): Promise<DeviceVerification<D>> {
  const mark = ctx.revocations.mark();
  let result: DeviceAuthResult<D>;
  try {
    result = await check.authenticate();
  } catch (e) {
    conn.log.warn({ err: e }, check.failureMessage);
    return { ok: false, refusal: REFUSAL.unavailable, reason: 'could not complete' };
  }
  if (!result.ok) return { ok: false, refusal: check.refusal, reason: result.reason };
  const device = result.device;
  // Compiled before the revocation check below, so a revocation during this wait still refuses.
  let policy: CompiledPolicy | undefined;
  try {
    policy = await ctx.policies.compile(device, check.certSubject);
  } catch (e) {
    conn.log.warn({ err: e }, 'the device policy could not be compiled');
    return { ok: false, refusal: REFUSAL.unavailable, reason: 'the device policy could not be compiled' };
  }
  if (!policy) return { ok: false, refusal: REFUSAL.notAuthorized, reason: 'the device no longer exists' };
  if (!policy.can('connect', device.name.device)) return { ok: false, refusal: REFUSAL.notAuthorized, reason: 'the device policy denies connect' };
  // A DeviceRevoked or CertificatesRevoked that arrived while the credential was being checked.
  if (ctx.revocations.revokedSince(mark, device)) {
    return { ok: false, refusal: check.refusal, reason: 'revoked while authenticating' };
  }
  const expiresInMs = check.validUntil(device) - ctx.now().getTime();
  if (expiresInMs <= 0) return { ok: false, refusal: check.refusal, reason: check.expiredReason };
  return { ok: true, device, expiresInMs, policy, ...(check.certSubject ? { certSubject: check.certSubject } : {}) };
}

/** How a connection ends when its credential expires. */
export interface Expiry {
  /** Published on the device's error topic. */
  readonly errorMessage: string;
  /** Logged as the reason of the close. */
  readonly closeReason: string;
  /** The MQTT 5 DISCONNECT reason code. */
  readonly code: number;
}

/** Ends the connection in `expiresInMs`, telling the device why first. */
export function endAtExpiry(ctx: BrokerContext, conn: Connection, session: DeviceSession, expiresInMs: number, expiry: Expiry): void {
  conn.endAfter(expiresInMs, () => {
    recordDeviceError(ctx, conn, session, 'UNAUTHENTICATED', expiry.errorMessage);
    conn.close(expiry.closeReason, { level: 'info', code: expiry.code });
  });
}
