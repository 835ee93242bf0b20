import type { ChunkInfo } from '../registry/blob-uploads.ts';
import type { BlobRecord } from '../registry/types.ts';
import { readContentRange, uploadPositionHeaders } from './ranges.ts';
import { declaredLength } from './request-body.ts';
import { NO_BODY, type HandlerContext, type MethodTable } from './resource.ts';
import type { HttpRequest, HttpResponse } from './types.ts';

/**
 * Blob uploads: `POST /v2/<name>/blobs/uploads/` opens one (or mounts, or takes the whole blob at once), and the
 * upload's URL takes chunks (PATCH), reports its position (GET), completes (PUT) or cancels (DELETE).
 * A rejected chunk is a core error that carries the upload's position; the error renderer turns it into 416 + Range.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#pushing-blobs
 */
export const uploadStart: MethodTable<'uploads'> = { POST: start };
export const upload: MethodTable<'upload'> = { GET: status, PATCH: patch, PUT: complete, DELETE: cancel };

async function start({ registry, route, request, access }: HandlerContext<'uploads'>): Promise<HttpResponse> {
  const { name } = route;
  const mount = request.query.get('mount');
  if (mount !== null) {
    const from = request.query.get('from') ?? undefined;
    // A mount the caller may not make is not an error: the client uploads instead (spec: fall back to 202).
    if (from !== undefined || access.automaticMount) {
      const record = await registry.mountBlob(name, mount, from, access.mayPull);
      if (record) return blobCreated(name, record);
    }
  }
  const digest = request.query.get('digest');
  if (digest !== null && mount === null) {
    return blobCreated(name, await registry.uploads.monolithic(name, digest, request.body, declaredLength(request)));
  }
  const session = await registry.uploads.start(name);
  const headers = accepted(session);
  if (registry.maxChunkLength !== undefined) {
    // Proposed in opencontainers/distribution-spec#485; no client reads it yet, our push tool does.
    headers['oci-chunk-max-length'] = String(registry.maxChunkLength);
  }
  return { status: 202, headers };
}

async function status({ registry, route }: HandlerContext<'upload'>): Promise<HttpResponse> {
  const session = await registry.uploads.get(route.name, route.uploadId);
  return { status: 204, headers: accepted(session) };
}

async function patch({ registry, route, request }: HandlerContext<'upload'>): Promise<HttpResponse> {
  const session = await registry.uploads.append(route.name, route.uploadId, request.body, chunkInfo(request));
  return { status: 202, headers: accepted(session) };
}

async function complete({ registry, route, request }: HandlerContext<'upload'>): Promise<HttpResponse> {
  const digest = request.query.get('digest') ?? undefined;
  const record = await registry.uploads.complete(route.name, route.uploadId, digest, request.body, chunkInfo(request));
  return blobCreated(route.name, record);
}

async function cancel({ registry, route }: HandlerContext<'upload'>): Promise<HttpResponse> {
  await registry.uploads.cancel(route.name, route.uploadId);
  return { status: 204, headers: {} };
}

function accepted(position: { name: string; uploadId: string; offset: number }): Record<string, string> {
  return { ...uploadPositionHeaders(position), ...NO_BODY };
}

function blobCreated(name: string, record: BlobRecord): HttpResponse {
  return {
    status: 201,
    headers: { location: `/v2/${name}/blobs/${record.digest}`, 'docker-content-digest': record.digest, ...NO_BODY },
  };
}

/** Content-Range and Content-Length of a chunk; a malformed Content-Range is left for the core to refuse with the upload's position. */
function chunkInfo(request: HttpRequest): ChunkInfo {
  const info: ChunkInfo = {};
  const length = declaredLength(request);
  if (length !== undefined) info.length = length;
  const contentRange = request.headers.get('content-range');
  if (contentRange) {
    const range = readContentRange(contentRange);
    if (range) info.range = range;
    info.rawRange = contentRange;
  }
  return info;
}
