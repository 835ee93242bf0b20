import { nextPageLink, pageRequest } from './page-query.ts';
import { jsonResponse, type HandlerContext, type MethodTable } from './resource.ts';
import type { HttpResponse } from './types.ts';

/**
 * The name listings: `/v2/<name>/tags/list` and `/v2/_catalog`, one bounded page each (the core's bounds), with a
 * `Link` to the next page.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#listing-tags
 */
export const tags: MethodTable<'tags'> = { GET: listTags };
export const catalog: MethodTable<'catalog'> = { GET: listCatalog };

async function listTags({ registry, route, request }: HandlerContext<'tags'>): Promise<HttpResponse> {
  const page = pageRequest(request);
  const result = await registry.listTags(route.name, page);
  const link = nextPageLink(`/v2/${route.name}/tags/list`, page, result, result.items.at(-1));
  return jsonResponse(200, { name: route.name, tags: result.items }, link);
}

async function listCatalog({ registry, request, access }: HandlerContext<'catalog'>): Promise<HttpResponse> {
  const page = pageRequest(request);
  const result = await registry.listRepositories(page, access.catalogFilter);
  return jsonResponse(200, { repositories: result.items }, nextPageLink('/v2/_catalog', page, result, result.items.at(-1)));
}
