import { Agent as HttpAgent, createServer, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_CHUNK_SIZE, offsetFromRange } from '../client/blob-uploader.ts';
import { headerValue, HttpTransport, NetworkError, type HttpResult } from '../client/http-transport.ts';
import { backoffDelay, DEFAULT_RETRY, type RetryPolicy } from '../client/retry.ts';
import { TokenReplay } from './token-replay.ts';
import { forwardableHeaders, returnableHeaders, UpstreamAddress } from './upstream-address.ts';
import { listen } from '../server/listen.ts';

/**
 * `ocireg proxy`: a local registry address for unmodified clients (docker, containerd, skopeo, crane, oras) in
 * front of a registry that refuses request bodies over a few MiB (API Gateway + Lambda).
 *
 * Every request is forwarded as is (streamed both ways), with `Location` and token `realm` rewritten to the proxy.
 * Only uploads whose body may exceed the upstream's limit are reshaped, buffering at most one chunk:
 *
 * ```
 * client                                   proxy                               upstream
 * POST /uploads/                  ──────▶  remembers Location, OCI-Chunk-Max-Length (per upload)
 * PATCH <loc> (whole layer, streamed) ──▶  PATCH <loc> Content-Range 0-4194303    ──▶ 202
 *                                          PATCH <loc> Content-Range 4194304-…    ──▶ 202 …
 *                                  ◀────── 202 Range 0-<last> (the last upstream answer)
 * PUT <loc>?digest= (empty)       ──────▶  forwarded                              ──▶ 201
 *
 * PUT <loc>?digest= (whole layer)  ─────▶  PATCH … PATCH …, then PUT <loc>?digest= (empty) ──▶ 201
 * POST /uploads/?digest= (whole)   ─────▶  POST, PATCH …, PUT ?digest=                     ──▶ 201
 * ```
 *
 * A chunk that fails in transit (network, 5xx, 429) is retried after asking the upstream where the upload stands
 * (GET → Range), from the bytes the proxy still holds. A chunk refused with 401 (the client's token expired during
 * a long upload) is retried with a token from the client's own token request, replayed (see TokenReplay).
 */
export interface PushProxyOptions {
  /** The registry to forward to, e.g. `https://abc.execute-api.eu-west-1.amazonaws.com` or `http://127.0.0.1:5000`. */
  upstream: string;
  /** Chunk size for uploads whose POST answer advertised no `OCI-Chunk-Max-Length` (default 4 MiB). */
  defaultChunkSize?: number;
  retry?: RetryPolicy;
  /** One entry per client request (default: none). */
  log?: (entry: Record<string, unknown>) => void;
}

interface UploadState {
  /** Where the next request for this upload goes: a client-side path and query. */
  location: string;
  /** Bytes the upstream holds, when known. */
  offset: number | undefined;
  maxChunk: number;
}

interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  proxyOrigin: string;
  log: Record<string, unknown>;
  authorization: string | undefined;
}

/** An upstream answer that ends the client's request: relayed as is (rewritten). */
class UpstreamAnswer extends Error {
  readonly result: HttpResult;
  constructor(result: HttpResult) {
    super(`upstream answered ${result.status}`);
    this.result = result;
  }
}

const UPLOAD_START = /^\/v2\/(.+)\/blobs\/uploads\/?$/;
const UPLOAD_SESSION = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/;
const MAX_TRACKED_UPLOADS = 10_000;

export class PushProxy {
  readonly upstream: UpstreamAddress;
  readonly #defaultChunkSize: number;
  readonly #retry: RetryPolicy;
  readonly #log: (entry: Record<string, unknown>) => void;
  readonly #uploads = new Map<string, UploadState>();
  readonly #realmPaths = new Set<string>();
  readonly #transport = new HttpTransport({ maxSockets: 64 });
  readonly #tokens = new TokenReplay(this.#transport);
  readonly #httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  readonly #httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 64 });
  /** The last `OCI-Chunk-Max-Length` the upstream advertised: the limit for uploads the proxy did not see start. */
  #advertisedMax: number | undefined;

  constructor(options: PushProxyOptions) {
    this.upstream = new UpstreamAddress(options.upstream);
    this.#defaultChunkSize = options.defaultChunkSize ?? DEFAULT_CHUNK_SIZE;
    this.#retry = options.retry ?? DEFAULT_RETRY;
    this.#log = options.log ?? (() => undefined);
  }

  /** The node:http request listener. */
  readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'http://proxy');
    const exchange: Exchange = {
      req,
      res,
      url,
      proxyOrigin: `http://${req.headers.host ?? 'localhost'}`,
      log: { method: req.method, path: url.pathname },
      authorization: req.headers.authorization,
    };
    this.#handle(exchange)
      .catch((error: unknown) => this.#fail(exchange, error))
      .finally(() => {
        exchange.log.status = res.statusCode;
        exchange.log.durationMs = Math.round(performance.now() - started);
        this.#log(exchange.log);
      });
  };

  close(): void {
    this.#transport.close();
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }

  async #handle(exchange: Exchange): Promise<void> {
    const { req, url } = exchange;
    const path = url.pathname;
    if (this.#realmPaths.has(path)) return this.#tokenRequest(exchange);

    const length = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    const streamed = length === undefined && req.headers['transfer-encoding'] !== undefined;
    const session = UPLOAD_SESSION.exec(path);
    const state = session ? this.#uploads.get(path) : undefined;
    const limit = state?.maxChunk ?? this.#advertisedMax ?? this.#defaultChunkSize;
    const oversized = streamed || (length !== undefined && length > limit);

    if (oversized && session && req.method === 'PATCH') return this.#rechunkPatch(exchange, state, limit);
    if (oversized && session && req.method === 'PUT' && url.searchParams.has('digest')) return this.#rechunkPut(exchange, state, limit);
    if (oversized && UPLOAD_START.test(path) && req.method === 'POST' && url.searchParams.has('digest')) return this.#rechunkPost(exchange);
    return this.#forward(exchange);
  }

  // ---- plain forwarding --------------------------------------------------------------------------------------

  #forward(exchange: Exchange): Promise<void> {
    const { req, res, url } = exchange;
    const target = this.upstream.resolve(`${url.pathname}${url.search}`);
    const secure = target.protocol === 'https:';
    return new Promise<void>((resolve) => {
      const upstreamRequest = (secure ? httpsRequest : httpRequest)(target, {
        method: req.method,
        headers: forwardableHeaders(req.headers),
        agent: secure ? this.#httpsAgent : this.#httpAgent,
      });
      upstreamRequest.on('response', (upstream) => {
        const status = upstream.statusCode ?? 502;
        this.#observe(req.method ?? 'GET', url.pathname, status, upstream.headers);
        res.writeHead(status, this.#rewrite(returnableHeaders(upstream.headers), exchange));
        upstream.pipe(res);
        upstream.on('error', () => res.destroy());
        res.on('close', () => {
          upstream.destroy();
          resolve();
        });
      });
      upstreamRequest.on('error', (error) => {
        if (!res.headersSent) this.#fail(exchange, new NetworkError(`upstream ${this.upstream.origin} failed: ${error.message}`, { cause: error }));
        else res.destroy();
        resolve();
      });
      req.on('error', () => upstreamRequest.destroy());
      res.on('close', () => {
        if (!res.writableFinished) upstreamRequest.destroy();
        resolve();
      });
      req.pipe(upstreamRequest);
    });
  }

  /** Keeps track of uploads from the answers that pass through. */
  #observe(method: string, path: string, status: number, headers: IncomingMessage['headers']): void {
    const advertised = positive(headerValue(headers, 'oci-chunk-max-length'));
    if (advertised !== undefined) this.#advertisedMax = advertised;
    if (method === 'POST' && status === 202 && UPLOAD_START.test(path)) {
      const location = headerValue(headers, 'location');
      const proxyPath = location === undefined ? undefined : this.upstream.toProxyPath(location);
      if (proxyPath === undefined) return;
      this.#track(proxyPath, { location: proxyPath, offset: offsetFromRange(headerValue(headers, 'range')), maxChunk: advertised ?? this.#defaultChunkSize });
    } else if (UPLOAD_SESSION.test(path)) {
      const state = this.#uploads.get(path);
      if ((method === 'PUT' && status < 300) || method === 'DELETE' || status === 404) {
        this.#uploads.delete(path);
      } else if (state && status === 202) {
        this.#apply(state, path, headers);
      } else if (state) {
        state.offset = undefined; // unknown after a failure: ask before the next reshaped request
      }
    }
  }

  #track(location: string, state: UploadState): void {
    const key = new URL(location, 'http://x').pathname;
    this.#uploads.delete(key);
    this.#uploads.set(key, state);
    while (this.#uploads.size > MAX_TRACKED_UPLOADS) this.#uploads.delete(this.#uploads.keys().next().value!);
  }

  /** Updates an upload from a 202/204 answer: its Location (which may change) and Range. */
  #apply(state: UploadState, key: string, headers: IncomingMessage['headers'], sentUpTo?: number): void {
    const location = headerValue(headers, 'location');
    const proxyPath = location === undefined ? undefined : this.upstream.toProxyPath(location);
    if (proxyPath !== undefined) {
      state.location = proxyPath;
      const newKey = new URL(proxyPath, 'http://x').pathname;
      if (newKey !== key) {
        this.#uploads.delete(key);
        this.#track(proxyPath, state);
      }
    }
    // After a chunk was accepted, `0-0` or no Range is ambiguous: the chunk's end is then the offset.
    const reported = offsetFromRange(headerValue(headers, 'range'));
    state.offset = sentUpTo !== undefined && reported === 0 ? sentUpTo : reported;
  }

  #rewrite(headers: OutgoingHttpHeaders, exchange: Exchange): OutgoingHttpHeaders {
    const location = headers.location;
    if (typeof location === 'string') headers.location = this.upstream.rewriteLocation(location, exchange.proxyOrigin);
    const challenge = headers['www-authenticate'];
    if (challenge !== undefined) {
      const values = Array.isArray(challenge) ? challenge : [String(challenge)];
      headers['www-authenticate'] = values.map((value) => {
        const rewritten = this.upstream.rewriteChallenge(value, exchange.proxyOrigin);
        if (rewritten.realmPath !== undefined) this.#realmPaths.add(rewritten.realmPath);
        return rewritten.header;
      });
    }
    return headers;
  }

  // ---- token requests ----------------------------------------------------------------------------------------

  async #tokenRequest(exchange: Exchange): Promise<void> {
    const { req, url } = exchange;
    const body = await readSmallBody(req, 64 * 1024);
    const request = { method: req.method ?? 'GET', url: this.upstream.resolve(`${url.pathname}${url.search}`), headers: forwardableHeaders(req.headers, ['content-length']), body };
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
    const result = await this.#transport.send({ method: request.method, url: request.url, headers, ...(body.byteLength > 0 || request.method !== 'GET' ? { body } : {}) });
    if (result.status === 200) this.#tokens.remember(request, result.body);
    this.#relay(exchange, result);
  }

  // ---- reshaped uploads --------------------------------------------------------------------------------------

  /** A PATCH whose body may exceed the limit: chunked upstream; the client gets the last chunk's 202. */
  async #rechunkPatch(exchange: Exchange, known: UploadState | undefined, limit: number): Promise<void> {
    const { url, req } = exchange;
    const state = known ?? this.#adopt(url, limit);
    const contentRange = req.headers['content-range'];
    if (typeof contentRange === 'string') {
      const match = /^(?:bytes[ =])?(\d+)-\d+/.exec(contentRange.trim());
      if (match) state.offset = Number(match[1]);
    }
    const last = await this.#streamChunks(exchange, state, limit);
    if (last) return this.#relay(exchange, last);
    // An empty body: forward an empty PATCH, for the upstream's own answer.
    const result = await this.#send(exchange, 'PATCH', this.upstream.resolve(state.location), { 'content-length': '0' });
    this.#observeResult('PATCH', url.pathname, result);
    this.#relay(exchange, result);
  }

  /** A monolithic `PUT ?digest=` with the whole blob (containerd, buildkit, oras): PATCHes, then an empty PUT. */
  async #rechunkPut(exchange: Exchange, known: UploadState | undefined, limit: number): Promise<void> {
    const state = known ?? this.#adopt(exchange.url, limit);
    await this.#streamChunks(exchange, state, limit);
    await this.#complete(exchange, state, exchange.url.searchParams);
  }

  /** `POST /uploads/?digest=` with the whole blob: a new upload, PATCHes, then an empty PUT. */
  async #rechunkPost(exchange: Exchange): Promise<void> {
    const { url } = exchange;
    const query = new URLSearchParams(url.searchParams);
    query.delete('digest');
    const search = query.size > 0 ? `?${query}` : '';
    const started = await this.#send(exchange, 'POST', this.upstream.resolve(`${url.pathname}${search}`), { 'content-length': '0' });
    if (started.status !== 202) throw new UpstreamAnswer(started);
    const location = headerValue(started.headers, 'location');
    const proxyPath = location === undefined ? undefined : this.upstream.toProxyPath(location);
    if (proxyPath === undefined) throw new UpstreamAnswer(started);
    const maxChunk = positive(headerValue(started.headers, 'oci-chunk-max-length')) ?? this.#advertisedMax ?? this.#defaultChunkSize;
    const state: UploadState = { location: proxyPath, offset: 0, maxChunk };
    this.#track(proxyPath, state);
    await this.#streamChunks(exchange, state, maxChunk);
    await this.#complete(exchange, state, url.searchParams);
  }

  /** An upload the proxy did not see start (another proxy process, a restart): the client's URL is its location. */
  #adopt(url: URL, limit: number): UploadState {
    const query = new URLSearchParams(url.searchParams);
    query.delete('digest');
    const location = `${url.pathname}${query.size > 0 ? `?${query}` : ''}`;
    const state: UploadState = { location, offset: undefined, maxChunk: limit };
    this.#track(location, state);
    return state;
  }

  async #complete(exchange: Exchange, state: UploadState, clientQuery: URLSearchParams): Promise<void> {
    const target = this.upstream.resolve(state.location);
    for (const [name, value] of clientQuery) target.searchParams.set(name, value);
    const result = await this.#withRetries(exchange, () => this.#send(exchange, 'PUT', target, { 'content-length': '0' }));
    this.#observeResult('PUT', new URL(state.location, 'http://x').pathname, result);
    this.#relay(exchange, result);
  }

  /**
   * Reads the client's body into one buffer of at most `limit` bytes at a time and PATCHes each full buffer
   * upstream; the read waits while a chunk is in flight (backpressure). Returns the last chunk's answer.
   */
  async #streamChunks(exchange: Exchange, state: UploadState, limit: number): Promise<HttpResult | undefined> {
    const { req } = exchange;
    const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(limit, declared ?? limit)));
    let filled = 0;
    let last: HttpResult | undefined;
    let chunks = 0;
    let bytes = 0;
    const flush = async () => {
      last = await this.#sendChunk(exchange, state, buffer.subarray(0, filled));
      chunks++;
      bytes += filled;
      filled = 0;
    };
    if (state.offset === undefined) await this.#resync(exchange, state);
    for await (const piece of req as AsyncIterable<Buffer>) {
      let at = 0;
      while (at < piece.byteLength) {
        const n = Math.min(piece.byteLength - at, buffer.byteLength - filled);
        piece.copy(buffer, filled, at, at + n);
        filled += n;
        at += n;
        if (filled === buffer.byteLength) await flush();
      }
    }
    if (filled > 0) await flush();
    exchange.log.chunks = chunks;
    exchange.log.bytes = bytes;
    return last;
  }

  /** PATCHes one chunk; after a transient failure asks where the upload stands and sends what is missing. */
  async #sendChunk(exchange: Exchange, state: UploadState, chunk: Buffer): Promise<HttpResult> {
    const chunkStart = state.offset!;
    let failures = 0;
    for (;;) {
      const start = state.offset!;
      const data = chunk.subarray(start - chunkStart);
      const end = start + data.byteLength - 1;
      let result: HttpResult | undefined;
      let failure: unknown;
      try {
        result = await this.#send(exchange, 'PATCH', this.upstream.resolve(state.location), {
          'content-type': 'application/octet-stream',
          'content-range': `${start}-${end}`,
          'content-length': String(data.byteLength),
        }, data);
      } catch (error) {
        if (!(error instanceof NetworkError)) throw error;
        failure = error;
      }
      if (result?.status === 202) {
        this.#apply(state, new URL(state.location, 'http://x').pathname, result.headers, end + 1);
        if (state.offset! >= chunkStart + chunk.byteLength) return result;
        if (state.offset! < chunkStart) throw new UpstreamAnswer(result);
        continue; // the upstream kept less than sent: send the rest
      }
      if (result?.status === 401 && (await this.#refreshToken(exchange))) continue;
      const transient = result === undefined || result.status >= 500 || result.status === 429 || result.status === 416;
      if (!transient || ++failures >= this.#retry.attempts) {
        if (result) throw new UpstreamAnswer(result);
        throw failure;
      }
      await sleep(backoffDelay(this.#retry, failures - 1));
      await this.#resync(exchange, state);
      if (state.offset! >= chunkStart + chunk.byteLength) {
        // The chunk arrived although its answer did not.
        return { status: 202, headers: { location: state.location, range: `0-${state.offset! - 1}` }, body: Buffer.alloc(0), url: this.upstream.resolve(state.location) };
      }
      if (state.offset! < chunkStart) throw new NetworkError(`upstream lost bytes of the upload (it holds ${state.offset}, the proxy no longer holds bytes before ${chunkStart})`);
    }
  }

  /** GET on the upload: its Range and Location. */
  async #resync(exchange: Exchange, state: UploadState): Promise<void> {
    const result = await this.#withRetries(exchange, () => this.#send(exchange, 'GET', this.upstream.resolve(state.location), {}));
    if (result.status !== 204 && result.status !== 200) throw new UpstreamAnswer(result);
    this.#apply(state, new URL(state.location, 'http://x').pathname, result.headers);
  }

  async #withRetries(exchange: Exchange, action: () => Promise<HttpResult>): Promise<HttpResult> {
    for (let attempt = 0; ; attempt++) {
      let result: HttpResult | undefined;
      try {
        result = await action();
      } catch (error) {
        if (!(error instanceof NetworkError) || attempt + 1 >= this.#retry.attempts) throw error;
      }
      if (result?.status === 401 && (await this.#refreshToken(exchange))) continue;
      if (result && !(result.status >= 500 || result.status === 429)) return result;
      if (result && attempt + 1 >= this.#retry.attempts) return result;
      await sleep(backoffDelay(this.#retry, attempt));
    }
  }

  async #refreshToken(exchange: Exchange): Promise<boolean> {
    const refreshed = await this.#tokens.refresh(exchange.authorization).catch(() => undefined);
    if (refreshed === undefined || refreshed === exchange.authorization) return false;
    exchange.authorization = refreshed;
    exchange.log.tokenRefreshed = true;
    return true;
  }

  #send(exchange: Exchange, method: string, url: URL, headers: Record<string, string>, body?: Buffer): Promise<HttpResult> {
    const out: Record<string, string> = { ...headers };
    const agent = exchange.req.headers['user-agent'];
    if (agent !== undefined) out['user-agent'] = agent;
    if (exchange.authorization !== undefined) out.authorization = exchange.authorization;
    return this.#transport.send({ method, url, headers: out, ...(body !== undefined ? { body } : {}) });
  }

  #observeResult(method: string, path: string, result: HttpResult): void {
    this.#observe(method, path, result.status, result.headers);
  }

  /** Sends a buffered upstream answer to the client, rewritten; a body the client is still sending is abandoned. */
  #relay(exchange: Exchange, result: HttpResult): void {
    const { req, res } = exchange;
    if (res.headersSent) return;
    const headers = this.#rewrite(returnableHeaders(result.headers), exchange);
    headers['content-length'] = String(result.body.byteLength);
    if (!req.complete) headers.connection = 'close';
    res.writeHead(result.status, headers);
    res.end(req.method === 'HEAD' ? undefined : result.body);
    if (!req.complete) res.on('finish', () => req.destroy());
  }

  #fail(exchange: Exchange, error: unknown): void {
    if (error instanceof UpstreamAnswer) {
      this.#relay(exchange, error.result);
      return;
    }
    const { req, res } = exchange;
    exchange.log.error = (error as Error)?.message ?? String(error);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = Buffer.from(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `ocireg proxy: ${(error as Error)?.message ?? error}`, detail: null }] }));
    res.writeHead(502, { 'content-type': 'application/json', 'content-length': String(body.byteLength), ...(req.complete ? {} : { connection: 'close' }) });
    res.end(body);
    if (!req.complete) res.on('finish', () => req.destroy());
  }
}

function positive(value: string | undefined): number | undefined {
  const number = value === undefined ? NaN : Number(value);
  return Number.isSafeInteger(number) && number > 0 ? number : undefined;
}

async function readSmallBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.byteLength;
    if (length > limit) throw new Error(`token request body over ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export interface RunningProxy {
  url: string;
  server: Server;
  proxy: PushProxy;
  close(): Promise<void>;
}

/** Starts the proxy on `host:port` (port 0: any free port). */
export async function startPushProxy(options: PushProxyOptions & { host: string; port: number }): Promise<RunningProxy> {
  const proxy = new PushProxy(options);
  // Uploads of large layers take as long as they take; headers must still arrive promptly.
  const server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 }, proxy.listener);
  const listening = await listen(server, options.port, options.host);
  return {
    url: listening.url,
    server,
    proxy,
    close: () => {
      const closed = listening.close();
      proxy.close();
      return closed;
    },
  };
}
