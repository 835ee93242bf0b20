import { OciError } from '../registry/errors.ts';
import type { Page, PageRequest } from '../registry/types.ts';
import type { HttpRequest } from './types.ts';

/**
 * `n` and `last` on listings, and the `Link` to the next page.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#listing-tags
 */

/** The page a listing asks for; a malformed `n` is PAGINATION_NUMBER_INVALID (400). */
export function pageRequest(request: HttpRequest): PageRequest {
  const page: PageRequest = {};
  const n = request.query.get('n');
  if (n !== null) {
    const limit = Number(n);
    if (n === '' || !Number.isSafeInteger(limit) || limit < 0) {
      throw new OciError('PAGINATION_NUMBER_INVALID', 'invalid number of results requested', { n });
    }
    page.limit = limit;
  }
  const last = request.query.get('last');
  if (last !== null && last !== '') page.last = last;
  return page;
}

/** RFC 8288 Link to the page after `last` (none when `last` is undefined), angle brackets included (clients parse them). */
export function nextPageLink(path: string, page: PageRequest, last: string | undefined): Record<string, string> {
  if (last === undefined) return {};
  const query = new URLSearchParams();
  if (page.limit !== undefined) query.set('n', String(page.limit));
  query.set('last', last);
  return { link: `<${path}?${query}>; rel="next"` };
}

/** Where the next page starts: the last item, when more follow. */
export function lastOfPage(result: Page<string>): string | undefined {
  return result.hasMore ? result.items.at(-1) : undefined;
}
