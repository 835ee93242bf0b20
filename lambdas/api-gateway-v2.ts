import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { bytesOf, readAll } from '../lib/registry/bytes.ts';
import type { HttpRequest, HttpResponse } from '../lib/http/types.ts';

/**
 * API Gateway HTTP API (payload format 2.0) events ⇄ the transport-neutral request and response.
 * Used by the Lambda handler (lambdas/registry-api.ts) and, in the other direction, by the emulated gateway
 * (lib/server/emulated-api-gateway.ts).
 * @see https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
 */

/**
 * The request an event describes. The gateway has buffered the whole body, so its exact length is known:
 * `content-length` is set to it and `transfer-encoding` dropped (a client's chunked PATCH arrives without a
 * Content-Length, and the app would otherwise read it as empty).
 */
export function toHttpRequest(event: APIGatewayProxyEventV2): HttpRequest {
  const headers = new Headers();
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (value !== undefined) headers.set(name, value);
  }
  // Format 2.0 moves Cookie headers into `cookies`.
  if (event.cookies && event.cookies.length > 0) headers.set('cookie', event.cookies.join('; '));
  const body = eventBody(event);
  headers.delete('transfer-encoding');
  if (body.byteLength > 0 || headers.has('content-length')) headers.set('content-length', String(body.byteLength));

  const request: HttpRequest = {
    method: event.requestContext.http.method.toUpperCase(),
    path: appPath(event.rawPath),
    query: new URLSearchParams(event.rawQueryString ?? ''),
    headers,
    body: body.byteLength > 0 ? bytesOf(body) : bytesOf(),
    // The gateway terminates TLS and says so in X-Forwarded-Proto; the emulator speaks http and says that.
    scheme: headers.get('x-forwarded-proto')?.split(',')[0]?.trim() || 'https',
  };
  const sourceIp = event.requestContext.http.sourceIp;
  if (sourceIp) request.sourceIp = sourceIp;
  return request;
}

/**
 * The app's percent-encoded path for the gateway's `rawPath`, which arrives already decoded (public captures; see
 * docs/aws-assumptions.md): encoded again so that the app's one decode gives back exactly `rawPath` — a `%` in a
 * decoded path stays a `%` instead of starting an escape. Registry paths (names, tags, digests, upload ids) never
 * contain `%`, so were a gateway to pass the path still encoded, valid requests would be unaffected.
 */
export function appPath(rawPath: string): string {
  try {
    return encodeURI(rawPath);
  } catch {
    // A lone surrogate cannot be encoded; the app refuses the path as it stands.
    return rawPath;
  }
}

/**
 * The request body in either of the gateway's encodings: base64 when it flagged the body binary (`isBase64Encoded`),
 * else the UTF-8 string it passed for text types (`text/*`, JSON, XML).
 */
export function eventBody(event: Pick<APIGatewayProxyEventV2, 'body' | 'isBase64Encoded'>): Buffer {
  if (event.body === undefined || event.body === null || event.body === '') return Buffer.alloc(0);
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
}

/** Content types whose bytes are sent as text when they are valid UTF-8; everything else goes base64. */
const TEXT_TYPES = /^(application\/json|text\/)/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The result for a response. Bodies are collected (Lambda has no streaming with API Gateway) and sent base64
 * with `isBase64Encoded: true` unless they are JSON or text that is valid UTF-8: blobs and manifests keep their
 * exact bytes (a manifest's digest is over its bytes). HEAD responses carry no body. Headers pass as they are,
 * `set-cookie` going to `cookies` as format 2.0 wants.
 */
export async function toApiGatewayResult(response: HttpResponse, method: string): Promise<APIGatewayProxyStructuredResultV2> {
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (const [name, value] of Object.entries(response.headers)) {
    if (name.toLowerCase() === 'set-cookie') cookies.push(value);
    else headers[name] = value;
  }
  const result: APIGatewayProxyStructuredResultV2 = { statusCode: response.status, headers };
  if (cookies.length > 0) result.cookies = cookies;

  const body = response.body;
  if (body === undefined) return result;
  const bytes = body instanceof Uint8Array ? body : await readAll(body);
  if (method === 'HEAD' || bytes.byteLength === 0) {
    result.body = '';
    result.isBase64Encoded = false;
    return result;
  }
  const text = TEXT_TYPES.test(headers['content-type'] ?? '') ? decodeUtf8(bytes) : undefined;
  if (text !== undefined) {
    result.body = text;
    result.isBase64Encoded = false;
  } else {
    result.body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
    result.isBase64Encoded = true;
  }
  return result;
}

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}
