import { OciError } from './errors.ts';
import type { Page, PageRequest } from './types.ts';

/**
 * Bounded listings: tags, the catalog and referrers answer at most one page, whatever the request. Without `n` a
 * page holds {@link DEFAULT_PAGE_SIZE} entries; a larger `n` is clamped to {@link MAX_PAGE_SIZE}. The bounds keep a
 * response well inside Lambda's 6 MB payload (10,000 names of 255 characters are 2.6 MB) and every store's page
 * size in range (DynamoDB's Query `Limit` is a 32-bit integer).
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#listing-tags
 */
export const DEFAULT_PAGE_SIZE = 1000;
export const MAX_PAGE_SIZE = 10_000;

/** How many entries a page request gets: `n` clamped to MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE without one. */
export function pageLimit(page: PageRequest): number {
  return Math.min(Math.floor(page.limit ?? DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE);
}

/** A page request after the bounds: `limit` always set, 0 to MAX_PAGE_SIZE. */
export interface BoundedPage extends PageRequest {
  limit: number;
}

/**
 * The page a listing serves. `last` must be a position of that listing (`isPosition`: a tag, a repository name, a
 * digest), else PAGINATION_NUMBER_INVALID: an arbitrary string could not be a store's start key.
 */
export function boundedPage(page: PageRequest, isPosition: (last: string) => boolean): BoundedPage {
  const limit = pageLimit(page);
  if (!(limit >= 0)) throw new OciError('PAGINATION_NUMBER_INVALID', 'invalid number of results requested', { n: page.limit });
  if (page.last !== undefined && !isPosition(page.last)) {
    throw new OciError('PAGINATION_NUMBER_INVALID', 'invalid pagination position: last names no entry of this list', { last: page.last });
  }
  const bounded: BoundedPage = { limit };
  if (page.last !== undefined) bounded.last = page.last;
  return bounded;
}

/** Applies `n`/`last` to a list of names: entries after `last` in lexical (code point) order, at most `limit`. */
export function paginate(names: Iterable<string>, page: PageRequest): Page<string> {
  return paginateBy(names, page, (name) => name);
}

/** {@link paginate} for entries keyed by `keyOf` (referrers by digest). */
export function paginateBy<T>(entries: Iterable<T>, page: PageRequest, keyOf: (entry: T) => string): Page<T> {
  const sorted = [...entries].sort((a, b) => compareNames(keyOf(a), keyOf(b)));
  const start = page.last === undefined ? 0 : sorted.findIndex((entry) => compareNames(keyOf(entry), page.last!) > 0);
  const rest = start < 0 ? [] : sorted.slice(start);
  if (page.limit === undefined || rest.length <= page.limit) return { items: rest, hasMore: false };
  return { items: rest.slice(0, page.limit), hasMore: true };
}

/** Code-point order, the order DynamoDB sorts string keys in (for ASCII names, identical to byte order). */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
