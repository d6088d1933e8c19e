/**
 * Policy variables: `${name}` inside a resource, resolved per connection from a PolicyContext.
 *
 *   ${registry.id}            the registry the device belongs to
 *   ${device.id}              the device id (never its numeric id)
 *   ${device.numId}           the device's numeric id (decimal)
 *   ${device.metadata.KEY}    the value of the device's metadata KEY
 *   ${cert.subject.F}         a subject attribute of the client certificate the device connected
 *                             with (F ∈ CN, O, OU, C, ST, L, serialNumber, dnQualifier; the first
 *                             value when several); absent when the device authenticated by JWT
 *
 * A value that is missing, empty, longer than MAX_VARIABLE_VALUE_BYTES, or that contains '/', '+',
 * '#' or NUL (or starts a topic with '$') could change the shape of the resource — turn a level
 * into a wildcard, add levels, reach a system topic — so it is *unresolved*: the resource it sits
 * in matches nothing (AWS leaves `${…}` in place and fails the match; same outcome). It never
 * falls back to a wildcard.
 */
import { fieldError } from '../domain/errors.js';

export const CERT_SUBJECT_FIELDS = ['CN', 'O', 'OU', 'C', 'ST', 'L', 'serialNumber', 'dnQualifier'] as const;
export type CertSubjectField = (typeof CERT_SUBJECT_FIELDS)[number];

/** The facts of one connection that variables read. */
export interface PolicyContext {
  readonly registryId: string;
  readonly deviceId: string;
  readonly deviceNumId: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Subject attributes of the client certificate; absent (or partial) when not authenticated by one. */
  readonly certSubject?: Readonly<Partial<Record<CertSubjectField, string>>>;
}

/** Longest substituted value (as AWS: longer values fail substitution). */
export const MAX_VARIABLE_VALUE_BYTES = 1024;

/** Metadata keys as the device manager accepts them (registry/device-rules.ts). */
const METADATA_KEY = /^[a-zA-Z][a-zA-Z0-9-_.+~%]{0,127}$/;
const FIXED_VARIABLES = new Set(['registry.id', 'device.id', 'device.numId']);
/** Variables that name one device: a resource holding one of them is per-device (lint.ts). */
const PER_DEVICE = new Set(['device.id', 'device.numId', 'cert.subject.CN']);

export const isPerDeviceVariable = (name: string): boolean => PER_DEVICE.has(name);

/** Why `name` (the text between `${` and `}`) is not a known variable, or undefined. */
export function variableProblem(name: string): string | undefined {
  if (FIXED_VARIABLES.has(name)) return undefined;
  if (name.startsWith('device.metadata.')) {
    const key = name.slice('device.metadata.'.length);
    return METADATA_KEY.test(key) ? undefined : `'${key}' is not a valid metadata key`;
  }
  if (name.startsWith('cert.subject.')) {
    const f = name.slice('cert.subject.'.length);
    return (CERT_SUBJECT_FIELDS as readonly string[]).includes(f)
      ? undefined
      : `certificate subject field '${f}' is not one of ${CERT_SUBJECT_FIELDS.join(', ')}`;
  }
  return `unknown variable '\${${name}}' (known: \${registry.id}, \${device.id}, \${device.numId}, \${device.metadata.KEY}, \${cert.subject.FIELD})`;
}

/** A piece of a resource level: literal text or a variable. */
export type TemplatePart = { readonly text: string } | { readonly variable: string };

/**
 * Splits one resource level into literal text and variables; throws a field error for an
 * unterminated `${` or an unknown variable. A '$' not followed by '{' is literal.
 */
export function parseLevelTemplate(level: string, field: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let pos = 0;
  for (;;) {
    const start = level.indexOf('${', pos);
    if (start === -1) break;
    const end = level.indexOf('}', start + 2);
    if (end === -1) throw fieldError(field, "has '${' without a closing '}'");
    const name = level.slice(start + 2, end);
    const problem = variableProblem(name);
    if (problem) throw fieldError(field, problem);
    if (start > pos) parts.push({ text: level.slice(pos, start) });
    parts.push({ variable: name });
    pos = end + 1;
  }
  if (pos < level.length) parts.push({ text: level.slice(pos) });
  return parts;
}

/** The variables a resource uses. */
export function variablesOf(resource: string): string[] {
  return [...resource.matchAll(/\$\{([^}]*)\}/g)].map((m) => m[1] as string);
}

/** The raw value of a variable in a context, or undefined when the context has none. */
export function variableValue(name: string, ctx: PolicyContext): string | undefined {
  switch (name) {
    case 'registry.id':
      return ctx.registryId;
    case 'device.id':
      return ctx.deviceId;
    case 'device.numId':
      return ctx.deviceNumId;
  }
  if (name.startsWith('device.metadata.')) {
    const key = name.slice('device.metadata.'.length);
    return Object.prototype.hasOwnProperty.call(ctx.metadata, key) ? ctx.metadata[key] : undefined;
  }
  if (name.startsWith('cert.subject.') && ctx.certSubject) {
    const f = name.slice('cert.subject.'.length) as CertSubjectField;
    return Object.prototype.hasOwnProperty.call(ctx.certSubject, f) ? ctx.certSubject[f] : undefined;
  }
  return undefined;
}

/**
 * Why a value may not be substituted, or undefined when it is safe. `startsTopic`: the value
 * would begin the topic, where a leading '$' would reach the reserved system topics.
 */
export function unsafeValueProblem(value: string | undefined, startsTopic: boolean): string | undefined {
  if (value === undefined) return 'has no value';
  if (value === '') return 'is empty';
  // eslint-disable-next-line no-control-regex -- NUL is exactly what must be refused
  if (/[/+#\u0000]/.test(value)) return "contains '/', '+', '#' or NUL";
  if (startsTopic && value.startsWith('$')) return "starts the topic with '$'";
  if (Buffer.byteLength(value, 'utf8') > MAX_VARIABLE_VALUE_BYTES) return `exceeds ${MAX_VARIABLE_VALUE_BYTES} bytes`;
  return undefined;
}

/**
 * Fields of identity/x509-certificate.ts `certificateFields()` mapped to the short names policy
 * variables use, so the broker can hand the parsed certificate's fields over as they are.
 */
export function certSubjectFromFields(fields: {
  readonly CommonName?: string;
  readonly Organization?: string;
  readonly OrganizationalUnit?: string;
  readonly Country?: string;
  readonly StateName?: string;
  readonly Locality?: string;
  readonly SubjectSerialNumber?: string;
  readonly DistinguishedNameQualifier?: string;
}): Partial<Record<CertSubjectField, string>> {
  const out: Partial<Record<CertSubjectField, string>> = {};
  const pairs: [CertSubjectField, string | undefined][] = [
    ['CN', fields.CommonName],
    ['O', fields.Organization],
    ['OU', fields.OrganizationalUnit],
    ['C', fields.Country],
    ['ST', fields.StateName],
    ['L', fields.Locality],
    ['serialNumber', fields.SubjectSerialNumber],
    ['dnQualifier', fields.DistinguishedNameQualifier],
  ];
  for (const [k, v] of pairs) if (v !== undefined) out[k] = v;
  return out;
}
