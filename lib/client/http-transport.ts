import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';

/**
 * HTTP exchanges on node:http(s) with keep-alive, for `ocireg push` and `ocireg proxy`: the request body is bytes
 * or a stream factory (so a retry can re-open a file region); the answer is read whole by `send` (registry answers
 * to uploads are small) or handed over unread by `open` (the proxy relays pulls and uploads without holding them).
 */

export interface HttpCall {
  method: string;
  url: URL;
  headers?: OutgoingHttpHeaders;
  /** Bytes, or a factory for a fresh stream of the body (called once per attempt). */
  body?: Uint8Array | (() => Readable);
  /** Ends the exchange early (its caller went away). */
  signal?: AbortSignal;
}

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  url: URL;
}

/** The connection failed, closed early or timed out: worth retrying. */
export class NetworkError extends Error {
  override name = 'NetworkError';
  readonly code: string | undefined;
  constructor(message: string, options: { cause?: unknown; code?: string | undefined } = {}) {
    super(message, { cause: options.cause });
    this.code = options.code;
  }
}

const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

export interface HttpTransportOptions {
  /** A socket idle for this long fails the exchange (default 120 s). */
  idleTimeoutMs?: number;
  maxSockets?: number;
}

export class HttpTransport {
  readonly #http: HttpAgent;
  readonly #https: HttpsAgent;
  readonly #idleTimeoutMs: number;

  constructor(options: HttpTransportOptions = {}) {
    const maxSockets = options.maxSockets ?? 16;
    this.#http = new HttpAgent({ keepAlive: true, maxSockets });
    this.#https = new HttpsAgent({ keepAlive: true, maxSockets });
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
  }

  /** How long a socket may stay silent before the exchange fails. */
  get idleTimeoutMs(): number {
    return this.#idleTimeoutMs;
  }

  /** Sends a request and reads the whole answer; NetworkError when the connection fails, breaks or goes idle. */
  send(call: HttpCall): Promise<HttpResult> {
    return new Promise<HttpResult>((resolve, reject) => {
      const { request, fail, settle } = this.#start(call, reject);
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        let length = 0;
        response.on('data', (chunk: Buffer) => {
          length += chunk.byteLength;
          if (length > MAX_RESPONSE_BYTES) response.destroy(new Error(`response larger than ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(chunk);
        });
        response.on('error', fail);
        response.on('aborted', () => fail(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' })));
        response.on('end', () => {
          if (settle()) resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks), url: call.url });
        });
      });
    });
  }

  /**
   * Sends a request and resolves with the answer's head, its body unread: the caller reads or destroys it. The
   * idle timeout ends when the head arrives, since a relayed body may wait as long as whoever reads it. Rejects
   * with NetworkError when no answer came.
   */
  open(call: HttpCall): Promise<IncomingMessage> {
    return new Promise<IncomingMessage>((resolve, reject) => {
      const { request, settle } = this.#start(call, reject);
      request.on('response', (response) => {
        request.setTimeout(0);
        if (settle()) resolve(response);
        else response.destroy();
      });
    });
  }

  /** Starts a request and its body; `fail` rejects once with a NetworkError, `settle` is true for the first outcome only. */
  #start(call: HttpCall, reject: (error: NetworkError) => void): { request: ClientRequest; fail: (error: unknown) => void; settle: () => boolean } {
    const secure = call.url.protocol === 'https:';
    const headers: OutgoingHttpHeaders = { ...call.headers };
    if (call.body instanceof Uint8Array) headers['content-length'] = String(call.body.byteLength);
    let settled = false;
    const settle = () => !settled && (settled = true);
    const fail = (error: unknown) => {
      if (!settle()) return;
      const code = (error as { code?: string }).code;
      reject(error instanceof NetworkError ? error : new NetworkError(`${call.method} ${call.url.origin}${call.url.pathname}: ${(error as Error).message}`, { cause: error, code }));
    };
    const request = (secure ? httpsRequest : httpRequest)(call.url, {
      method: call.method,
      headers,
      agent: secure ? this.#https : this.#http,
      ...(call.signal ? { signal: call.signal } : {}),
    });
    request.setTimeout(this.#idleTimeoutMs, () => request.destroy(Object.assign(new Error(`no data for ${this.#idleTimeoutMs} ms`), { code: 'ETIMEDOUT' })));
    request.on('error', fail);
    if (call.body === undefined) {
      request.end();
    } else if (call.body instanceof Uint8Array) {
      request.end(call.body);
    } else {
      const body = call.body();
      body.on('error', (error) => request.destroy(error));
      body.pipe(request);
    }
    return { request, fail, settle };
  }

  close(): void {
    this.#http.destroy();
    this.#https.destroy();
  }
}

/** A single header value (the first, when repeated). */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
