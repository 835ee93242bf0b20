import type { Page, PageRequest } from './types.ts';

/** Applies `n`/`last` to a list of names: entries after `last` in lexical (code point) order, at most `limit`. */
export function paginate(names: Iterable<string>, page: PageRequest): Page<string> {
  const sorted = [...names].sort(compareNames);
  const start = page.last === undefined ? 0 : sorted.findIndex((entry) => compareNames(entry, page.last!) > 0);
  const rest = start < 0 ? [] : sorted.slice(start);
  if (page.limit === undefined || rest.length <= page.limit) return { items: rest, hasMore: false };
  return { items: rest.slice(0, page.limit), hasMore: true };
}

/** Code-point order, the order DynamoDB sorts string keys in (for ASCII names, identical to byte order). */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
