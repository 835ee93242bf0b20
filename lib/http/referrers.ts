import { MediaType } from '../registry/manifest.ts';
import { jsonResponse, type HandlerContext, type MethodTable } from './resource.ts';
import type { HttpResponse } from './types.ts';

/**
 * `/v2/<name>/referrers/<digest>`: an image index of the manifests whose subject is the digest, 200 even when empty.
 * `?artifactType=` filters, and the answer then says so in `OCI-Filters-Applied`.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#listing-referrers
 */
export const referrers: MethodTable<'referrers'> = { GET: list };

async function list({ registry, route, request }: HandlerContext<'referrers'>): Promise<HttpResponse> {
  const artifactType = request.query.get('artifactType') ?? undefined;
  const manifests = await registry.listReferrers(route.name, route.digest, artifactType);
  const headers: Record<string, string> = { 'content-type': MediaType.ociIndex };
  if (artifactType !== undefined) headers['oci-filters-applied'] = 'artifactType';
  return jsonResponse(200, { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }, headers);
}
