import type { OutgoingHttpHeaders } from 'node:http';
import type { HttpTransport } from '../client/http-transport.ts';

/**
 * Fresh tokens for long uploads. A client fetches a token once (through the proxy, since the realm was rewritten)
 * and sends one long PATCH; the proxy turns it into many chunk requests, and a token (5 minutes on ocireg) can
 * expire before the last one. The proxy remembers which token request produced which token, and when a chunk is
 * refused with 401 it sends the same token request again (the client's own credentials, as the client sent them)
 * and carries on with the new token. Remembered requests live in memory only, at most `capacity` of them.
 */
export interface TokenRequest {
  method: string;
  url: URL;
  headers: OutgoingHttpHeaders;
  body: Buffer;
}

export class TokenReplay {
  readonly #requests = new Map<string, TokenRequest>();
  readonly #capacity: number;
  readonly #transport: HttpTransport;

  constructor(transport: HttpTransport, capacity = 1000) {
    this.#transport = transport;
    this.#capacity = capacity;
  }

  /** Records the request behind a token response (200 with `token` or `access_token`). */
  remember(request: TokenRequest, responseBody: Buffer): void {
    const token = tokenOf(responseBody);
    if (token === undefined) return;
    this.#requests.delete(token);
    this.#requests.set(token, request);
    while (this.#requests.size > this.#capacity) this.#requests.delete(this.#requests.keys().next().value!);
  }

  /** A new `Authorization` for one whose token was refused, or undefined when the proxy did not see it issued. */
  async refresh(authorization: string | undefined): Promise<string | undefined> {
    const match = authorization === undefined ? null : /^Bearer\s+(\S+)$/i.exec(authorization);
    const request = match ? this.#requests.get(match[1]!) : undefined;
    if (!request) return undefined;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
    const result = await this.#transport.send({ method: request.method, url: request.url, headers, ...(request.body.byteLength > 0 || request.method !== 'GET' ? { body: request.body } : {}) });
    if (result.status !== 200) return undefined;
    this.remember(request, result.body);
    const token = tokenOf(result.body);
    return token === undefined ? undefined : `Bearer ${token}`;
  }
}

function tokenOf(body: Buffer): string | undefined {
  try {
    const json = JSON.parse(body.toString('utf8')) as { token?: unknown; access_token?: unknown };
    const token = json.token ?? json.access_token;
    return typeof token === 'string' && token !== '' ? token : undefined;
  } catch {
    return undefined;
  }
}
