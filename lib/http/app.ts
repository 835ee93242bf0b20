import { OciError, type OciErrorCode } from '../registry/errors.ts';
import type { Registry } from '../registry/registry.ts';
import type { AuthService } from '../auth/auth-service.ts';
import { AuthChallenge, authorize, challengeHeader, OPEN_ACCESS, realmOf } from './access-control.ts';
import { base } from './base.ts';
import { consoleAssets, isConsolePath } from './console.ts';
import { blobs } from './blobs.ts';
import { renderError, renderOciError } from './error-response.ts';
import { catalog, tags } from './listings.ts';
import { manifests } from './manifests.ts';
import { referrers } from './referrers.ts';
import type { Handler, HandlerContext, HttpMethod, MethodTable, RouteKind } from './resource.ts';
import { matchRoute, routeName, type Route } from './routes.ts';
import { tokenEndpoint } from './token-endpoint.ts';
import type { HttpHandler, HttpRequest, HttpResponse, RequestLog } from './types.ts';
import { upload, uploadStart } from './uploads.ts';
import { imageConfig } from './image-config.ts';
import { usage } from './usage.ts';
import { promotion, rollback, tagDetails, tagHistory } from './versions.ts';

export interface RegistryAppOptions {
  registry: Registry;
  /** Docker token authentication; absent, every request is allowed (a local registry without --auth). */
  auth?: AuthService;
  /** The token endpoint URL for challenges; default: `/token` on the scheme and host the client used. */
  realm?: string;
  /** Receives one line per request; `cause` is set for unexpected (500) failures. */
  log?: (line: RequestLog, cause?: unknown) => void;
}

/** Every `/v2` resource, one module each. A new route is a pattern in routes.ts, its scope, and one file here. */
const RESOURCES: { readonly [K in RouteKind]: MethodTable<K> } = {
  base,
  catalog,
  tags,
  manifest: manifests,
  blob: blobs,
  uploads: uploadStart,
  upload,
  referrers,
  tagHistory,
  rollback,
  promotion,
  tagDetails,
  imageConfig,
  usage,
};

const API_VERSION = { 'docker-distribution-api-version': 'registry/2.0' };

/**
 * The registry over HTTP, transport-neutral: the node:http server and the Lambda handler both call this.
 * Its jobs: the token endpoint's door, routing, authorization, error rendering and one log line per request;
 * each resource module builds its own responses.
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
        response = await methodOf(tokenEndpoint, request, 'the token endpoint')(auth, request);
      } else if (isConsolePath(request.path)) {
        response = methodOf(consoleAssets, request, 'the web console')(request);
      } else {
        route = matchRoute(decodePath(request.path));
        if (route) {
          const access = auth ? await authorize(auth, route, request) : OPEN_ACCESS;
          response = await dispatch({ registry, route, request, access });
        } else {
          response = renderOciError('UNSUPPORTED', 'no such endpoint', { path: request.path }, { status: 404 });
        }
      }
    } catch (error) {
      const challenge: Record<string, string> = {};
      if (auth && error instanceof AuthChallenge) challenge['www-authenticate'] = challengeHeader(error, options.realm ?? realmOf(request), auth.service);
      const rendered = renderError(error, challenge);
      response = rendered.response;
      failure = rendered;
    }
    if (request.method === 'HEAD') delete response.body;
    response.headers = { ...API_VERSION, ...response.headers };
    log(logLine(request, route, response, started, failure), failure?.cause);
    return response;
  };
}

const WRITES = new Set(['PUT', 'POST', 'PATCH', 'DELETE']);

async function dispatch<K extends RouteKind>(context: HandlerContext<K>): Promise<HttpResponse> {
  const table = RESOURCES[context.route.kind as K];
  const handler = methodOf(table, context.request, context.route.kind);
  const name = routeName(context.route);
  // Pull-through caches are read-only: one check here covers uploads, mounts, manifest and blob deletes.
  if (name !== undefined && WRITES.has(context.request.method)) await context.registry.assertWritable(name);
  return handler(context);
}

function methodOf<T>(table: Readonly<Partial<Record<HttpMethod, T>>>, request: HttpRequest, resource: string): T {
  const handler = table[request.method as HttpMethod];
  if (!handler) throw new OciError('UNSUPPORTED', `${request.method} is not supported on ${resource}`, { method: request.method });
  return handler;
}

function logLine(request: HttpRequest, route: Route | undefined, response: HttpResponse, started: number, failure?: { code: string; message: string }): RequestLog {
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
  return line;
}

function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    throw new OciError('NAME_INVALID', 'path is not valid percent-encoding', { path });
  }
}
