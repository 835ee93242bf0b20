import type { IncomingMessage } from 'node:http';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';

/**
 * The payload 2.0 event an API Gateway HTTP API builds from a request, for the emulated gateway. As documented and,
 * where the documentation is silent, as public captures show (docs/aws-assumptions.md):
 * - header names lower-cased, repeated headers joined by commas, `Cookie` moved to `cookies` (documented);
 * - the body base64-encoded with `isBase64Encoded: true` unless the Content-Type is `text/*`, `application/json`,
 *   `application/xml` or `application/javascript`: those arrive as a UTF-8 string (the documentation says binary
 *   bodies are base64-encoded but not which types are binary; the split is from captures on real HTTP APIs). Bytes
 *   of a text type that are not UTF-8 are decoded lossily here, the pessimistic reading: the function cannot get
 *   them back, and must refuse rather than store them;
 * - `rawPath` percent-decoded (captures; the documentation shows no encoded example), kept as sent when it is not
 *   valid percent-encoding; `rawQueryString` as sent.
 *
 * Routes: by default those of the registry's stack, `ANY /v2`, `ANY /v2/{proxy+}`, `ANY /token` and `$default`, all
 * to one function, so every path is forwarded; `routeKey` and `pathParameters` are set as the gateway would.
 */

/** The routes lib/infra/oci-registry.ts creates. */
export const REGISTRY_ROUTE_KEYS = ['ANY /v2', 'ANY /v2/{proxy+}', 'ANY /token', '$default'] as const;

/**
 * The payload 2.0 event API Gateway would send for this request; undefined when none of `routeKeys` matches.
 * @see https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
 */
export function toEvent(
  req: IncomingMessage,
  body: Buffer,
  gateway: { requestId: string; apiId: string; port: number; routeKeys?: readonly string[] },
): APIGatewayProxyEventV2 | undefined {
  const url = req.url ?? '/';
  const queryAt = url.indexOf('?');
  const rawPath = decodePath(queryAt < 0 ? url : url.slice(0, queryAt));
  const rawQueryString = queryAt < 0 ? '' : url.slice(queryAt + 1);
  const method = (req.method ?? 'GET').toUpperCase();
  const route = routeOf(rawPath, gateway.routeKeys ?? REGISTRY_ROUTE_KEYS);
  if (route === undefined) return undefined;

  // Repeated headers arrive joined by commas under lower-case names; cookies move to `cookies`.
  const headers: Record<string, string> = {};
  let cookies: string[] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    const value = req.rawHeaders[i + 1]!;
    if (name === 'cookie') cookies = cookies.concat(value.split(/;\s*/).filter((cookie) => cookie !== ''));
    else headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  const sourceIp = req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '127.0.0.1';
  headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${sourceIp}` : sourceIp;
  headers['x-forwarded-port'] = String(gateway.port);
  headers['x-forwarded-proto'] = 'http';
  delete headers['transfer-encoding'];
  delete headers['connection'];
  if (body.byteLength > 0) headers['content-length'] = String(body.byteLength);

  const queryStringParameters: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(rawQueryString)) {
    queryStringParameters[key] = queryStringParameters[key] === undefined ? value : `${queryStringParameters[key]},${value}`;
  }
  const now = new Date();
  const asText = isTextContentType(headers['content-type']);
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey: route.routeKey,
    rawPath,
    rawQueryString,
    headers,
    requestContext: {
      accountId: '000000000000',
      apiId: gateway.apiId,
      domainName: headers.host ?? `127.0.0.1:${gateway.port}`,
      domainPrefix: (headers.host ?? '127').split('.')[0]!,
      http: { method, path: rawPath, protocol: `HTTP/${req.httpVersion}`, sourceIp, userAgent: headers['user-agent'] ?? '' },
      requestId: gateway.requestId,
      routeKey: route.routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: body.byteLength > 0 && !asText,
  };
  if (cookies.length > 0) event.cookies = cookies;
  if (Object.keys(queryStringParameters).length > 0) event.queryStringParameters = queryStringParameters;
  if (route.proxy !== undefined) event.pathParameters = { proxy: route.proxy };
  if (body.byteLength > 0) event.body = asText ? body.toString('utf8') : body.toString('base64');
  return event;
}

/** Media types whose request bodies an HTTP API hands to Lambda as text (public captures; parameters ignored). */
const TEXT_MEDIA_TYPES = new Set(['application/json', 'application/xml', 'application/javascript']);

/** True when the gateway passes a body of this Content-Type as a UTF-8 string rather than base64. */
export function isTextContentType(contentType: string | undefined): boolean {
  const mediaType = contentType?.split(';')[0]!.trim().toLowerCase() ?? '';
  return mediaType.startsWith('text/') || TEXT_MEDIA_TYPES.has(mediaType);
}

/** The path as the gateway hands it over: percent-decoded, or as sent when that fails. */
function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function routeOf(rawPath: string, routeKeys: readonly string[]): { routeKey: string; proxy?: string } | undefined {
  // Exact routes win over greedy ones, and both over $default (the HTTP API's documented route priority).
  for (const routeKey of routeKeys) {
    if (routeKey.startsWith('ANY ') && !routeKey.endsWith('{proxy+}') && rawPath === routeKey.slice(4)) return { routeKey };
  }
  for (const routeKey of routeKeys) {
    if (!routeKey.startsWith('ANY ') || !routeKey.endsWith('/{proxy+}')) continue;
    const prefix = routeKey.slice(4, -'{proxy+}'.length);
    if (rawPath.startsWith(prefix) && rawPath.length > prefix.length) return { routeKey, proxy: rawPath.slice(prefix.length) };
  }
  return routeKeys.includes('$default') ? { routeKey: '$default' } : undefined;
}
