/**
 * Admin authentication and authorization: `Authorization: Bearer <admin token, API key or service
 * account JWT>` on
 * every route but the health check, and the route's permission checked against the caller's role
 * bindings, both in the onRequest hook, before the body is read, parsed or validated.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BOOTSTRAP_ADMIN, principalName, type Principal } from '../domain/roles.js';
import { API_KEY_PREFIX, looksLikeJwt } from '../registry/service-accounts.js';
import { errorReply } from './error-envelope.js';
import { authorize, type RouteAccess } from './permissions.js';

/** Longer headers are refused without being handed to the verifier. */
const MAX_TOKEN_LENGTH = 4096;
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The token of an `Authorization: Bearer …` header, or undefined when there is none. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined || header.length > MAX_TOKEN_LENGTH + 16) return undefined;
  return BEARER.exec(header)?.[1];
}

export interface AdminAuthenticators {
  /** Constant-time check of the bootstrap admin token: every permission everywhere. */
  readonly verifyAdminToken: (token: string) => boolean;
  /** The service account behind an API key (`kwk_…`) or a JWT it signed, or undefined when it is refused. */
  readonly authenticateApiKey?: (key: string) => Promise<Principal | undefined>;
}

/** Set by the hook once a caller is authenticated: the audit hook names it as the actor. */
const principals = new WeakMap<FastifyRequest, Principal>();
export const principalOf = (request: FastifyRequest): Principal | undefined => principals.get(request);

async function authenticate(token: string, auth: AdminAuthenticators): Promise<Principal | undefined> {
  try {
    // Told apart by shape: `kwk_…` has no dots, a compact JWS has exactly two, admin tokens are `kwt_…`.
    if (token.startsWith(API_KEY_PREFIX) || looksLikeJwt(token)) return auth.authenticateApiKey ? await auth.authenticateApiKey(token) : undefined;
    return auth.verifyAdminToken(token) ? BOOTSTRAP_ADMIN : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Authenticates the caller, then checks the route's permission on the project and registry of
 * its path (routes without an access declaration, i.e. unknown paths, need authentication only).
 */
export function adminAuthHook(auth: AdminAuthenticators) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const access = request.routeOptions.config as Partial<RouteAccess> & { public?: boolean } | undefined;
    if (access?.public === true || access?.permission === 'public') return;
    const token = bearerToken(request.headers.authorization);
    const principal = token === undefined ? undefined : await authenticate(token, auth);
    if (principal !== undefined) {
      principals.set(request, principal);
      if (access?.permission === undefined) return;
      const params = request.params as Record<string, string | undefined>;
      if (authorize(principal, access as RouteAccess, params, request.query as Record<string, unknown>)) return;
      request.log.warn({ method: request.method, url: request.url, caller: principalName(principal), permission: access.permission }, 'admin request denied');
      const refusal = errorReply(
        403,
        'PERMISSION_DENIED',
        `Permission '${access.permission}' denied on resource '${request.url.split('?')[0] ?? ''}' (or it may not exist).`,
      );
      await reply.code(refusal.httpStatus).send(refusal.body);
      return;
    }
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
