import type { Page, PageRequest } from './types.ts';

/** Every item of a paged listing, page after page (retention reads whole repositories). */
export async function listAll<T extends string>(list: (page: PageRequest) => Promise<Page<T>>): Promise<T[]> {
  const items: T[] = [];
  for (let last: T | undefined; ; ) {
    const page = await list(last === undefined ? { limit: 1000 } : { limit: 1000, last });
    items.push(...page.items);
    if (!page.hasMore || page.items.length === 0) return items;
    last = page.items.at(-1);
  }
}
