/**
 * Provisioning templates of registry CA credentials (just-in-time provisioning, reference aws
 * §1): `${Field}` placeholders filled from the connecting certificate. A template is checked
 * when it is saved — unknown field names, a device id every device would share, values beyond
 * the device limits — so that a mistake shows up to the operator, not as refused devices.
 * Applying it can still fail for one certificate (a field it lacks, an id it makes invalid);
 * that failure says exactly which.
 */
import type { IssuedFields } from '../domain/authorities.js';
import { fieldError, isKeywayError } from '../domain/errors.js';
import { isResourceId } from '../domain/names.js';
import { GATEWAY_TYPES, type GatewayType, type ProvisioningTemplate } from '../domain/resources.js';
import { CERTIFICATE_FIELD_NAMES, type CertificateFieldName } from '../identity/x509-certificate.js';
import { checkMetadata } from './device-rules.js';
import { checkConfigData } from './payload-rules.js';
import { checkEnum } from './registry-rules.js';

/** `${Name}`; anything else starting with `$` is a mistake. */
const PLACEHOLDER = /\$\{([^}]*)\}/g;
/** Characters a device id may hold besides placeholders (names.ts RESOURCE_ID alphabet). */
const ID_LITERAL = /^[a-zA-Z0-9\-._+~%]*$/;
const TEMPLATE_KEYS = new Set(['deviceId', 'metadata', 'configData', 'gatewayType']);

const allowedList = (): string => CERTIFICATE_FIELD_NAMES.join(', ');

/**
 * The subject fields every certificate a CA issues is known to carry, when the CA's profile is
 * known (Keyway's own CAs): a template on such a CA may use only those, and naming another is
 * refused when the template is saved rather than when every device is refused at connect.
 */
/** Which CAs' device certificates have a known subject (by the SHA-256 of the CA certificate's DER). */
export interface IssuerProfiles {
  issuedFields(caDerSha256s: readonly string[]): Promise<ReadonlyMap<string, IssuedFields>>;
}

/** The field names a text uses; throws on a malformed or unknown placeholder, or one `known` rules out. */
function placeholdersOf(text: string, field: string, known?: IssuedFields): CertificateFieldName[] {
  const names: CertificateFieldName[] = [];
  for (const m of text.matchAll(PLACEHOLDER)) {
    const name = m[1] ?? '';
    if (!CERTIFICATE_FIELD_NAMES.includes(name))
      throw fieldError(field, `names the unknown certificate field '${name.slice(0, 64)}'; allowed: ${allowedList()}`);
    if (known && !known.fields.includes(name as CertificateFieldName))
      throw fieldError(
        field,
        `names the certificate field '${name}', which the device certificates of ${known.issuer} do not have; they carry ${known.fields.join(', ')}`,
      );
    names.push(name as CertificateFieldName);
  }
  // A '$' outside a complete placeholder (`$CommonName`, `${CommonName`) would stay literal by
  // accident: refuse it rather than guess.
  if (text.replace(PLACEHOLDER, '').includes('$'))
    throw fieldError(field, `has a '$' that is not part of a \${FieldName} placeholder; allowed names: ${allowedList()}`);
  return names;
}

/**
 * Checks a template as it is saved on a registry credential; `field` names it in errors. `known`:
 * the fields the CA's certificates are known to carry, when they are.
 */
export function checkProvisioningTemplate(raw: unknown, field: string, known?: IssuedFields): ProvisioningTemplate {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fieldError(field, 'must be an object');
  const t = raw as Record<string, unknown>;
  for (const key of Object.keys(t))
    if (!TEMPLATE_KEYS.has(key)) throw fieldError(`${field}.${key.slice(0, 64)}`, 'is not a provisioning template field');

  const idField = `${field}.deviceId`;
  if (typeof t.deviceId !== 'string' || t.deviceId === '')
    throw fieldError(idField, 'is required, e.g. "${CommonName}" or "sensor-${SerialNumber}"');
  if (t.deviceId.length > 255) throw fieldError(idField, 'must be at most 255 characters');
  if (placeholdersOf(t.deviceId, idField, known).length === 0)
    throw fieldError(idField, 'must hold at least one ${FieldName} placeholder; a fixed id would be the same for every device');
  if (!ID_LITERAL.test(t.deviceId.replace(PLACEHOLDER, '')))
    throw fieldError(idField, 'may hold only letters, digits and - . _ + ~ % besides placeholders');

  let metadata: Record<string, string> | undefined;
  if (t.metadata !== undefined) {
    metadata = checkMetadata(t.metadata, `${field}.metadata`);
    for (const [key, value] of Object.entries(metadata)) placeholdersOf(value, `${field}.metadata.${key}`, known);
  }
  const configData = t.configData === undefined ? undefined : checkConfigData(t.configData, `${field}.configData`);
  const gatewayType: GatewayType | undefined =
    t.gatewayType === undefined ? undefined : checkEnum(GATEWAY_TYPES, t.gatewayType, `${field}.gatewayType`);
  return {
    deviceId: t.deviceId,
    ...(metadata !== undefined ? { metadata } : {}),
    ...(configData !== undefined ? { configData } : {}),
    ...(gatewayType !== undefined ? { gatewayType } : {}),
  };
}

export type AppliedTemplate =
  | {
      readonly ok: true;
      readonly deviceId: string;
      readonly metadata: Readonly<Record<string, string>>;
      readonly configData: Buffer;
      readonly gatewayType: GatewayType;
    }
  | { readonly ok: false; readonly reason: string };

class MissingField extends Error {}

function fill(text: string, fields: Partial<Record<CertificateFieldName, string>>, usedBy: string): string {
  return text.replace(PLACEHOLDER, (_, name: string) => {
    const value = fields[name as CertificateFieldName];
    if (value === undefined) throw new MissingField(`certificate has no ${name}, which the template's ${usedBy} needs`);
    return value;
  });
}

/** The device a certificate with these fields (identity/x509-certificate certificateFields) becomes. */
export function applyProvisioningTemplate(
  template: ProvisioningTemplate,
  fields: Partial<Record<CertificateFieldName, string>>,
): AppliedTemplate {
  try {
    const deviceId = fill(template.deviceId, fields, 'deviceId');
    if (!isResourceId(deviceId))
      return {
        ok: false,
        reason: `the template makes device id '${deviceId.slice(0, 64)}', which is not a valid device id (3–255 characters, starting with a letter)`,
      };
    const filled: Record<string, string> = {};
    for (const [key, value] of Object.entries(template.metadata ?? {})) filled[key] = fill(value, fields, `metadata.${key}`);
    const metadata = checkMetadata(filled, 'metadata');
    return {
      ok: true,
      deviceId,
      metadata,
      configData: template.configData ?? Buffer.alloc(0),
      gatewayType: template.gatewayType ?? 'GATEWAY_TYPE_UNSPECIFIED',
    };
  } catch (e) {
    if (e instanceof MissingField) return { ok: false, reason: e.message };
    if (isKeywayError(e)) return { ok: false, reason: `the template's result is refused: ${e.message}` };
    throw e;
  }
}
