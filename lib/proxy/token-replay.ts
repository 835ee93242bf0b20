import type { OutgoingHttpHeaders } from 'node:http';
import type { HttpResult, HttpTransport } from '../client/http-transport.ts';
import type { Exchange } from './exchange.ts';
import { forwardableHeaders, type UpstreamAddress } from './upstream-address.ts';

/** A client's token request as forwarded upstream, kept to be sent again. */
export interface TokenRequest {
  method: string;
  url: URL;
  headers: OutgoingHttpHeaders;
  body: Buffer;
}

/** Token requests carry a form or nothing; a larger body is not one. */
const MAX_TOKEN_REQUEST_BYTES = 64 * 1024;

/**
 * Fresh tokens for long uploads. A client fetches a token once (through the proxy, since the realm was rewritten)
 * and sends one long PATCH; the proxy turns it into many chunk requests, and a token (5 minutes on ocireg) can
 * expire before the last one. The proxy remembers which token request produced which token, and when a chunk is
 * refused with 401 it sends the same token request again (the client's own credentials, as the client sent them)
 * and carries on with the new token. Remembered requests live in memory only, at most `capacity` of them.
 *
 * Parallel uploads that share a token meet its expiry together, and each replays the request on its own:
 *
 * ```
 * upload A: PATCH (token-1) → 401 → replay → token-2 → PATCH (token-2) …
 * upload B: PATCH (token-1) → 401 → replay → token-3 → PATCH (token-3) …
 * ```
 *
 * Each exchange keeps its own Authorization and every new token maps to the same request, so nothing is shared
 * but this map, and no upload waits for another's replay: one token request per upload that hit the expiry.
 */
export class TokenReplay {
  readonly #requests = new Map<string, TokenRequest>();
  readonly #transport: HttpTransport;
  readonly #capacity: number;

  constructor(transport: HttpTransport, capacity = 1000) {
    this.#transport = transport;
    this.#capacity = capacity;
  }

  /** Forwards a client's token request (to a realm the proxy rewrote) and remembers it when it yields a token. */
  async forward(exchange: Exchange, address: UpstreamAddress): Promise<HttpResult> {
    const { req, url } = exchange;
    const request: TokenRequest = {
      method: req.method ?? 'GET',
      url: address.resolve(`${url.pathname}${url.search}`),
      headers: forwardableHeaders(req.headers, ['content-length']),
      body: await readSmallBody(req),
    };
    return this.#send(request);
  }

  /** A new `Authorization` for one whose token was refused, or undefined when the proxy did not see it issued. */
  async refresh(authorization: string | undefined): Promise<string | undefined> {
    const match = authorization === undefined ? null : /^Bearer\s+(\S+)$/i.exec(authorization);
    const request = match ? this.#requests.get(match[1]!) : undefined;
    if (!request) return undefined;
    const result = await this.#send(request);
    const token = result.status === 200 ? tokenOf(result.body) : undefined;
    return token === undefined ? undefined : `Bearer ${token}`;
  }

  async #send(request: TokenRequest): Promise<HttpResult> {
    const { method, url, headers, body } = request;
    const result = await this.#transport.send({ method, url, headers, ...(body.byteLength > 0 || method !== 'GET' ? { body } : {}) });
    if (result.status === 200) this.#remember(request, result.body);
    return result;
  }

  #remember(request: TokenRequest, responseBody: Buffer): void {
    const token = tokenOf(responseBody);
    if (token === undefined) return;
    this.#requests.delete(token);
    this.#requests.set(token, request);
    while (this.#requests.size > this.#capacity) this.#requests.delete(this.#requests.keys().next().value!);
  }
}

/** The token of a token response: `token`, or OAuth2's `access_token`. */
function tokenOf(body: Buffer): string | undefined {
  try {
    const json = JSON.parse(body.toString('utf8')) as { token?: unknown; access_token?: unknown };
    const token = json.token ?? json.access_token;
    return typeof token === 'string' && token !== '' ? token : undefined;
  } catch {
    return undefined;
  }
}

async function readSmallBody(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    length += chunk.byteLength;
    if (length > MAX_TOKEN_REQUEST_BYTES) throw new Error(`token request body over ${MAX_TOKEN_REQUEST_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
