import type { IncomingMessage } from 'node:http';
import type { Credentials } from './docker-credentials.ts';
import { headerValue, HttpTransport, type HttpCall, type HttpResult } from './http-transport.ts';
import { parseRetryAfter, RegistryError } from './retry.ts';

/**
 * A small client for one registry: builds URLs, authenticates the way docker does, and turns unexpected answers
 * into `RegistryError`s. Retrying transient failures is the caller's business (`withRetry`), because only the
 * caller knows whether a request may be repeated as is (a chunk may not: the upload must be asked where it stands).
 *
 * Authentication: a `401` with `WWW-Authenticate: Bearer realm=…,service=…,scope=…` gets a token from the realm
 * (GET with Basic credentials, or POST `grant_type=refresh_token` with docker's stored identity token) for the
 * challenge's scopes plus the client's own, and the request is sent again with it; a `Basic` challenge is answered
 * with the credentials. A token is reused for later requests until a `401` says it is no longer good.
 * @see https://distribution.github.io/distribution/spec/auth/token/
 */
export interface RegistryClientOptions {
  /** `host[:port]`. */
  registry: string;
  /** Talk HTTP instead of HTTPS. */
  plainHttp?: boolean;
  credentials?: Credentials | undefined;
  /** Scopes to ask for in every token request, e.g. `repository:team/app:pull,push`. */
  scopes?: string[];
  transport?: HttpTransport;
  userAgent?: string;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: HttpCall['body'];
  /** Statuses that are success; anything else throws a RegistryError. Default: any 2xx. */
  expect?: number[];
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export class RegistryClient {
  readonly base: URL;
  readonly registry: string;
  readonly transport: HttpTransport;
  readonly #credentials: Credentials | undefined;
  readonly #scopes: string[];
  readonly #userAgent: string;
  #authorization: string | undefined;
  #pendingAuth: Promise<string | undefined> | undefined;

  constructor(options: RegistryClientOptions) {
    this.registry = options.registry;
    this.base = new URL(`${options.plainHttp ? 'http' : 'https'}://${options.registry}`);
    this.transport = options.transport ?? new HttpTransport();
    this.#credentials = options.credentials;
    this.#scopes = options.scopes ?? [];
    this.#userAgent = options.userAgent ?? 'ocireg-push';
  }

  /** Whether requests to the registry carry an Authorization (a token or Basic credentials were needed). */
  get authorized(): boolean {
    return this.#authorization !== undefined;
  }

  /** A path (`/v2/…`) or a Location (relative or absolute) as a URL on this registry. */
  url(target: string | URL, relativeTo?: URL): URL {
    return target instanceof URL ? target : new URL(target, relativeTo ?? this.base);
  }

  /**
   * GET /v2/ and authenticate if challenged, so that large bodies are not sent only to learn a `401`. Throws when
   * the registry cannot be reached or the credentials are refused.
   */
  async ping(): Promise<void> {
    await this.request('GET', '/v2/', { expect: [200] });
  }

  async request(method: string, target: string | URL, options: RequestOptions = {}): Promise<HttpResult> {
    const url = this.url(target);
    let response = await this.#send(method, url, options);
    if (response.status === 401) {
      const authorization = await this.#authenticate(response, this.#authorization);
      if (authorization !== undefined) response = await this.#send(method, url, options);
    }
    const expected = options.expect ? options.expect.includes(response.status) : response.status >= 200 && response.status < 300;
    if (expected) return response;
    const error = errorOf(method, url, response);
    const who = this.#credentials ? `user ${this.#credentials.username}` : 'anonymous access (no credentials: use --creds, or docker login ' + this.registry + ')';
    if (response.status === 401) throw new RegistryError(`unauthorized with ${who}: ${error.message}`, 401, { code: error.code });
    if (response.status === 403) throw new RegistryError(`denied to ${who}: ${error.message}`, 403, { code: error.code });
    throw error;
  }

  /**
   * Like `request`, but hands the answer over unread (a blob stream), after answering a `401` challenge and following
   * redirects (a blob GET is often sent to a CDN, which gets no Authorization: #send adds it for this host only).
   * The caller reads or destroys the body whatever the status. `visited` receives each URL asked, the last answered.
   */
  async open(method: string, target: string | URL, headers: Record<string, string> = {}, visited?: URL[]): Promise<IncomingMessage> {
    let url = this.url(target);
    visited?.push(url);
    let response = await this.#openOnce(method, url, headers);
    if (response.statusCode === 401) {
      const challenged = { status: 401, headers: response.headers, body: Buffer.alloc(0), url };
      response.resume();
      const authorization = await this.#authenticate(challenged, this.#authorization);
      if (authorization !== undefined) response = await this.#openOnce(method, url, headers);
    }
    for (let hops = 0; hops < 5 && [301, 302, 303, 307, 308].includes(response.statusCode ?? 0) && response.headers.location; hops++) {
      response.resume();
      url = this.url(response.headers.location, url);
      visited?.push(url);
      response = await this.#openOnce(method, url, headers);
    }
    return response;
  }

  #openOnce(method: string, url: URL, extra: Record<string, string>): Promise<IncomingMessage> {
    const headers: Record<string, string> = { 'user-agent': this.#userAgent, ...extra };
    if (this.#authorization !== undefined && url.host === this.base.host) headers.authorization = this.#authorization;
    return this.transport.open({ method, url, headers });
  }

  #send(method: string, url: URL, options: RequestOptions): Promise<HttpResult> {
    const headers: Record<string, string> = { 'user-agent': this.#userAgent, ...options.headers };
    if (this.#authorization !== undefined && url.host === this.base.host) headers.authorization = this.#authorization;
    return this.transport.send({ method, url, headers, ...(options.body !== undefined ? { body: options.body } : {}) });
  }

  /** Answers a challenge once for all concurrent requests that received it; returns the new Authorization. */
  #authenticate(response: HttpResult, used: string | undefined): Promise<string | undefined> {
    if (this.#authorization !== used) return Promise.resolve(this.#authorization);
    this.#pendingAuth ??= this.#answerChallenge(response).finally(() => {
      this.#pendingAuth = undefined;
    });
    return this.#pendingAuth;
  }

  async #answerChallenge(response: HttpResult): Promise<string | undefined> {
    const challenges = parseChallenges(headerValue(response.headers, 'www-authenticate') ?? '');
    const bearer = challenges.find((challenge) => challenge.scheme === 'bearer');
    if (bearer?.params.realm) {
      this.#authorization = `Bearer ${await this.#fetchToken(bearer.params)}`;
      return this.#authorization;
    }
    if (challenges.some((challenge) => challenge.scheme === 'basic') && this.#credentials && 'password' in this.#credentials) {
      this.#authorization = basic(this.#credentials.username, this.#credentials.password);
      return this.#authorization;
    }
    return undefined;
  }

  async #fetchToken(params: Record<string, string>): Promise<string> {
    const realm = new URL(params.realm!);
    const scopes = [...new Set([...(params.scope ? params.scope.split(' ') : []), ...this.#scopes])];
    const credentials = this.#credentials;
    let result: HttpResult;
    if (credentials && 'identityToken' in credentials) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credentials.identityToken, client_id: 'ocireg' });
      if (params.service) form.set('service', params.service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      result = await this.transport.send({
        method: 'POST',
        url: realm,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': this.#userAgent },
        body: Buffer.from(form.toString()),
      });
    } else {
      if (params.service) realm.searchParams.set('service', params.service);
      for (const scope of scopes) realm.searchParams.append('scope', scope);
      const headers: Record<string, string> = { 'user-agent': this.#userAgent };
      if (credentials) {
        realm.searchParams.set('account', credentials.username);
        headers.authorization = basic(credentials.username, credentials.password);
      }
      result = await this.transport.send({ method: 'GET', url: realm, headers });
    }
    if (result.status !== 200) {
      const error = errorOf(result.url.search ? 'GET' : 'POST', new URL(realm.origin + realm.pathname), result);
      throw new RegistryError(`the registry refused the credentials${credentials ? ` of ${credentials.username}` : ' (none given: use --creds or docker login)'}: ${error.message}`, result.status, { code: error.code });
    }
    const body = JSON.parse(result.body.toString('utf8')) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError(`the token endpoint ${realm.origin}${realm.pathname} answered without a token`, result.status);
    return token;
  }
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** A RegistryError from a response, with the spec's error code and message when the body has them. */
export function errorOf(method: string, url: URL, response: HttpResult): RegistryError {
  let code: string | undefined;
  let detail = '';
  try {
    const body = JSON.parse(response.body.toString('utf8')) as { errors?: Array<{ code?: string; message?: string }> };
    const first = body.errors?.[0];
    if (first) {
      code = first.code;
      detail = `: ${first.code ?? ''}${first.message ? ` ${first.message}` : ''}`;
    }
  } catch {
    const text = response.body.toString('utf8').trim();
    if (text) detail = `: ${text.slice(0, 200)}`;
  }
  const retryAfterMs = parseRetryAfter(headerValue(response.headers, 'retry-after'));
  return new RegistryError(`${method} ${url.origin}${url.pathname} answered ${response.status}${detail}`, response.status, { code, retryAfterMs });
}

/**
 * `WWW-Authenticate` (RFC 9110 §11.6.1): `Bearer realm="…",service="…",scope="a b"`; several challenges may be
 * comma-separated, and quoted values may hold commas.
 */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  const token = /\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)/y;
  let at = 0;
  let current: Challenge | undefined;
  while (at < header.length) {
    token.lastIndex = at;
    const word = token.exec(header);
    if (!word) {
      at++;
      continue;
    }
    at = token.lastIndex;
    const rest = header.slice(at);
    const equals = /^\s*=\s*/.exec(rest);
    if (equals && current) {
      at += equals[0].length;
      let value: string;
      if (header[at] === '"') {
        let end = at + 1;
        value = '';
        while (end < header.length && header[end] !== '"') {
          if (header[end] === '\\') end++;
          value += header[end] ?? '';
          end++;
        }
        at = end + 1;
      } else {
        const plain = /^[^,\s]*/.exec(header.slice(at))![0];
        value = plain;
        at += plain.length;
      }
      current.params[word[1]!.toLowerCase()] = value;
    } else {
      current = { scheme: word[1]!.toLowerCase(), params: {} };
      challenges.push(current);
    }
    const separator = /^\s*,?/.exec(header.slice(at));
    at += separator ? separator[0].length : 0;
  }
  return challenges;
}
