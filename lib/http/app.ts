import { readAll, limitBytes } from '../registry/bytes.ts';
import { OciError, payloadTooLarge, type OciErrorCode } from '../registry/errors.ts';
import { MAX_MANIFEST_BYTES, MediaType } from '../registry/manifest.ts';
import type { ChunkInfo, Registry } from '../registry/registry.ts';
import type { BlobRead } from '../registry/ports.ts';
import type { BlobRecord, ByteRange, Page, PageRequest } from '../registry/types.ts';
import type { AuthService } from '../auth/auth-service.ts';
import { AuthChallenge, authorize, challengeHeader, OPEN_ACCESS, realmOf, type Access } from './access-control.ts';
import { renderError } from './error-response.ts';
import { handleTokenRequest } from './token-endpoint.ts';
import { parseByteRange, parseContentRange, uploadRange } from './ranges.ts';
import { matchRoute, routeName, type Route } from './routes.ts';
import type { HttpHandler, HttpRequest, HttpResponse, RequestLog } from './types.ts';

export interface RegistryAppOptions {
  registry: Registry;
  /** Docker token authentication; absent, every request is allowed (a local registry without --auth). */
  auth?: AuthService;
  /** The token endpoint URL for challenges; default: `/token` on the scheme and host the client used. */
  realm?: string;
  /** Receives one line per request; `cause` is set for unexpected (500) failures. */
  log?: (line: RequestLog, cause?: unknown) => void;
}

const API_VERSION = { 'docker-distribution-api-version': 'registry/2.0' };
const EMPTY = { 'content-length': '0' };

/**
 * The registry over HTTP, transport-neutral: the node:http server and the Lambda handler both call this.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md
 */
export function createRegistryApp(options: RegistryAppOptions): HttpHandler {
  const { registry, auth } = options;
  const log = options.log ?? (() => undefined);

  return async function handle(request: HttpRequest): Promise<HttpResponse> {
    const started = performance.now();
    let route: Route | undefined;
    let response: HttpResponse;
    let failure: { code: OciErrorCode; message: string; cause?: unknown } | undefined;
    try {
      if (auth && request.path === '/token') {
        response = await handleTokenRequest(auth, request);
      } else {
        route = matchRoute(decodePath(request.path));
        if (route) {
          const access = auth ? await authorize(auth, route, request) : OPEN_ACCESS;
          response = await dispatch(registry, route, request, access);
        } else {
          response = notFound(request);
        }
      }
    } catch (error) {
      const extra = errorHeaders(error);
      if (auth && error instanceof AuthChallenge) extra['www-authenticate'] = challengeHeader(error, options.realm ?? realmOf(request), auth.service);
      const rendered = renderError(error, extra, request.method);
      response = rendered.response;
      failure = rendered;
    }
    response.headers = { ...API_VERSION, ...response.headers };
    const line: RequestLog = {
      method: request.method,
      path: request.path,
      status: response.status,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
    };
    if (route) line.operation = `${route.kind}.${request.method.toLowerCase()}`;
    const name = route && routeName(route);
    if (name !== undefined) line.name = name;
    if (failure) line.error = { code: failure.code, message: failure.message };
    log(line, failure?.cause);
    return response;
  };
}

async function dispatch(registry: Registry, route: Route, request: HttpRequest, access: Access): Promise<HttpResponse> {
  const method = request.method === 'HEAD' ? 'HEAD' : request.method;
  switch (route.kind) {
    case 'base':
      if (method === 'GET' || method === 'HEAD') return json(200, {}, method);
      break;
    case 'catalog':
      if (method === 'GET') {
        const page = pageRequest(request);
        const filter = access.catalogFilter;
        const result = await listOrEmpty(page, (p) => (filter ? visibleRepositories(registry, p, filter) : registry.listRepositories(p)));
        return json(200, { repositories: result.items }, method, linkHeader('/v2/_catalog', page, result));
      }
      break;
    case 'tags':
      if (method === 'GET') {
        const page = pageRequest(request);
        const result = await listOrEmpty(page, (p) => registry.listTags(route.name, p));
        return json(200, { name: route.name, tags: result.items }, method, linkHeader(`/v2/${route.name}/tags/list`, page, result));
      }
      break;
    case 'manifest':
      return manifestRoute(registry, route, request);
    case 'blob':
      return blobRoute(registry, route, request);
    case 'uploads':
      if (method === 'POST') return startUpload(registry, route.name, request, access);
      break;
    case 'upload':
      return uploadRoute(registry, route, request);
    case 'referrers':
      if (method === 'GET') {
        const artifactType = request.query.get('artifactType') ?? undefined;
        const manifests = await registry.listReferrers(route.name, route.digest, artifactType);
        const headers: Record<string, string> = { 'content-type': MediaType.ociIndex };
        if (artifactType !== undefined) headers['oci-filters-applied'] = 'artifactType';
        return json(200, { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }, method, headers);
      }
      break;
  }
  throw new OciError('UNSUPPORTED', `${request.method} is not supported on ${route.kind}`, { method: request.method });
}

// ---- manifests ---------------------------------------------------------------------------------------------------

async function manifestRoute(registry: Registry, route: Extract<Route, { kind: 'manifest' }>, request: HttpRequest): Promise<HttpResponse> {
  const { name, reference } = route;
  switch (request.method) {
    case 'GET':
    case 'HEAD': {
      const manifest = await registry.getManifest(name, reference);
      const headers = {
        'content-type': manifest.mediaType,
        'content-length': String(manifest.content.byteLength),
        'docker-content-digest': manifest.digest,
        etag: `"${manifest.digest}"`,
      };
      return request.method === 'HEAD' ? { status: 200, headers } : { status: 200, headers, body: manifest.content };
    }
    case 'PUT': {
      const length = declaredLength(request);
      const tooLarge = (size: number): never => {
        throw payloadTooLarge(`manifest of ${size} bytes exceeds the limit of ${MAX_MANIFEST_BYTES} bytes`, { size, max: MAX_MANIFEST_BYTES });
      };
      if (length !== undefined && length > MAX_MANIFEST_BYTES) tooLarge(length);
      const content = await readAll(limitBytes(request.body, MAX_MANIFEST_BYTES, tooLarge));
      const result = await registry.putManifest(name, reference, content, request.headers.get('content-type') ?? undefined);
      const headers: Record<string, string> = {
        location: `/v2/${name}/manifests/${result.digest}`,
        'docker-content-digest': result.digest,
        ...EMPTY,
      };
      if (result.subject !== undefined) headers['oci-subject'] = result.subject;
      return { status: 201, headers };
    }
    case 'DELETE':
      await registry.deleteManifest(name, reference);
      return { status: 202, headers: { ...EMPTY } };
  }
  throw new OciError('UNSUPPORTED', `${request.method} is not supported on manifests`, { method: request.method });
}

// ---- blobs -------------------------------------------------------------------------------------------------------

async function blobRoute(registry: Registry, route: Extract<Route, { kind: 'blob' }>, request: HttpRequest): Promise<HttpResponse> {
  const { name, digest } = route;
  switch (request.method) {
    case 'HEAD': {
      // Answered from metadata alone: no storage call, and a presigned GET URL could not serve a HEAD anyway.
      const record = await registry.statBlob(name, digest);
      return { status: 200, headers: blobHeaders(record) };
    }
    case 'GET': {
      const header = request.headers.get('range');
      const record = await registry.statBlob(name, digest);
      const range = header ? parseByteRange(header, record.size) : undefined;
      if (range === 'unsatisfiable') {
        throw new OciError('RANGE_INVALID', 'requested range not satisfiable', { range: header, size: record.size });
      }
      const read = await registry.readBlob(record, range);
      return blobResponse(record, read, range);
    }
    case 'DELETE':
      await registry.deleteBlob(name, digest);
      return { status: 202, headers: { ...EMPTY } };
  }
  throw new OciError('UNSUPPORTED', `${request.method} is not supported on blobs`, { method: request.method });
}

function blobHeaders(record: BlobRecord): Record<string, string> {
  return {
    'content-type': 'application/octet-stream',
    'content-length': String(record.size),
    'docker-content-digest': record.digest,
    'accept-ranges': 'bytes',
    etag: `"${record.digest}"`,
  };
}

function blobResponse(record: BlobRecord, read: BlobRead, range: ByteRange | undefined): HttpResponse {
  if (read.kind === 'redirect') {
    return { status: 307, headers: { location: read.url, 'docker-content-digest': record.digest, ...EMPTY } };
  }
  if (!range) return { status: 200, headers: blobHeaders(record), body: read.body };
  return {
    status: 206,
    headers: {
      ...blobHeaders(record),
      'content-length': String(range.end - range.start + 1),
      'content-range': `bytes ${range.start}-${range.end}/${record.size}`,
    },
    body: read.body,
  };
}

// ---- uploads -----------------------------------------------------------------------------------------------------

async function startUpload(registry: Registry, name: string, request: HttpRequest, access: Access): Promise<HttpResponse> {
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
    const record = await registry.uploadMonolithic(name, digest, request.body, declaredLength(request));
    return blobCreated(name, record);
  }
  const session = await registry.startUpload(name);
  const headers = uploadHeaders(name, session.uploadId, session.offset);
  if (registry.maxChunkLength !== undefined) {
    // Proposed in opencontainers/distribution-spec#485; no client reads it yet, our push tool does.
    headers['oci-chunk-max-length'] = String(registry.maxChunkLength);
  }
  return { status: 202, headers };
}

async function uploadRoute(registry: Registry, route: Extract<Route, { kind: 'upload' }>, request: HttpRequest): Promise<HttpResponse> {
  const { name, uploadId } = route;
  switch (request.method) {
    case 'GET': {
      const session = await registry.getUpload(name, uploadId);
      return { status: 204, headers: uploadHeaders(name, uploadId, session.offset) };
    }
    case 'PATCH': {
      const session = await withUploadPosition(registry, name, uploadId, () =>
        registry.appendUpload(name, uploadId, request.body, chunkInfo(request)),
      );
      return { status: 202, headers: uploadHeaders(name, uploadId, session.offset) };
    }
    case 'PUT': {
      const digest = request.query.get('digest') ?? undefined;
      const record = await withUploadPosition(registry, name, uploadId, () =>
        registry.completeUpload(name, uploadId, digest, request.body, chunkInfo(request)),
      );
      return blobCreated(name, record);
    }
    case 'DELETE':
      await registry.cancelUpload(name, uploadId);
      return { status: 204, headers: {} };
  }
  throw new OciError('UNSUPPORTED', `${request.method} is not supported on uploads`, { method: request.method });
}

/** A 416 carries where the upload stands, so the client can resume (spec: "Pushing a blob in chunks"). */
async function withUploadPosition<T>(registry: Registry, name: string, uploadId: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    if (error instanceof OciError && error.code === 'RANGE_INVALID') {
      const session = await registry.getUpload(name, uploadId).catch(() => undefined);
      if (session) throw new UploadPositionError(error, uploadHeaders(name, uploadId, session.offset));
    }
    throw error;
  }
}

class UploadPositionError extends OciError {
  readonly headers: Record<string, string>;
  constructor(error: OciError, headers: Record<string, string>) {
    super(error.code, error.message, error.detail, { cause: error });
    this.headers = headers;
  }
}

function errorHeaders(error: unknown): Record<string, string> {
  if (error instanceof UploadPositionError) {
    const { 'content-length': _, ...headers } = error.headers;
    return headers;
  }
  return {};
}

function uploadHeaders(name: string, uploadId: string, offset: number): Record<string, string> {
  return {
    location: `/v2/${name}/blobs/uploads/${uploadId}`,
    range: uploadRange(offset),
    'docker-upload-uuid': uploadId,
    ...EMPTY,
  };
}

function blobCreated(name: string, record: BlobRecord): HttpResponse {
  return {
    status: 201,
    headers: { location: `/v2/${name}/blobs/${record.digest}`, 'docker-content-digest': record.digest, ...EMPTY },
  };
}

function chunkInfo(request: HttpRequest): ChunkInfo {
  const info: ChunkInfo = {};
  const length = declaredLength(request);
  if (length !== undefined) info.length = length;
  const contentRange = request.headers.get('content-range');
  if (contentRange) {
    info.range = parseContentRange(contentRange);
    info.rawRange = contentRange;
  }
  return info;
}

/**
 * The body length the client declared: Content-Length, else unknown for a chunked transfer, else 0
 * (a request with neither has no body).
 */
function declaredLength(request: HttpRequest): number | undefined {
  const header = request.headers.get('content-length');
  if (header !== null) {
    const length = Number(header);
    if (!Number.isSafeInteger(length) || length < 0) throw new OciError('SIZE_INVALID', 'invalid Content-Length', { contentLength: header });
    return length;
  }
  return request.headers.has('transfer-encoding') ? undefined : 0;
}

// ---- listings ----------------------------------------------------------------------------------------------------

function pageRequest(request: HttpRequest): PageRequest {
  const page: PageRequest = {};
  const n = request.query.get('n');
  if (n !== null) {
    const limit = Number(n);
    if (n === '' || !Number.isSafeInteger(limit) || limit < 0) {
      throw new OciError('PAGINATION_NUMBER_INVALID', 'invalid number of results requested', { n });
    }
    page.limit = limit;
  }
  const last = request.query.get('last');
  if (last !== null && last !== '') page.last = last;
  return page;
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

/** RFC 5988 Link to the next page, angle brackets included (clients parse them). */
function linkHeader(path: string, page: PageRequest, result: Page<string>): Record<string, string> {
  const last = result.items.at(-1);
  if (!result.hasMore || last === undefined) return {};
  const query = new URLSearchParams();
  if (page.limit !== undefined) query.set('n', String(page.limit));
  query.set('last', last);
  return { link: `<${path}?${query}>; rel="next"` };
}

// ---- helpers -----------------------------------------------------------------------------------------------------

function json(status: number, value: unknown, method: string, headers: Record<string, string> = {}): HttpResponse {
  const body = new TextEncoder().encode(JSON.stringify(value));
  const allHeaders = { 'content-type': 'application/json', 'content-length': String(body.byteLength), ...headers };
  return method === 'HEAD' ? { status, headers: allHeaders } : { status, headers: allHeaders, body };
}

function notFound(request: HttpRequest): HttpResponse {
  const body = JSON.stringify({ errors: [{ code: 'UNSUPPORTED', message: 'no such endpoint', detail: { path: request.path } }] });
  const bytes = new TextEncoder().encode(body);
  return { status: 404, headers: { 'content-type': 'application/json', 'content-length': String(bytes.byteLength) }, body: bytes };
}

function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    throw new OciError('NAME_INVALID', 'path is not valid percent-encoding', { path });
  }
}
