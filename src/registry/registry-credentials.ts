/**
 * Registry CA credentials (reference gcp §3.6): at most 10 X.509 v3 CA certificates, each with
 * a strong key and not expired, optionally carrying a provisioning template. Their details
 * (x509Details) are computed here, at save time, and stored with them.
 */
import type { IssuedFields } from '../domain/authorities.js';
import { certificateKey, type CertificateKey } from '../domain/certificate-keys.js';
import { fieldError } from '../domain/errors.js';
import { DEVICE_AUTH_METHODS, LIMITS, type DeviceAuthMethod, type RegistryCredential } from '../domain/resources.js';
import { certificateDetails, keyStrengthProblem, parseCertificatePem, type ParsedCertificate } from '../identity/x509-certificate.js';
import { checkProvisioningTemplate } from './provisioning-template.js';
import { checkEnum } from './registry-rules.js';

const FIELD = 'deviceRegistry.credentials';

/**
 * Checks a registry's whole credential list as it is set (create, or patch with mask `credentials`).
 * `issued`: the subject fields known of CAs' device certificates, by CA DER SHA-256 (registryCaFingerprints).
 */
export function checkRegistryCredentials(
  raw: unknown,
  now: Date,
  issued: ReadonlyMap<string, IssuedFields> = new Map(),
  field = FIELD,
): RegistryCredential[] {
  if (!Array.isArray(raw)) throw fieldError(field, 'must be a list');
  if (raw.length > LIMITS.registryCredentials)
    throw fieldError(field, `at most ${LIMITS.registryCredentials} CA certificates are allowed per registry`);
  const seen = new Map<string, number>();
  return raw.map((credential: unknown, i): RegistryCredential => {
    const at = `${field}[${i}]`;
    if (typeof credential !== 'object' || credential === null) throw fieldError(at, 'must be an object');
    const { publicKeyCertificate, provisioningTemplate } = credential as Record<string, unknown>;
    if (typeof publicKeyCertificate !== 'object' || publicKeyCertificate === null)
      throw fieldError(`${at}.publicKeyCertificate`, 'is required');
    const { format, certificate } = publicKeyCertificate as Record<string, unknown>;
    if (format !== 'X509_CERTIFICATE_PEM')
      throw fieldError(`${at}.publicKeyCertificate.format`, 'must be X509_CERTIFICATE_PEM');
    const certField = `${at}.publicKeyCertificate.certificate`;
    const cert = parseCertificatePem(certificate, certField);
    checkCaCertificate(cert, now, certField);
    const first = seen.get(cert.sha256);
    if (first !== undefined) throw fieldError(certField, `is the same certificate as ${field}[${first}]`);
    seen.set(cert.sha256, i);
    return {
      publicKeyCertificate: {
        format: 'X509_CERTIFICATE_PEM',
        certificate: certificate as string,
        x509Details: certificateDetails(cert),
      },
      ...(provisioningTemplate !== undefined && provisioningTemplate !== null
        ? { provisioningTemplate: checkProvisioningTemplate(provisioningTemplate, `${at}.provisioningTemplate`, issued.get(cert.sha256)) }
        : {}),
    };
  });
}

function checkCaCertificate(cert: ParsedCertificate, now: Date, field: string): void {
  if (!cert.isCa)
    throw fieldError(field, 'is not a CA certificate (basicConstraints cA is not true); a registry credential must be the CA that signs device certificates');
  const weak = keyStrengthProblem(cert);
  if (weak !== undefined) throw fieldError(field, weak);
  if (cert.notAfter.getTime() <= now.getTime())
    throw fieldError(field, `expired at ${cert.notAfter.toISOString()}`);
}

/** SHA-256 of each credential certificate of an unchecked list that parses, to look their issuers up before checking. */
export function registryCaFingerprints(raw: unknown): string[] {
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((credential: unknown) => {
    const certificate = (credential as { publicKeyCertificate?: { certificate?: unknown } } | null)?.publicKeyCertificate?.certificate;
    try {
      return [parseCertificatePem(certificate, FIELD).sha256];
    } catch {
      return []; // checkRegistryCredentials says what is wrong with it
    }
  });
}

/** The registry's CA certificates, parsed (they were checked when saved). */
export function registryCaCertificates(credentials: readonly RegistryCredential[]): ParsedCertificate[] {
  return credentials.map((c, i) => parseCertificatePem(c.publicKeyCertificate.certificate, `${FIELD}[${i}]`));
}

/** The revocation key of a registry CA certificate (SHA-256 of its DER). */
export const caKeyOf = (credential: RegistryCredential): CertificateKey =>
  certificateKey(parseCertificatePem(credential.publicKeyCertificate.certificate, 'credential').sha256);

/** Absent or UNSPECIFIED means the default, JWT_OR_CERTIFICATE, which is what gets stored. */
export function checkDeviceAuthMethod(value: unknown, field = 'deviceRegistry.deviceAuthMethod'): DeviceAuthMethod {
  if (value === undefined || value === 'DEVICE_AUTH_METHOD_UNSPECIFIED') return 'JWT_OR_CERTIFICATE';
  return checkEnum(DEVICE_AUTH_METHODS, value, field);
}
