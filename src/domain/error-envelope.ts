/**
 * The google.rpc error envelope (reference §3.8) that every HTTP surface of Keyway answers a
 * failure with — the admin API and the device bridge alike — with a google.rpc.BadRequest detail
 * when request fields are at fault. Internal failures get a generic message: nothing about the
 * server's inner workings leaks out. Framework errors are read by their shape (Fastify's 4xx
 * errors, Ajv validation errors), so this module depends on no framework.
 */
import { isKeywayError, RPC_CODES, type FieldViolation, type RpcStatus } from './errors.js';

export const BAD_REQUEST_TYPE = 'type.googleapis.com/google.rpc.BadRequest';
const INTERNAL_MESSAGE = 'Internal error encountered.';

/** `{"error": {code, message, status, details?}}`, `code` being the HTTP status. */
export interface ErrorEnvelope {
  readonly error: {
    readonly code: number;
    readonly message: string;
    readonly status: string;
    readonly details?: ReadonlyArray<{
      readonly '@type': string;
      readonly fieldViolations?: ReadonlyArray<{ readonly field: string; readonly description: string }>;
    }>;
  };
}

export function envelope(
  httpStatus: number,
  status: string,
  message: string,
  violations: readonly FieldViolation[] = [],
): ErrorEnvelope {
  return {
    error: {
      code: httpStatus,
      message,
      status,
      ...(violations.length
        ? { details: [{ '@type': BAD_REQUEST_TYPE, fieldViolations: violations.map((v) => ({ ...v })) }] }
        : {}),
    },
  };
}

export interface ErrorReply {
  readonly httpStatus: number;
  readonly body: ErrorEnvelope;
  /** True when the cause is the server's, not the caller's: it goes to the log at error level. */
  readonly internal: boolean;
}

export const errorReply = (httpStatus: number, status: string, message: string, violations?: readonly FieldViolation[]): ErrorReply => ({
  httpStatus,
  body: envelope(httpStatus, status, message, violations),
  internal: false,
});

/** Plain-language descriptions of schema patterns, by pattern (Ajv would only quote the regex). */
export type PatternDescriptions = ReadonlyMap<string, string>;

/** What an Ajv error looks like inside a Fastify validation error. */
interface AjvError {
  readonly instancePath: string;
  readonly keyword: string;
  readonly params: Record<string, unknown>;
  readonly message?: string;
}

/** `/credentials/0/publicKey` → `credentials[0].publicKey` (JSON pointer unescaped). */
function fieldPath(instancePath: string, leaf?: string): string {
  const segments = instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (leaf !== undefined) segments.push(leaf);
  return segments.reduce((path, s) => (/^\d+$/.test(s) ? `${path}[${s}]` : path ? `${path}.${s}` : s), '');
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean',
  object: 'a JSON object',
  array: 'a list',
};

function describeType(type: unknown): string {
  const types = String(type).split(',');
  return `must be ${types.map((t) => TYPE_NAMES[t] ?? t).join(' or ')}`;
}

/** One Ajv error as a field violation, in words a caller can act on. */
export function violationOf(
  error: AjvError,
  context: string | undefined,
  patterns: PatternDescriptions = new Map(),
): FieldViolation & { unknownField: boolean } {
  const p = error.params;
  switch (error.keyword) {
    case 'additionalProperties': {
      const name = String(p.additionalProperty);
      const parent = fieldPath(error.instancePath);
      const where = context === 'querystring' ? 'Cannot bind query parameter' : 'Cannot find field';
      return {
        field: fieldPath(error.instancePath, name),
        description: `Unknown name "${name}"${parent ? ` at '${parent}'` : ''}: ${where}.`,
        unknownField: true,
      };
    }
    case 'required':
      return { field: fieldPath(error.instancePath, String(p.missingProperty)), description: 'is required', unknownField: false };
    case 'pattern':
      return {
        field: fieldPath(error.instancePath),
        description: patterns.get(String(p.pattern)) ?? `must match ${String(p.pattern)}`,
        unknownField: false,
      };
    case 'enum':
      return {
        field: fieldPath(error.instancePath),
        description: `must be one of ${(p.allowedValues as unknown[]).map(String).join(', ')}`,
        unknownField: false,
      };
    case 'type':
      return { field: fieldPath(error.instancePath), description: describeType(p.type), unknownField: false };
    default:
      return { field: fieldPath(error.instancePath), description: error.message ?? 'is invalid', unknownField: false };
  }
}

function validationReply(errors: readonly AjvError[], context: string | undefined, patterns: PatternDescriptions): ErrorReply {
  const first = errors[0];
  if (first === undefined) return errorReply(400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.');
  const { unknownField, ...violation } = violationOf(first, context, patterns);
  const whole = violation.field === '';
  const shown = whole ? { field: context === 'body' ? 'body' : (context ?? 'request'), description: violation.description } : violation;
  const message = unknownField
    ? `Invalid JSON payload received. ${violation.description}`
    : `Invalid value at '${shown.field}': ${shown.description}`;
  return errorReply(400, 'INVALID_ARGUMENT', message, [shown]);
}

const STATUS_BY_HTTP: Record<number, RpcStatus> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
};

const INTERNAL_STATUSES: ReadonlySet<RpcStatus> = new Set(['INTERNAL', 'UNKNOWN', 'DATA_LOSS']);

interface FrameworkError {
  readonly statusCode?: number;
  readonly message?: string;
  readonly validation?: readonly AjvError[];
  readonly validationContext?: string;
}

/** Maps anything a request may throw to the envelope the caller sees. */
export function replyForError(error: unknown, patterns: PatternDescriptions = new Map()): ErrorReply {
  if (isKeywayError(error)) {
    if (INTERNAL_STATUSES.has(error.status)) {
      return { ...errorReply(500, 'INTERNAL', INTERNAL_MESSAGE), internal: true };
    }
    return errorReply(error.httpStatus, error.status, error.message, error.fieldViolations);
  }
  const e = (typeof error === 'object' && error !== null ? error : {}) as FrameworkError;
  if (Array.isArray(e.validation)) return validationReply(e.validation, e.validationContext, patterns);
  const http = e.statusCode;
  if (typeof http === 'number' && http >= 400 && http < 500) {
    // Fastify's own 4xx errors (bad JSON, body too large, media type) carry safe messages.
    return errorReply(http, STATUS_BY_HTTP[http] ?? 'INVALID_ARGUMENT', e.message ?? 'Bad request.');
  }
  return { ...errorReply(RPC_CODES.INTERNAL.http, 'INTERNAL', INTERNAL_MESSAGE), internal: true };
}
