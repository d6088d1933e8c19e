/**
 * Every failure leaves the admin API as the google.rpc error envelope (reference §3.8): the
 * envelope itself is shared with the device bridge (domain/error-envelope); this binds it to the
 * admin API's schema patterns, so that a pattern failure reads as what the field must be.
 */
import {
  replyForError as envelopeFor,
  violationOf as violationWith,
  type ErrorReply,
} from '../domain/error-envelope.js';
import { PATTERN_DESCRIPTIONS } from './json-schemas.js';

export { BAD_REQUEST_TYPE, envelope, errorReply, type ErrorReply } from '../domain/error-envelope.js';

/** One Ajv error as a field violation, in words a caller can act on. */
export const violationOf = (error: Parameters<typeof violationWith>[0], context: string | undefined): ReturnType<typeof violationWith> =>
  violationWith(error, context, PATTERN_DESCRIPTIONS);

/** Maps anything a request may throw to the envelope the caller sees. */
export const replyForError = (error: unknown): ErrorReply => envelopeFor(error, PATTERN_DESCRIPTIONS);
