/**
 * Admin API routes of the audit log (Keyway extension): `GET /v1/audit/entries` with filters and
 * paging, `GET /v1/audit:verify` to walk the hash chain. Appended to ADMIN_ROUTES in routes.ts.
 */
import type { AuditEntry, AuditReader, VerifyResult } from '../audit/audit-log.js';
import { AUDIT_OUTCOMES } from '../domain/audit-events.js';
import { fieldError, KeywayError } from '../domain/errors.js';
import { parseDevice } from '../domain/names.js';
import { enumOf, object, query, RFC3339_PATTERN, string, timestamp, type JsonSchema } from './json-schemas.js';
import type { ApiRoute, RouteDeps, RouteRequest } from './routes.js';

export const AUDIT_PAGE_SIZE_DEFAULT = 100;
export const AUDIT_PAGE_SIZE_MAX = 1000;

/** An entry on the wire: the log's entry with its time as RFC 3339, details as recorded. */
export type ApiAuditEntry = Omit<AuditEntry, 'time'> & { readonly time: string };

export interface ApiListAuditEntriesResponse {
  readonly entries?: ApiAuditEntry[];
  readonly nextPageToken?: string;
}

export interface ApiVerifyAuditResponse {
  readonly ok: boolean;
  readonly checked: number;
  readonly firstBad?: { readonly sequence: number; readonly problem: string; readonly message: string; readonly entry?: ApiAuditEntry };
}

const AuditEntrySchema: JsonSchema = object(
  'AuditEntry',
  {
    sequence: { type: 'integer' },
    time: timestamp,
    kind: string(),
    outcome: string(),
    actor: string(),
    subject: string(),
    reason: string(),
    // Whatever the producer recorded: before/after of a change, a count, a source address.
    details: {},
    prevHash: string(),
    hash: string(),
  },
  ['sequence', 'time', 'kind', 'outcome', 'actor', 'prevHash', 'hash'],
);

const ListAuditEntriesResponseSchema = object('ListAuditEntriesResponse', {
  entries: { type: 'array', items: AuditEntrySchema },
  nextPageToken: { type: 'string' },
});

const VerifyAuditResponseSchema = object(
  'VerifyAuditResponse',
  {
    ok: { type: 'boolean' },
    checked: { type: 'integer' },
    firstBad: object('AuditChainBreak', { sequence: { type: 'integer' }, problem: string(), message: string(), entry: AuditEntrySchema }),
  },
  ['ok', 'checked'],
);

function audit(deps: RouteDeps): AuditReader {
  if (!deps.audit) throw new KeywayError('UNIMPLEMENTED', 'This server has no audit log.');
  return deps.audit;
}

export function auditEntryToJson(e: AuditEntry): ApiAuditEntry {
  return {
    sequence: e.sequence,
    time: e.time.toISOString(),
    kind: e.kind,
    outcome: e.outcome,
    actor: e.actor,
    ...(e.subject !== undefined ? { subject: e.subject } : {}),
    ...(e.reason !== undefined ? { reason: e.reason } : {}),
    ...(e.details !== undefined ? { details: e.details } : {}),
    prevHash: e.prevHash,
    hash: e.hash,
  };
}

export function verifyToJson(r: VerifyResult): ApiVerifyAuditResponse {
  if (!r.firstBad) return { ok: r.ok, checked: r.checked };
  const { sequence, problem, message, entry } = r.firstBad;
  return { ok: r.ok, checked: r.checked, firstBad: { sequence, problem, message, ...(entry ? { entry: auditEntryToJson(entry) } : {}) } };
}

/** The page token is the last sequence returned, opaque to callers. */
const pageTokenOf = (sequence: number): string => Buffer.from(`after:${sequence}`).toString('base64url');

function afterSequence(token: string | undefined): number | undefined {
  if (token === undefined || token === '') return undefined;
  const m = /^after:([0-9]{1,15})$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (!m) throw fieldError('pageToken', 'is not a page token this API returned');
  return Number(m[1]);
}

const str = (q: RouteRequest['query'], key: string): string | undefined => (typeof q[key] === 'string' && q[key] !== '' ? (q[key] as string) : undefined);

function time(q: RouteRequest['query'], key: string): number | undefined {
  const v = str(q, key);
  if (v === undefined) return undefined;
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw fieldError(key, 'must be an RFC 3339 timestamp such as 2024-01-31T12:00:00Z');
  return ms;
}

/** A device's full resource name, checked; or a bare path is refused with a clear message. */
function deviceParty(q: RouteRequest['query']): string | undefined {
  const v = str(q, 'device');
  if (v === undefined) return undefined;
  const d = parseDevice(v, 'device');
  return `projects/${d.project}/locations/${d.location}/registries/${d.registry}/devices/${d.device}`;
}

export const AUDIT_ROUTES: readonly ApiRoute[] = [
  {
    operationId: 'keyway.audit.entries.list',
    permission: 'audit.entries.list',
    method: 'GET',
    path: '/v1/audit/entries',
    summary: 'Lists audit entries in sequence order, filtered by time, device, actor, outcome and kind.',
    query: {
      properties: {
        start: { type: 'string', pattern: RFC3339_PATTERN },
        end: { type: 'string', pattern: RFC3339_PATTERN },
        device: query.string,
        actor: query.string,
        outcome: enumOf(AUDIT_OUTCOMES),
        kind: { type: 'string', maxLength: 128 },
        pageSize: query.uint,
        pageToken: { type: 'string', maxLength: 64 },
      },
    },
    response: ListAuditEntriesResponseSchema,
    handle: async ({ query: q }, deps): Promise<ApiListAuditEntriesResponse> => {
      const pageSize = Math.min(Number(str(q, 'pageSize') ?? AUDIT_PAGE_SIZE_DEFAULT) || AUDIT_PAGE_SIZE_DEFAULT, AUDIT_PAGE_SIZE_MAX);
      const start = time(q, 'start');
      const end = time(q, 'end');
      if (start !== undefined && end !== undefined && end < start) throw fieldError('end', 'must not be before start');
      const party = deviceParty(q);
      const actor = str(q, 'actor');
      const outcome = str(q, 'outcome');
      const kind = str(q, 'kind');
      const after = afterSequence(str(q, 'pageToken'));
      // One more than asked tells whether another page follows.
      const found = await audit(deps).query({
        ...(start !== undefined ? { start } : {}),
        ...(end !== undefined ? { end } : {}),
        ...(party !== undefined ? { party } : {}),
        ...(actor !== undefined ? { actor } : {}),
        ...(outcome !== undefined ? { outcome } : {}),
        ...(kind !== undefined ? { kind } : {}),
        ...(after !== undefined ? { afterSequence: after } : {}),
        limit: pageSize + 1,
      });
      const page = found.slice(0, pageSize);
      const last = page[page.length - 1];
      return {
        ...(page.length > 0 ? { entries: page.map(auditEntryToJson) } : {}),
        ...(found.length > pageSize && last ? { nextPageToken: pageTokenOf(last.sequence) } : {}),
      };
    },
  },
  {
    operationId: 'keyway.audit.verify',
    permission: 'audit.verify',
    method: 'GET',
    path: '/v1/audit:verify',
    summary: 'Walks the hash chain and reports the first entry that was changed, removed or reordered.',
    response: VerifyAuditResponseSchema,
    handle: async (_request, deps) => verifyToJson(await audit(deps).verify()),
  },
];
