/**
 * The admin REST API (Cloud IoT Core v1 resource model, reference §3) on Fastify: the route
 * table from routes.ts, admin authentication, proto3 JSON, google.rpc error envelopes.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { CertificateAuthorities } from '../pki/certificate-authority-service.js';
import type { DeviceManager } from '../registry/device-manager.js';
import type { AuditReader } from '../audit/audit-log.js';
import type { AuditSink } from '../domain/audit-events.js';
import type { PolicyService } from '../registry/policy-service.js';
import { adminAuthHook, principalOf } from './admin-auth.js';
import { BOOTSTRAP_ADMIN, type Principal } from '../domain/roles.js';
import type { ServiceAccountService } from '../registry/service-accounts.js';
import { registerAuditHooks } from './audit-hook.js';
import { errorReply, replyForError } from './error-envelope.js';
import { normalizeKeys } from './field-names.js';
import { RawBody } from './raw-body.js';
import { buildOpenApiDocument } from './openapi.js';
import { ADMIN_ROUTES, fastifyUrl, querySchema, type ApiRoute } from './routes.js';

export interface AdminApiOptions {
  readonly manager: DeviceManager;
  /** Keyway's certificate authorities (`…/authorities` routes). */
  readonly authorities?: CertificateAuthorities;
  /** The audit log: admin requests are recorded in it and `/v1/audit…` routes read it. */
  readonly audit?: AuditSink & AuditReader;
  /** Device policies (`…/policies` routes, `…/devices/{d}:testPolicy`). */
  readonly policies?: PolicyService;
  /** Constant-time check of a presented admin token. */
  readonly verifyAdminToken: (token: string) => boolean;
  /** Service accounts: their routes, and API keys (`Bearer kwk_…`) as credentials. */
  readonly accounts?: ServiceAccountService;
  readonly logger: Logger;
  /**
   * PEM server certificate chain(s) and key(s), an ECDSA and an RSA one side by side if wanted;
   * without it the API speaks plain HTTP (tests, behind a TLS proxy).
   */
  readonly https?: { readonly cert: string | string[]; readonly key: string | string[] };
}

/** Large enough for any valid request (a 256 KB command is ~342 KB of base64). */
export const BODY_LIMIT = 1024 * 1024;

function register(app: FastifyInstance, route: ApiRoute, deps: Parameters<ApiRoute['handle']>[1]): void {
  const query = querySchema(route);
  app.route({
    method: route.method,
    url: fastifyUrl(route.path),
    config: {
      public: route.public === true || route.permission === 'public',
      permission: route.permission,
      ...(route.maskPermissions ? { maskPermissions: route.maskPermissions } : {}),
    },
    schema: {
      querystring: query,
      ...(route.body ? { body: route.body } : {}),
      response: { 200: route.response },
    },
    // snake_case keys become lowerCamelCase before validation (Google accepted both).
    preValidation: async (request) => {
      normalizeKeys(request.query, query);
      if (route.body) normalizeKeys(request.body, route.body);
    },
    handler: async (request, reply) => {
      const result = await route.handle(
        {
          params: request.params as Record<string, string>,
          query: request.query as Record<string, unknown>,
          body: request.body,
          principal: callerOf(request, route),
        },
        deps,
      );
      // A CRL goes out as itself, not as JSON.
      return result instanceof RawBody ? reply.type(result.contentType).send(result.body) : result;
    },
  });
}

/** The authenticated caller; public routes (the health check) act on no one's behalf. */
function callerOf(request: Parameters<typeof principalOf>[0], route: ApiRoute): Principal {
  const principal = principalOf(request);
  if (principal) return principal;
  if (route.permission === 'public') return BOOTSTRAP_ADMIN;
  throw new Error(`no authenticated caller on ${route.operationId}`);
}

/** Builds the admin API; the caller starts it with `.listen({ host, port })`. */
export async function createAdminApi(o: AdminApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: o.logger,
    // One line per request, written by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    requestTimeout: 30_000,
    routerOptions: { maxParamLength: 512 },
    // Refuse rather than repair: no type coercion, unknown fields are errors, stop at the first.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allowUnionTypes: true, allErrors: false } },
    ...(o.https ? { https: { cert: o.https.cert, key: o.https.key, minVersion: 'TLSv1.2' as const } } : {}),
  }) as unknown as FastifyInstance;

  const accounts = o.accounts;
  app.addHook(
    'onRequest',
    adminAuthHook({
      verifyAdminToken: o.verifyAdminToken,
      ...(accounts
        ? { authenticateApiKey: async (key: string) => {
            const r = await accounts.authenticate(key);
            return r.ok ? r.principal : undefined;
          } }
        : {}),
    }),
  );
  if (o.audit) registerAuditHooks(app, o.audit);
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      { method: request.method, url: request.url, statusCode: reply.statusCode, durationMs: Math.round(reply.elapsedTime) },
      'admin request',
    );
  });

  app.setErrorHandler(async (error, request, reply) => {
    const r = replyForError(error);
    if (r.internal) request.log.error({ err: error }, 'admin request failed');
    return reply.code(r.httpStatus).send(r.body);
  });
  app.setNotFoundHandler(async (request, reply) => {
    const r = errorReply(404, 'NOT_FOUND', `No such method: ${request.method} ${request.url.split('?')[0] ?? ''}`);
    return reply.code(r.httpStatus).send(r.body);
  });

  let openApi: object | undefined;
  const deps = {
    manager: o.manager,
    ...(o.authorities ? { authorities: o.authorities } : {}),
    ...(o.audit ? { audit: o.audit } : {}),
    ...(o.policies ? { policies: o.policies } : {}),
    ...(o.accounts ? { accounts: o.accounts } : {}),
    openApi: () => (openApi ??= buildOpenApiDocument(ADMIN_ROUTES)),
  };
  for (const route of ADMIN_ROUTES) register(app, route, deps);
  return app;
}
