import { isValidDigest } from './digest.ts';
import { nameUnknown } from './errors.ts';
import { assertName, isValidName, isValidTag } from './names.ts';
import { boundedPage, paginateBy, type BoundedPage } from './pagination.ts';
import type { MetadataStore } from './ports.ts';
import type { Descriptor, Page, PageRequest } from './types.ts';

/**
 * The three listings, each one bounded page (see pagination.ts), the same on every backend. `n=0` asks for nothing:
 * an empty page, after the store still answered NAME_UNKNOWN where that applies (stores are asked for at least one
 * entry: DynamoDB refuses `Limit: 0`).
 */

const EMPTY: Page<never> = { items: [], hasMore: false };

/** Tags of `name` in lexical order; NAME_UNKNOWN when the repository holds no manifest. */
export async function listTags(metadata: MetadataStore, name: string, page: PageRequest): Promise<Page<string>> {
  assertName(name);
  const bounded = boundedPage(page, isValidTag);
  const tags = await metadata.listTags(name, { ...bounded, limit: Math.max(bounded.limit, 1) });
  if (!tags) throw nameUnknown(name);
  return bounded.limit === 0 ? EMPTY : tags;
}

/** Repositories in lexical order; with `visible`, only those it accepts (the catalog of a caller with limited pull rights). */
export async function listRepositories(metadata: MetadataStore, page: PageRequest, visible?: (name: string) => boolean): Promise<Page<string>> {
  const bounded = boundedPage(page, isValidName);
  if (bounded.limit === 0) return EMPTY;
  return visible ? visibleRepositories(metadata, bounded, visible) : metadata.listRepositories(bounded);
}

/** Filtering may thin a store page, so read on (store pages of at least 100) until the answer is full. */
async function visibleRepositories(metadata: MetadataStore, page: BoundedPage, visible: (name: string) => boolean): Promise<Page<string>> {
  const items: string[] = [];
  const limit = Math.max(page.limit, 100);
  let last = page.last;
  for (;;) {
    const chunk = await metadata.listRepositories(last === undefined ? { limit } : { limit, last });
    for (const name of chunk.items) {
      if (!visible(name)) continue;
      if (items.length === page.limit) return { items, hasMore: true };
      items.push(name);
    }
    if (!chunk.hasMore || chunk.items.length === 0) return { items, hasMore: false };
    last = chunk.items.at(-1);
  }
}

/**
 * Referrers of `digest`, optionally of one artifact type, ordered by digest and paged by it (`last` is a digest).
 * The store answers every referrer of the subject and the page is cut here: a subject has few referrers, and the
 * answer, not the read, is what must stay bounded.
 */
export async function listReferrers(metadata: MetadataStore, name: string, digest: string, page: PageRequest, artifactType?: string): Promise<Page<Descriptor>> {
  const bounded = boundedPage(page, isValidDigest);
  const referrers = await metadata.listReferrers(name, digest);
  const matching = artifactType === undefined ? referrers : referrers.filter((descriptor) => descriptor.artifactType === artifactType);
  return paginateBy(matching, bounded, (descriptor) => descriptor.digest);
}
