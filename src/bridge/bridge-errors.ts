/**
 * The device bridge's refusals as HTTP statuses in the google.rpc envelope (reference §2, §3.8).
 * Most come from KeywayError (domain/errors) through the shared envelope; these are the ones
 * whose HTTP status or headers the google.rpc code alone does not give: 401 with its challenge,
 * 413 for a payload over its limit, 429 with Retry-After.
 */
import { errorReply, replyForError, type ErrorReply } from '../domain/error-envelope.js';
import { RPC_CODES, type RpcStatus } from '../domain/errors.js';

export class HttpRefusal extends Error {
  override readonly name = 'HttpRefusal';
  constructor(
    readonly httpStatus: number,
    readonly status: RpcStatus,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

const BEARER_CHALLENGE = { 'www-authenticate': 'Bearer' };

/** The same words whatever was wrong (no token, a bad one, an unknown device): the reason goes to the log. */
export const unauthenticated = (): HttpRefusal =>
  new HttpRefusal(
    401,
    'UNAUTHENTICATED',
    "Request had invalid authentication credentials. Expected a valid device JWT as 'Authorization: Bearer <token>'.",
    BEARER_CHALLENGE,
  );

export const permissionDenied = (message: string): HttpRefusal => new HttpRefusal(403, 'PERMISSION_DENIED', message);

export const payloadTooLarge = (what: string, size: number, limit: number): HttpRefusal =>
  new HttpRefusal(413, 'INVALID_ARGUMENT', `The ${what} of ${size} bytes exceeds the limit of ${limit} bytes.`);

/** `what` says which limit, in words for the device. */
export const quotaExceeded = (what: string, retryAfterSeconds: number): HttpRefusal => {
  const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
  return new HttpRefusal(429, 'RESOURCE_EXHAUSTED', `${what} Retry after ${seconds} s.`, { 'retry-after': String(seconds) });
};

export const unavailable = (): HttpRefusal => new HttpRefusal(503, 'UNAVAILABLE', 'The service is currently unavailable.');

/** What the caller gets for anything a request threw, and the google.rpc code for the device's lastErrorStatus. */
export function bridgeReply(error: unknown): { readonly reply: ErrorReply; readonly headers: Readonly<Record<string, string>>; readonly code: number } {
  if (error instanceof HttpRefusal) {
    return { reply: errorReply(error.httpStatus, error.status, error.message), headers: error.headers, code: RPC_CODES[error.status].code };
  }
  const reply = replyForError(error);
  const status = reply.body.error.status as RpcStatus;
  return { reply, headers: {}, code: RPC_CODES[status]?.code ?? RPC_CODES.UNKNOWN.code };
}
