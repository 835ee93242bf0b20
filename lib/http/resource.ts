import type { Registry } from '../registry/registry.ts';
import type { ChangeContext } from '../registry/tag-history.ts';
import type { Access } from './access-control.ts';
import type { Route } from './routes.ts';
import type { HttpRequest, HttpResponse } from './types.ts';

/**
 * The shape of every `/v2` resource module: a table of HTTP method → handler, each handler building its whole
 * response (status, headers, body). A method missing from the table answers 405 UNSUPPORTED; HEAD bodies are
 * dropped by the app, so a handler may serve GET and HEAD alike.
 */

export type RouteKind = Route['kind'];

export interface HandlerContext<K extends RouteKind> {
  registry: Registry;
  route: Extract<Route, { kind: K }>;
  request: HttpRequest;
  /** What the caller may do beyond the route's own scope (mount sources, catalog entries). */
  access: Access;
}

export type Handler<K extends RouteKind> = (context: HandlerContext<K>) => Promise<HttpResponse>;

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export type MethodTable<K extends RouteKind> = Readonly<Partial<Record<HttpMethod, Handler<K>>>>;

/** `Content-Length: 0`, for the bodiless 201/202/204 answers. */
export const NO_BODY = { 'content-length': '0' } as const;

/** A JSON body with its Content-Type and Content-Length. */
export function jsonResponse(status: number, value: unknown, headers: Record<string, string> = {}): HttpResponse {
  const body = new TextEncoder().encode(JSON.stringify(value));
  return { status, headers: { 'content-type': 'application/json', 'content-length': String(body.byteLength), ...headers }, body };
}

/** Who changes a tag, and with which client: for the tag history and events. */
export function changeContext(access: Access, request: HttpRequest): ChangeContext {
  const userAgent = request.headers.get('user-agent');
  return userAgent === null ? { actor: access.actor } : { actor: access.actor, userAgent };
}
