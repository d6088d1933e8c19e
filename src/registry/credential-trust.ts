/**
 * Device credentials in a registry that has CA certificates (reference gcp §3.6): every new
 * credential must be an X.509 certificate signed directly by one of the registry's CAs, valid
 * now, and not one of those CA certificates itself. A registry without CAs keeps the usual
 * rules (device-rules.ts). Credentials a device already holds are not re-judged on a patch.
 */
import { fieldError } from '../domain/errors.js';
import type { DeviceCredential, Registry } from '../domain/resources.js';
import { issuedBy, parseCertificatePem, type ParsedCertificate } from '../identity/x509-certificate.js';
import { registryCaCertificates } from './registry-credentials.js';

const X509_FORMATS = new Set(['RSA_X509_PEM', 'ES256_X509_PEM']);

const identity = (c: DeviceCredential): string => `${c.publicKey.format}\n${c.publicKey.key.trim()}`;

/**
 * Throws INVALID_ARGUMENT naming the first credential of `credentials` that is new (absent from
 * `existing`) and not trusted by the registry's CAs.
 */
export function checkCredentialsTrusted(
  registry: Pick<Registry, 'credentials'>,
  credentials: readonly DeviceCredential[],
  existing: readonly DeviceCredential[],
  now: Date,
  field = 'device.credentials',
): void {
  if (registry.credentials.length === 0) return;
  const held = new Set(existing.map(identity));
  let cas: ParsedCertificate[] | undefined;
  credentials.forEach((credential, i) => {
    if (held.has(identity(credential))) return;
    cas ??= registryCaCertificates(registry.credentials);
    const at = `${field}[${i}].publicKey`;
    if (!X509_FORMATS.has(credential.publicKey.format))
      throw fieldError(
        `${at}.format`,
        `must be RSA_X509_PEM or ES256_X509_PEM: the registry has CA certificates, so device credentials must be certificates they signed`,
      );
    const cert = parseCertificatePem(credential.publicKey.key, `${at}.key`);
    const problem = trustProblem(cert, cas, now);
    if (problem !== undefined) throw fieldError(`${at}.key`, problem);
  });
}

function trustProblem(cert: ParsedCertificate, cas: readonly ParsedCertificate[], now: Date): string | undefined {
  if (cas.some((ca) => ca.sha256 === cert.sha256))
    return 'is one of the registry CA certificates; a device credential must be a certificate the CA issued';
  if (cert.notAfter.getTime() <= now.getTime()) return `expired at ${cert.notAfter.toISOString()}`;
  if (cert.notBefore.getTime() > now.getTime()) return `is not valid before ${cert.notBefore.toISOString()}`;
  const issuers = cas.filter((ca) => issuedBy(cert, ca));
  if (issuers.length === 0)
    return 'is not signed directly by any of the registry CA certificates (a certificate from an intermediate CA needs that intermediate registered on the registry)';
  if (!issuers.some((ca) => ca.notBefore.getTime() <= now.getTime() && now.getTime() < ca.notAfter.getTime()))
    return `is signed by a registry CA certificate that expired at ${issuers[0]!.notAfter.toISOString()}`;
  return undefined;
}
