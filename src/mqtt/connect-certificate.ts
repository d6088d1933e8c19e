/**
 * Devices authenticated by the client certificate of their TLS connection (AWS IoT style). The
 * listener requests a certificate without verifying it; the device manager verifies the chain
 * against the CAs of the registry the client id names, the certificate's registration and state,
 * and revocations. The connection then lives until the chain's earliest notAfter, and a
 * revocation of any certificate of the chain ends it (certificate-connections).
 */
import { createHash } from 'node:crypto';
import type { CertificateAuthenticatedDevice } from '../registry/device-manager.js';
import type { Connection } from './connection.js';
import type { BrokerContext } from './context.js';
import { certSubjectOf } from './device-policies.js';
import type { DeviceSession } from './device-session.js';
import { endAtExpiry, verifyDevice, type DeviceVerification } from './device-verification.js';
import { REASON_V5, REFUSAL } from './reason-codes.js';

export const CERTIFICATE_EXPIRED_MESSAGE = 'mqtt: SERVER: The client certificate expired.';

/** SHA-256 (hex) of a certificate's DER: how a refused certificate is named in the log. */
export const certificateFingerprint = (der: Buffer): string => createHash('sha256').update(der).digest('hex');

/**
 * Verifies the presented `chain` (leaf first, DER) for `clientId`. A certificate that does not
 * verify is "not authorised" (0x87 in MQTT 5): there is no user name or password involved, so
 * "bad user name or password" (0x86, what a bad JWT gets) would mislead whoever reads it.
 */
export function verifyDeviceCertificate(
  ctx: BrokerContext,
  conn: Connection,
  clientId: string,
  chain: readonly Buffer[],
): Promise<DeviceVerification<CertificateAuthenticatedDevice>> {
  return verifyDevice(ctx, conn, {
    authenticate: () => ctx.gateway.authenticateCertificate(clientId, chain, ctx.now()),
    refusal: REFUSAL.notAuthorized,
    // The earliest notAfter of the chain.
    validUntil: (device) => device.notAfter.getTime(),
    failureMessage: 'device certificate authentication could not complete',
    expiredReason: 'certificate expired',
    ...(chain[0] ? { certSubject: certSubjectOf(chain[0]) } : {}),
  });
}

/**
 * Ends the connection at the chain's notAfter. MQTT 5 gets DISCONNECT 0xA0 "maximum connect
 * time": the connection was authorised up to a time fixed at CONNECT and that time has come,
 * which tells the device to renew its certificate rather than that it did something forbidden
 * (0x87, which JWT expiry keeps for Cloud IoT Core compatibility).
 */
export function armCertificateExpiry(ctx: BrokerContext, conn: Connection, session: DeviceSession, expiresInMs: number): void {
  endAtExpiry(ctx, conn, session, expiresInMs, {
    errorMessage: CERTIFICATE_EXPIRED_MESSAGE,
    closeReason: 'the client certificate expired',
    code: REASON_V5.maximumConnectTime,
  });
}
