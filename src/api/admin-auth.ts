/**
 * Admin authentication: `Authorization: Bearer <admin token>` on every route but the health
 * check, decided in the onRequest hook, before the body is read, parsed or validated.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errorReply } from './error-envelope.js';

/** Longer headers are refused without being handed to the verifier. */
const MAX_TOKEN_LENGTH = 4096;
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The token of an `Authorization: Bearer …` header, or undefined when there is none. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined || header.length > MAX_TOKEN_LENGTH + 16) return undefined;
  return BEARER.exec(header)?.[1];
}

export interface RouteAccess {
  /** Reachable without a token (the health check only). */
  readonly public?: boolean;
}

export function adminAuthHook(verifyAdminToken: (token: string) => boolean) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if ((request.routeOptions.config as RouteAccess | undefined)?.public === true) return;
    const token = bearerToken(request.headers.authorization);
    let ok = false;
    if (token !== undefined) {
      try {
        ok = verifyAdminToken(token);
      } catch {
        ok = false;
      }
    }
    if (ok) return;
    request.log.warn(
      { method: request.method, url: request.url, ip: request.ip, presented: token !== undefined },
      'admin authentication refused',
    );
    const refusal = errorReply(
      401,
      'UNAUTHENTICATED',
      token === undefined
        ? 'Request is missing the admin bearer token (Authorization: Bearer <token>).'
        : 'Request had invalid authentication credentials.',
    );
    await reply
      .code(refusal.httpStatus)
      .header('www-authenticate', token === undefined ? 'Bearer realm="keyway"' : 'Bearer realm="keyway", error="invalid_token"')
      .send(refusal.body);
  };
}
