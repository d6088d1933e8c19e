/**
 * Typed errors carrying a google.rpc code. Every layer throws these; the admin API turns them
 * into the google.rpc error envelope, the broker into a CONNACK/DISCONNECT and a lastErrorStatus.
 */

/** google.rpc.Code names with their numbers and the HTTP status the REST mapping gives them. */
export const RPC_CODES = {
  OK: { code: 0, http: 200 },
  CANCELLED: { code: 1, http: 499 },
  UNKNOWN: { code: 2, http: 500 },
  INVALID_ARGUMENT: { code: 3, http: 400 },
  DEADLINE_EXCEEDED: { code: 4, http: 504 },
  NOT_FOUND: { code: 5, http: 404 },
  ALREADY_EXISTS: { code: 6, http: 409 },
  PERMISSION_DENIED: { code: 7, http: 403 },
  RESOURCE_EXHAUSTED: { code: 8, http: 429 },
  FAILED_PRECONDITION: { code: 9, http: 400 },
  ABORTED: { code: 10, http: 409 },
  OUT_OF_RANGE: { code: 11, http: 400 },
  UNIMPLEMENTED: { code: 12, http: 501 },
  INTERNAL: { code: 13, http: 500 },
  UNAVAILABLE: { code: 14, http: 503 },
  DATA_LOSS: { code: 15, http: 500 },
  UNAUTHENTICATED: { code: 16, http: 401 },
} as const;

export type RpcStatus = keyof typeof RPC_CODES;

export interface FieldViolation {
  /** Path of the offending field in the request, e.g. `device.credentials[0].publicKey.key`. */
  readonly field: string;
  readonly description: string;
}

export class KeywayError extends Error {
  override readonly name = 'KeywayError';
  constructor(
    readonly status: RpcStatus,
    message: string,
    readonly fieldViolations: readonly FieldViolation[] = [],
  ) {
    super(message);
  }

  get code(): number {
    return RPC_CODES[this.status].code;
  }

  get httpStatus(): number {
    return RPC_CODES[this.status].http;
  }
}

export const invalidArgument = (message: string, ...violations: FieldViolation[]): KeywayError =>
  new KeywayError('INVALID_ARGUMENT', message, violations);

/** A single-field INVALID_ARGUMENT: the common case for validation rules. */
export const fieldError = (field: string, description: string): KeywayError =>
  new KeywayError('INVALID_ARGUMENT', `Invalid value at '${field}': ${description}`, [{ field, description }]);

export const notFound = (message: string): KeywayError => new KeywayError('NOT_FOUND', message);
export const alreadyExists = (message: string): KeywayError => new KeywayError('ALREADY_EXISTS', message);
export const failedPrecondition = (message: string): KeywayError =>
  new KeywayError('FAILED_PRECONDITION', message);

export const isKeywayError = (e: unknown): e is KeywayError => e instanceof KeywayError;
