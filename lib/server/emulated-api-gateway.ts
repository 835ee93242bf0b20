import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { REGISTRY_ROUTE_KEYS, toEvent } from './api-gateway-event.ts';
import { listen } from './listen.ts';

/**
 * An API Gateway HTTP API in front of a Lambda handler, on node:http, for `npm run dev:aws` and e2e tests: each
 * request becomes a payload 2.0 event, the handler's result becomes the response, and the platform's limits are
 * enforced the way AWS answers them, so a client that works here fails (or not) as it would on AWS.
 *
 * The event: api-gateway-event.ts.
 *
 * The gateway's own answers, each a JSON `{"message": …}` body:
 *
 * | limit                                        | AWS answer (emulated)                                      |
 * | -------------------------------------------- | ---------------------------------------------------------- |
 * | request body > 10 MiB (10,485,760 bytes)     | 413 `{"message":"Request Entity Too Large"}`, no invocation |
 * | event > 6,291,456 bytes (Lambda sync payload) | 413 `{"message":"Request Entity Too Large"}`, no invocation |
 * | no result within the 30 s integration timeout | 503 `{"message":"Service Unavailable"}`                     |
 * | function error, or its own timeout (29 s)     | 500 `{"message":"Internal Server Error"}`                   |
 * | result > 6,291,556 bytes                      | 500 `{"message":"Internal Server Error"}`                   |
 * | no route matches (no `$default` route)        | 404 `{"message":"Not Found"}`, no invocation                |
 *
 * Routes: api-gateway-event.ts.
 * @see https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
 * @see https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
 */

export type ApiGatewayV2Handler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2 | string | object | undefined>;

export const API_GATEWAY_LIMITS = {
  /** HTTP API payload quota, not adjustable. */
  maxRequestBytes: 10 * 1024 * 1024,
  /** Lambda synchronous invocation request payload (the serialized event). */
  maxEventBytes: 6_291_456,
  /** Lambda synchronous invocation response payload (6 MiB + 100 bytes, as measured). */
  maxResultBytes: 6_291_556,
  /** HTTP API integration timeout, not adjustable above 30 s. */
  integrationTimeoutMs: 30_000,
} as const;

export interface EmulatedApiGatewayOptions {
  handler: ApiGatewayV2Handler;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 0 (any free port) */
  port?: number;
  /** The gateway's wait for the function. @default 30000 */
  integrationTimeoutMs?: number;
  /** The function's own timeout, as its context reports it. @default 29000 (lib/infra) */
  functionTimeoutMs?: number;
  /** Receives one line per request the gateway itself answers or forwards (an access log). */
  log?: (line: GatewayLogLine) => void;
  /**
   * The API's route keys: `ANY /path`, `ANY /prefix/{proxy+}` or `$default`.
   * @default the registry stack's: `ANY /v2`, `ANY /v2/{proxy+}`, `ANY /token`, `$default`
   */
  routeKeys?: readonly string[];
}

export interface GatewayLogLine {
  requestId: string;
  method: string;
  path: string;
  status: number;
  /** Set when the gateway answered instead of the function: the limit or failure that applied. */
  gatewayError?: 'NO_ROUTE' | 'REQUEST_TOO_LARGE' | 'EVENT_TOO_LARGE' | 'INTEGRATION_TIMEOUT' | 'FUNCTION_ERROR' | 'FUNCTION_TIMEOUT' | 'RESULT_TOO_LARGE';
  latencyMs: number;
}

export interface EmulatedApiGateway {
  /** `http://127.0.0.1:<port>` */
  url: string;
  server: Server;
  close(): Promise<void>;
}

const GATEWAY_ERRORS = {
  NO_ROUTE: [404, 'Not Found'],
  REQUEST_TOO_LARGE: [413, 'Request Entity Too Large'],
  EVENT_TOO_LARGE: [413, 'Request Entity Too Large'],
  INTEGRATION_TIMEOUT: [503, 'Service Unavailable'],
  FUNCTION_ERROR: [500, 'Internal Server Error'],
  FUNCTION_TIMEOUT: [500, 'Internal Server Error'],
  RESULT_TOO_LARGE: [500, 'Internal Server Error'],
} as const;

type GatewayError = keyof typeof GATEWAY_ERRORS;

/** Starts the emulated gateway; resolves once it listens. */
export async function startEmulatedApiGateway(options: EmulatedApiGatewayOptions): Promise<EmulatedApiGateway> {
  const integrationTimeoutMs = options.integrationTimeoutMs ?? API_GATEWAY_LIMITS.integrationTimeoutMs;
  const functionTimeoutMs = options.functionTimeoutMs ?? 29_000;
  const log = options.log ?? (() => undefined);
  const routeKeys = options.routeKeys ?? REGISTRY_ROUTE_KEYS;
  const apiId = 'emulated';

  const server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 }, (req, res) => {
    const started = performance.now();
    const requestId = randomUUID();
    const path = (req.url ?? '/').split('?')[0]!;
    const finish = (status: number, gatewayError?: GatewayError) => {
      const line: GatewayLogLine = { requestId, method: req.method ?? 'GET', path, status, latencyMs: Math.round(performance.now() - started) };
      if (gatewayError) line.gatewayError = gatewayError;
      log(line);
    };
    const fail = (error: GatewayError) => {
      writeGatewayError(res, requestId, error);
      finish(GATEWAY_ERRORS[error][0], error);
    };

    readBody(req, API_GATEWAY_LIMITS.maxRequestBytes)
      .then(async (body) => {
        if (body === undefined) return fail('REQUEST_TOO_LARGE');
        const address = server.address() as AddressInfo;
        const event = toEvent(req, body, { requestId, apiId, port: address.port, routeKeys });
        if (event === undefined) return fail('NO_ROUTE');
        if (Buffer.byteLength(JSON.stringify(event)) > API_GATEWAY_LIMITS.maxEventBytes) return fail('EVENT_TOO_LARGE');

        const outcome = await invoke(options.handler, event, { integrationTimeoutMs, functionTimeoutMs });
        if (outcome.kind !== 'result') return fail(outcome.kind);
        if (Buffer.byteLength(JSON.stringify(outcome.result ?? null)) > API_GATEWAY_LIMITS.maxResultBytes) return fail('RESULT_TOO_LARGE');
        const status = writeResult(req, res, requestId, outcome.result);
        finish(status);
      })
      .catch(() => {
        if (!res.headersSent) fail('FUNCTION_ERROR');
        else res.destroy();
      });
  });

  const listening = await listen(server, options.port ?? 0, options.host ?? '127.0.0.1');
  return {
    url: listening.url,
    server,
    close: () => {
      const closed = listening.close();
      // The emulator is for tests and dev: do not wait for clients' keep-alive connections.
      server.closeAllConnections();
      return closed;
    },
  };
}

/**
 * The whole body, or undefined when it exceeds `max` (the rest is read and dropped, so the client gets the
 * answer instead of a reset while it is still sending). A declared length over the limit is refused unread.
 */
async function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length']);
  let tooLarge = Number.isFinite(declared) && declared > max;
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.byteLength;
    if (length > max) tooLarge = true;
    if (!tooLarge) chunks.push(chunk);
    // A client that streams far beyond the limit is cut off.
    if (length > max * 4) {
      req.destroy();
      break;
    }
  }
  return tooLarge ? undefined : Buffer.concat(chunks, length);
}

type Invocation = { kind: 'result'; result: unknown } | { kind: 'INTEGRATION_TIMEOUT' | 'FUNCTION_ERROR' | 'FUNCTION_TIMEOUT' };

/** Runs the handler as Lambda would, under the function's timeout and the gateway's. */
async function invoke(handler: ApiGatewayV2Handler, event: APIGatewayProxyEventV2, limits: { integrationTimeoutMs: number; functionTimeoutMs: number }): Promise<Invocation> {
  const deadline = Date.now() + limits.functionTimeoutMs;
  const context: Context = {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'ocireg-registry-api',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:ocireg-registry-api',
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/ocireg-registry-api',
    logStreamName: 'emulated',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
  const timers: NodeJS.Timeout[] = [];
  const after = (ms: number, kind: 'INTEGRATION_TIMEOUT' | 'FUNCTION_TIMEOUT') =>
    new Promise<Invocation>((resolve) => timers.push(setTimeout(() => resolve({ kind }), ms)));
  try {
    return await Promise.race([
      handler(event, context).then(
        (result): Invocation => ({ kind: 'result', result }),
        (): Invocation => ({ kind: 'FUNCTION_ERROR' }),
      ),
      after(limits.integrationTimeoutMs, 'INTEGRATION_TIMEOUT'),
      after(limits.functionTimeoutMs, 'FUNCTION_TIMEOUT'),
    ]);
  } finally {
    for (const timer of timers) clearTimeout(timer);
  }
}

/**
 * Writes a handler's result as the gateway does for format 2.0: a structured result as given; anything else
 * (a string, an object without `statusCode`) as a 200 JSON body.
 */
function writeResult(req: IncomingMessage, res: ServerResponse, requestId: string, value: unknown): number {
  const result: APIGatewayProxyStructuredResultV2 =
    typeof value === 'object' && value !== null && 'statusCode' in value
      ? (value as APIGatewayProxyStructuredResultV2)
      : { statusCode: 200, headers: { 'content-type': 'application/json' }, body: typeof value === 'string' ? value : JSON.stringify(value ?? null) };
  const status = result.statusCode ?? 200;
  const body = result.body === undefined ? Buffer.alloc(0) : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8');
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(result.headers ?? {})) headers[name.toLowerCase()] = String(value);
  if (result.cookies && result.cookies.length > 0) headers['set-cookie'] = result.cookies;
  headers['apigw-requestid'] = requestId;
  // The gateway sends what it has: the length of the body it got, not a length the function claimed.
  if (req.method !== 'HEAD') headers['content-length'] = String(body.byteLength);
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
  return status;
}

function writeGatewayError(res: ServerResponse, requestId: string, error: GatewayError): void {
  const [status, message] = GATEWAY_ERRORS[error];
  const body = JSON.stringify({ message });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'apigw-requestid': requestId });
  res.end(body);
}
