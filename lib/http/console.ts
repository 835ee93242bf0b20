import { CONSOLE_ASSETS } from '../console/assets.ts';
import { renderOciError } from './error-response.ts';
import type { HttpMethod } from './resource.ts';
import type { HttpRequest, HttpResponse } from './types.ts';

/**
 * The web console's static assets (`/` and `/console/*`). They carry no data: the page calls `/token` and `/v2/`
 * with the user's credentials like any client, so serving them needs no authorization.
 */
const SECURITY_HEADERS = {
  // No inline script, nothing from another origin: the page talks to this registry only.
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export function isConsolePath(path: string): boolean {
  return path === '/' || path.startsWith('/console/');
}

/** GET and HEAD (the app drops HEAD bodies); any other method is answered 405 by the app's method lookup. */
export const consoleAssets: Readonly<Partial<Record<HttpMethod, (request: HttpRequest) => HttpResponse>>> = { GET: serve, HEAD: serve };

function serve(request: HttpRequest): HttpResponse {
  const asset = CONSOLE_ASSETS[request.path];
  if (!asset) return renderOciError('UNSUPPORTED', 'no such console asset', { path: request.path }, { status: 404 });
  const body = new TextEncoder().encode(asset.body);
  return {
    status: 200,
    headers: { 'content-type': asset.contentType, 'content-length': String(body.byteLength), 'cache-control': 'no-cache', ...SECURITY_HEADERS },
    body,
  };
}
