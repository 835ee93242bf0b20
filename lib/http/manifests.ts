import { declaredLength } from './request-body.ts';
import { changeContext, NO_BODY, type HandlerContext, type MethodTable } from './resource.ts';
import type { HttpRequest, HttpResponse } from './types.ts';

/**
 * `/v2/<name>/manifests/<reference>`, by tag or digest. The size limit and every validation live in the core.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#pulling-manifests
 */
export const manifests: MethodTable<'manifest'> = { GET: (context) => get(context, !fromBrowser(context.request)), HEAD: (context) => get(context, false), PUT: put, DELETE: remove };

/**
 * A browser's fetch (the web console) sends Fetch Metadata headers; registry clients (docker, containerd, skopeo,
 * crane, oras) never do. Looking at an image in the console is not using it: counting it as a pull would keep alive
 * what `--expire-unpulled` is meant to expire. A client that sent the header on purpose only hides its own pulls.
 * @see https://www.w3.org/TR/fetch-metadata/
 */
function fromBrowser(request: HttpRequest): boolean {
  return request.headers.get('sec-fetch-site') !== null;
}

/** GET is a pull (recorded for the retention rules); HEAD only asks (docker and containerd check digests with it). */
async function get({ registry, route }: HandlerContext<'manifest'>, pull: boolean): Promise<HttpResponse> {
  const manifest = pull ? await registry.pullManifest(route.name, route.reference) : await registry.getManifest(route.name, route.reference);
  const headers = {
    'content-type': manifest.mediaType,
    'content-length': String(manifest.content.byteLength),
    'docker-content-digest': manifest.digest,
    etag: `"${manifest.digest}"`,
  };
  return { status: 200, headers, body: manifest.content };
}

async function put({ registry, route, request, access }: HandlerContext<'manifest'>): Promise<HttpResponse> {
  const { name, reference } = route;
  const contentType = request.headers.get('content-type') ?? undefined;
  const result = await registry.putManifest(name, reference, request.body, contentType, declaredLength(request), changeContext(access, request));
  const headers: Record<string, string> = {
    location: `/v2/${name}/manifests/${result.digest}`,
    'docker-content-digest': result.digest,
    ...NO_BODY,
  };
  if (result.subject !== undefined) headers['oci-subject'] = result.subject;
  return { status: 201, headers };
}

/** By digest: the manifest and its tags; by tag: the tag only (202 either way). */
async function remove({ registry, route, request, access }: HandlerContext<'manifest'>): Promise<HttpResponse> {
  await registry.deleteManifest(route.name, route.reference, changeContext(access, request));
  return { status: 202, headers: { ...NO_BODY } };
}
