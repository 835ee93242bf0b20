import { OciError } from '../registry/errors.ts';
import { pageLimit } from '../registry/pagination.ts';
import type { Page, PageRequest } from '../registry/types.ts';
import type { HttpRequest } from './types.ts';

/**
 * `n` and `last` on listings, and the `Link` to the next page. The bounds (default and maximum page size) are the
 * core's; here only the syntax: `n` is a decimal integer of any size (a huge one is clamped, not refused).
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#listing-tags
 */

/** The page a listing asks for; an `n` that is not a non-negative integer is PAGINATION_NUMBER_INVALID (400). */
export function pageRequest(request: HttpRequest): PageRequest {
  const page: PageRequest = {};
  const n = request.query.get('n');
  if (n !== null) {
    if (!/^\d+$/.test(n)) throw new OciError('PAGINATION_NUMBER_INVALID', 'invalid number of results requested', { n });
    page.limit = Number(n);
  }
  const last = request.query.get('last');
  if (last !== null && last !== '') page.last = last;
  return page;
}

/**
 * RFC 8288 `Link` to the page after `result` (none when it was the last), angle brackets included (clients parse
 * them). `n` is the page size served, so a clamped request pages on at the maximum.
 */
export function nextPageLink(path: string, page: PageRequest, result: Page<unknown>, last: string | undefined, query: Record<string, string> = {}): Record<string, string> {
  if (!result.hasMore || last === undefined) return {};
  const params = new URLSearchParams(query);
  params.set('n', String(pageLimit(page)));
  params.set('last', last);
  return { link: `<${path}?${params}>; rel="next"` };
}
