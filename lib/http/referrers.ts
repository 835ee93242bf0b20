import { MediaType } from '../registry/manifest.ts';
import { nextPageLink, pageRequest } from './page-query.ts';
import { jsonResponse, type HandlerContext, type MethodTable } from './resource.ts';
import type { HttpResponse } from './types.ts';

/**
 * `/v2/<name>/referrers/<digest>`: an image index of the manifests whose subject is the digest, 200 even when empty.
 * `?artifactType=` filters, and the answer then says so in `OCI-Filters-Applied`. One bounded page, ordered by
 * digest; a `Link` names the next (the spec's pagination for referrers; `n` and `last` are ours, kept in the Link).
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#listing-referrers
 */
export const referrers: MethodTable<'referrers'> = { GET: list };

async function list({ registry, route, request }: HandlerContext<'referrers'>): Promise<HttpResponse> {
  const artifactType = request.query.get('artifactType') ?? undefined;
  const page = pageRequest(request);
  const result = await registry.listReferrers(route.name, route.digest, page, artifactType);
  const headers: Record<string, string> = { 'content-type': MediaType.ociIndex };
  if (artifactType !== undefined) headers['oci-filters-applied'] = 'artifactType';
  const filter: Record<string, string> = artifactType === undefined ? {} : { artifactType };
  Object.assign(headers, nextPageLink(`/v2/${route.name}/referrers/${route.digest}`, page, result, result.items.at(-1)?.digest, filter));
  return jsonResponse(200, { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: result.items }, headers);
}
