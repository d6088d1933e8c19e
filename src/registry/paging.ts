/**
 * Page sizes and page tokens. A token carries the last id of the page it ends (keyset paging:
 * stable under inserts and deletes), base64url-encoded so callers treat it as opaque.
 */
import { fieldError } from '../domain/errors.js';
import { isResourceId } from '../domain/names.js';
import { LIMITS, type PageRequest } from '../domain/resources.js';

const TOKEN_VERSION = 1;

export function pageSizeOf(page: PageRequest): number {
  const size = page.pageSize;
  if (size === undefined) return LIMITS.pageSizeDefault;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > LIMITS.pageSizeMax)
    throw fieldError('pageSize', `must be an integer from 1 to ${LIMITS.pageSizeMax}`);
  return size;
}

export function encodePageToken(lastId: string): string {
  return Buffer.from(JSON.stringify({ v: TOKEN_VERSION, after: lastId }), 'utf8').toString('base64url');
}

/** The id to continue after; undefined for the first page (absent or empty token). */
export function decodePageToken(token: string | undefined): string | undefined {
  if (token === undefined || token === '') return undefined;
  const invalid = () => fieldError('pageToken', 'is not a page token returned by a previous list call');
  if (typeof token !== 'string' || token.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(token)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (typeof parsed !== 'object' || parsed === null) throw invalid();
  const { v, after } = parsed as Record<string, unknown>;
  if (v !== TOKEN_VERSION || typeof after !== 'string' || !isResourceId(after)) throw invalid();
  return after;
}

/** Builds a page from up to `size + 1` items fetched: the extra one only says that more follow. */
export function toPage<T>(items: readonly T[], size: number, idOf: (item: T) => string) {
  if (items.length <= size) return { items };
  const kept = items.slice(0, size);
  const last = kept[kept.length - 1];
  return last === undefined ? { items: kept } : { items: kept, nextPageToken: encodePageToken(idOf(last)) };
}
