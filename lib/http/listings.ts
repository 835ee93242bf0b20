import type { Registry } from '../registry/registry.ts';
import type { Page, PageRequest } from '../registry/types.ts';
import { lastOfPage, nextPageLink, pageRequest } from './page-query.ts';
import { jsonResponse, type HandlerContext, type MethodTable } from './resource.ts';
import type { HttpResponse } from './types.ts';

/**
 * The name listings: `/v2/<name>/tags/list` and `/v2/_catalog`, paged by `n` and `last` with a `Link` to the next page.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#listing-tags
 */
export const tags: MethodTable<'tags'> = { GET: listTags };
export const catalog: MethodTable<'catalog'> = { GET: listCatalog };

async function listTags({ registry, route, request }: HandlerContext<'tags'>): Promise<HttpResponse> {
  const page = pageRequest(request);
  const result = await listOrEmpty(page, (p) => registry.listTags(route.name, p));
  return jsonResponse(200, { name: route.name, tags: result.items }, nextPageLink(`/v2/${route.name}/tags/list`, page, lastOfPage(result)));
}

async function listCatalog({ registry, request, access }: HandlerContext<'catalog'>): Promise<HttpResponse> {
  const page = pageRequest(request);
  const filter = access.catalogFilter;
  const result = await listOrEmpty(page, (p) => (filter ? visibleRepositories(registry, p, filter) : registry.listRepositories(p)));
  return jsonResponse(200, { repositories: result.items }, nextPageLink('/v2/_catalog', page, lastOfPage(result)));
}

/** Catalog pages of the repositories the caller may pull: filtering may thin a page, so read on until it is full. */
async function visibleRepositories(registry: Registry, page: PageRequest, visible: (name: string) => boolean): Promise<Page<string>> {
  const items: string[] = [];
  let last = page.last;
  for (;;) {
    const chunk = await registry.listRepositories(last === undefined ? { limit: 100 } : { limit: 100, last });
    for (const name of chunk.items) {
      if (!visible(name)) continue;
      if (page.limit !== undefined && items.length === page.limit) return { items, hasMore: true };
      items.push(name);
    }
    if (!chunk.hasMore || chunk.items.length === 0) return { items, hasMore: false };
    last = chunk.items.at(-1);
  }
}

/** `n=0` asks for nothing: an empty page (and no Link), after the store still answered NAME_UNKNOWN if it applies. */
async function listOrEmpty(page: PageRequest, list: (page: PageRequest) => Promise<Page<string>>): Promise<Page<string>> {
  if (page.limit !== 0) return list(page);
  await list({ ...page, limit: 1 });
  return { items: [], hasMore: false };
}
