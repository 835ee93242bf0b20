import type { IncomingMessage } from 'node:http';
import { errorMessage, OciError, tooManyRequests } from '../registry/errors.ts';
import type { CacheRule, Upstream, UpstreamManifest } from '../registry/ports.ts';
import type { ByteSource } from '../registry/types.ts';
import { headerValue, HttpTransport, NetworkError } from './http-transport.ts';
import { errorOf, RegistryClient } from './registry-client.ts';
import { RegistryError } from './retry.ts';

/** Every manifest type a cache stores, so the upstream answers with the exact bytes it holds (no conversion). */
const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** When a 429 names no Retry-After, the client is told to come back in this many seconds. */
const DEFAULT_RETRY_AFTER_SECONDS = 60;

/**
 * A pull-through cache's upstream over HTTP(S): a RegistryClient (Docker token auth or Basic, anonymous or with the
 * rule's credentials; its token is reused across requests) per rule. 404 is "absent". Every other failure is
 * translated here, at the boundary, into the OciError the client of the cache gets when nothing is cached:
 *
 * | upstream answer                                   | OciError            | why                                        |
 * |---------------------------------------------------|---------------------|--------------------------------------------|
 * | 401/403 (registry or its token endpoint)          | DENIED 403          | the rule's credentials (or anonymous) are refused: fix the rule, retrying will not help |
 * | 429                                               | TOOMANYREQUESTS 429 | with the upstream's Retry-After (Docker Hub's pull limit) |
 * | no connection, timeout, 5xx, anything unexpected  | UNAVAILABLE 503     | distribution's errcode for a service that cannot answer now |
 *
 * The cache serves what it holds instead whenever it can (pull-through-cache.ts).
 */
export class HttpUpstream implements Upstream {
  readonly #client: RegistryClient;
  readonly #rule: CacheRule;
  /** A blob body with no byte for this long is abandoned: the transport's idle timeout. */
  readonly #blobIdleTimeoutMs: number;

  constructor(rule: CacheRule, transport = new HttpTransport()) {
    const base = new URL(rule.upstream);
    this.#rule = rule;
    this.#blobIdleTimeoutMs = transport.idleTimeoutMs;
    this.#client = new RegistryClient({
      registry: base.host,
      plainHttp: base.protocol === 'http:',
      credentials: rule.credentials,
      transport,
      userAgent: 'ocireg-pull-through-cache',
    });
  }

  async headManifest(name: string, reference: string): Promise<string | undefined> {
    const result = await this.#call(name, () => this.#client.request('HEAD', `/v2/${name}/manifests/${reference}`, { headers: { accept: MANIFEST_ACCEPT }, expect: [200, 404] }));
    if (result.status === 404) return undefined;
    // Docker-Content-Digest is a SHOULD: without it the tag cannot be compared, so the cache GETs the manifest.
    return headerValue(result.headers, 'docker-content-digest') ?? '';
  }

  async getManifest(name: string, reference: string): Promise<UpstreamManifest | undefined> {
    const result = await this.#call(name, () => this.#client.request('GET', `/v2/${name}/manifests/${reference}`, { headers: { accept: MANIFEST_ACCEPT }, expect: [200, 404] }));
    if (result.status === 404) return undefined;
    return {
      digest: headerValue(result.headers, 'docker-content-digest') ?? '',
      mediaType: (headerValue(result.headers, 'content-type') ?? '').split(';')[0]!.trim(),
      content: new Uint8Array(result.body),
    };
  }

  async openBlob(name: string, digest: string): Promise<{ size: number | undefined; body: ByteSource } | undefined> {
    const response = await this.#call(name, () => this.#client.open('GET', `/v2/${name}/blobs/${digest}`));
    const status = response.statusCode ?? 0;
    if (status === 404) {
      response.resume();
      return undefined;
    }
    if (status !== 200) throw this.#translate(name, errorOf('GET', this.#client.url(`/v2/${name}/blobs/${digest}`), { status, headers: response.headers, body: await smallBody(response), url: this.#client.base }));
    // The transport stops timing once the head arrived; a cache fill that others wait for must not hang on a body
    // that stopped coming: a socket idle as long as the transport allows (default 120 s) fails the copy (nothing is
    // stored, waiters get UNAVAILABLE).
    const idle = this.#blobIdleTimeoutMs;
    response.setTimeout(idle, () => response.destroy(new NetworkError(`the upstream sent nothing of ${name}@${digest} for ${idle / 1000} s`)));
    const length = headerValue(response.headers, 'content-length');
    return { size: length === undefined ? undefined : Number(length), body: translated(response, (error) => this.#translate(name, error)) };
  }

  /**
   * Opens the blob GET (token auth and redirects as for a pull), takes its head and closes it unread. The URL that
   * answered is one a client can follow without our credentials when it is on another host (a CDN or presigned
   * location: it carries its own authorisation) or when the upstream serves it without a token (asked by HEAD).
   */
  async locateBlob(name: string, digest: string): Promise<{ size: number | undefined; url?: string } | undefined> {
    const path = `/v2/${name}/blobs/${digest}`;
    const visited: URL[] = [];
    const response = await this.#call(name, () => this.#client.open('GET', path, {}, visited));
    const status = response.statusCode ?? 0;
    response.destroy();
    if (status === 404) return undefined;
    if (status !== 200) throw this.#translate(name, errorOf('GET', this.#client.url(path), { status, headers: response.headers, body: Buffer.alloc(0), url: this.#client.base }));
    const length = headerValue(response.headers, 'content-length');
    const answered = visited.at(-1)!;
    // The client sends its token to every later request once it has one: whether this URL needs it takes a HEAD without.
    const openToClients =
      answered.host !== this.#client.base.host ||
      !this.#client.authorized ||
      (await this.#client.transport.send({ method: 'HEAD', url: answered, headers: { 'user-agent': 'ocireg-pull-through-cache' } }).then((result) => result.status === 200, () => false));
    return { size: length === undefined ? undefined : Number(length), ...(openToClients ? { url: answered.href } : {}) };
  }

  async #call<T>(name: string, exchange: () => Promise<T>): Promise<T> {
    try {
      return await exchange();
    } catch (error) {
      throw this.#translate(name, error);
    }
  }

  #translate(name: string, error: unknown): OciError {
    const upstream = this.#rule.upstream;
    const detail = { prefix: this.#rule.prefix, upstream, name, cause: errorMessage(error) };
    if (error instanceof RegistryError && (error.status === 401 || error.status === 403)) {
      const who = this.#rule.credentials
        ? `the credentials of ${this.#rule.credentials.username} stored in cache rule ${this.#rule.prefix}`
        : `anonymous access (cache rule ${this.#rule.prefix} has no credentials: ocireg cache add ${this.#rule.prefix} ${upstream} --username U --password-stdin)`;
      return new OciError('DENIED', `the upstream ${upstream} refused ${who} for ${name}: it answered ${error.status}${error.code ? ` ${error.code}` : ''}`, detail, { cause: error });
    }
    if (error instanceof RegistryError && error.status === 429) {
      const seconds = error.retryAfterMs === undefined ? DEFAULT_RETRY_AFTER_SECONDS : Math.ceil(error.retryAfterMs / 1000);
      return tooManyRequests(`the upstream ${upstream} is rate-limiting pulls of ${name}: ${error.message}`, seconds, { cause: error });
    }
    const reason = error instanceof NetworkError ? 'cannot be reached' : 'failed';
    return new OciError('UNAVAILABLE', `the upstream ${upstream} ${reason} while fetching ${name}: ${errorMessage(error)}`, detail, { cause: error });
  }
}

/**
 * The body's chunks; a failure while reading becomes the OciError `translate` makes of it. Ending the iteration
 * early (or before it started) closes the upstream's answer.
 */
function translated(body: IncomingMessage, translate: (error: unknown) => OciError): ByteSource {
  return {
    [Symbol.asyncIterator]() {
      const chunks = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      return {
        next: () =>
          chunks.next().catch((error: unknown) => {
            throw translate(error);
          }),
        return: async () => {
          body.destroy();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

/** An error answer's body, capped (it only feeds an error message). */
async function smallBody(response: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    if (length < 65_536) chunks.push(chunk);
    length += chunk.byteLength;
  }
  return Buffer.concat(chunks);
}

/** One HttpUpstream per rule (same prefix, upstream and credentials), so each keeps its token between requests. */
export function httpUpstreams(): (rule: CacheRule) => Upstream {
  const transport = new HttpTransport();
  const made = new Map<string, HttpUpstream>();
  return (rule) => {
    const key = JSON.stringify(rule);
    let upstream = made.get(key);
    if (!upstream) made.set(key, (upstream = new HttpUpstream(rule, transport)));
    return upstream;
  };
}
