import { OciError } from '../registry/errors.ts';
import type { BlobRecord } from '../registry/types.ts';
import { parseByteRange } from './ranges.ts';
import { NO_BODY, type HandlerContext, type MethodTable } from './resource.ts';
import type { HttpResponse } from './types.ts';

/**
 * `/v2/<name>/blobs/<digest>`. The blob store decides how bytes travel: a stream (fs, memory) or a 307 to a
 * presigned URL (S3); this module only writes the answer.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#pulling-blobs
 */
export const blobs: MethodTable<'blob'> = { HEAD: head, GET: get, DELETE: remove };

/**
 * Answered from metadata alone (no storage call), unless the store sends HEADs to S3: then a 307 to a presigned
 * HEAD URL, as distribution's S3 redirect does, so the size comes from S3 (a gateway that drops a HEAD's
 * Content-Length cannot touch S3's). A pull-through blob still being copied elsewhere is answered with the size
 * its upstream declared.
 */
async function head({ registry, route }: HandlerContext<'blob'>): Promise<HttpResponse> {
  const record = await registry.statBlob(route.name, route.digest);
  if (record.location === undefined) return { status: 200, headers: blobHeaders(record) };
  const redirect = await registry.blobHeadRedirect(record);
  if (redirect !== undefined) return redirectTo(redirect, record);
  return { status: 200, headers: blobHeaders(record) };
}

/** The whole blob, or one `Range` of it (206); a range past the end is 416. */
async function get({ registry, route, request }: HandlerContext<'blob'>): Promise<HttpResponse> {
  const header = request.headers.get('range');
  if (!header) {
    // Whole: a pull-through cache miss streams the upstream's bytes as it stores them.
    const { record, read } = await registry.pullBlob(route.name, route.digest);
    if (read.kind === 'redirect') return redirectTo(read.url, record);
    return { status: 200, headers: blobHeaders(record), body: read.body };
  }
  const record = await registry.statBlob(route.name, route.digest);
  const range = parseByteRange(header, record.size);
  if (range === 'unsatisfiable') {
    throw new OciError('RANGE_INVALID', 'requested range not satisfiable', { range: header, size: record.size });
  }
  const read = await registry.readBlob(route.name, record, range);
  if (read.kind === 'redirect') return redirectTo(read.url, record);
  if (!range) return { status: 200, headers: blobHeaders(record), body: read.body };
  const headers = {
    ...blobHeaders(record),
    'content-length': String(range.end - range.start + 1),
    'content-range': `bytes ${range.start}-${range.end}/${record.size}`,
  };
  return { status: 206, headers, body: read.body };
}

/** Unlinks the blob from the repository; its bytes stay until garbage collection. */
async function remove({ registry, route }: HandlerContext<'blob'>): Promise<HttpResponse> {
  await registry.deleteBlob(route.name, route.digest);
  return { status: 202, headers: { ...NO_BODY } };
}

/** A 307 to where the store serves the blob (a presigned S3 URL); Go clients follow it on GET and HEAD alike. */
function redirectTo(url: string, record: Pick<BlobRecord, 'digest'>): HttpResponse {
  return { status: 307, headers: { location: url, 'docker-content-digest': record.digest, ...NO_BODY } };
}

function blobHeaders(record: Pick<BlobRecord, 'digest' | 'size'>): Record<string, string> {
  return {
    'content-type': 'application/octet-stream',
    'content-length': String(record.size),
    'docker-content-digest': record.digest,
    'accept-ranges': 'bytes',
    etag: `"${record.digest}"`,
  };
}
