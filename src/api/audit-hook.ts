/**
 * Records every admin API request that changes something (any method but GET and HEAD), and
 * every refused authentication, in the audit log: who, method and path, status, source address,
 * the resource before the change (read with the caller's own credentials just before the
 * handler runs), the request body and the response (the resource after the change). Values of secret-looking
 * fields are replaced, and large bodies are summarized, so the log holds no secrets and stays small.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditJson, AuditSink } from '../domain/audit-events.js';
import { principalName } from '../domain/roles.js';
import { principalOf } from './admin-auth.js';

/** Bodies larger than this (as JSON) are recorded by size only. */
const MAX_RECORDED_BODY = 16 * 1024;
const SECRET_FIELD = /secret|password|passphrase|privatekey|private_key|apikey|api_key|^token$|authorization/i;

const responses = new WeakMap<FastifyRequest, string>();
const befores = new WeakMap<FastifyRequest, unknown>();

/**
 * The resource a change acts on, when it is one resource rather than a collection: the path of a
 * PATCH or DELETE, or of a POST `…/{resource}:verb`. Resource names have an even number of
 * segments after `/v1/` (`projects/p/locations/l/registries/r`); collections an odd one.
 */
export function changedResource(method: string, path: string): string | undefined {
  const verb = method === 'POST' ? /^(.*\/[^/:]+):[A-Za-z]+$/.exec(path) : undefined;
  const resource = method === 'PATCH' || method === 'DELETE' ? path : verb?.[1];
  if (resource === undefined || !resource.startsWith('/v1/')) return undefined;
  const segments = resource.slice('/v1/'.length).split('/');
  return segments.length % 2 === 0 && segments.every((s) => s !== '') ? resource : undefined;
}

/** The value with secret-looking fields replaced; bounded in size. */
export function recordable(value: unknown): AuditJson | undefined {
  if (value === undefined) return undefined;
  let text: string;
  try {
    text = JSON.stringify(value, (key, v: unknown) => (key !== '' && SECRET_FIELD.test(key) ? '[redacted]' : v));
  } catch {
    return { unrecordable: true };
  }
  if (text === undefined) return undefined;
  if (text.length > MAX_RECORDED_BODY) return { truncated: true, bytes: text.length };
  return JSON.parse(text) as AuditJson;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined || text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return { bytes: text.length };
  }
}

export function registerAuditHooks(app: FastifyInstance, sink: AuditSink): void {
  // After authentication and validation: a refused request never reads anything.
  app.addHook('preHandler', async (request) => {
    const resource = changedResource(request.method, request.url.split('?')[0] ?? request.url);
    if (resource === undefined) return;
    const read = await app.inject({
      method: 'GET',
      url: resource,
      headers: request.headers.authorization ? { authorization: request.headers.authorization } : {},
    });
    if (read.statusCode === 200) befores.set(request, parseJson(read.body));
  });
  app.addHook('onSend', async (request, _reply, payload) => {
    if (request.method !== 'GET' && request.method !== 'HEAD' && typeof payload === 'string') responses.set(request, payload);
    return payload;
  });
  app.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode;
    const refused = status === 401;
    // A denied read is recorded too: probing what one may not see is worth knowing.
    const denied = status === 403;
    if (!refused && !denied && (request.method === 'GET' || request.method === 'HEAD')) return;
    const principal = principalOf(request);
    const path = request.url.split('?')[0] ?? request.url;
    const response = parseJson(responses.get(request));
    sink.record({
      kind: refused ? 'admin.authenticate' : 'admin.request',
      outcome: refused || denied ? 'denied' : status < 400 ? 'ok' : 'error',
      actor: principal ? principalName(principal) : 'anonymous',
      subject: `${request.method} ${path}`,
      ...(refused ? { reason: 'admin authentication refused' } : denied ? { reason: 'permission denied' } : {}),
      details: {
        method: request.method,
        path,
        status,
        source: request.ip,
        ...(principal?.kind === 'serviceAccount' ? { keyId: principal.keyId } : {}),
        ...(refused
          ? {}
          : {
              before: recordable(befores.get(request)),
              request: recordable(request.body),
              after: status < 400 ? recordable(response) : undefined,
            }),
        ...(status >= 400 ? { error: recordable(response) } : {}),
      },
    });
  });
}
