import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Credentials } from '../client/docker-credentials.ts';
import { headerValue, HttpTransport, type HttpResult } from '../client/http-transport.ts';
import { RegistryClient, type Challenge } from '../client/registry-client.ts';
import { digestOf } from '../registry/digest.ts';

/**
 * What the doctor's checks share: the registry, a client that authenticates as docker does (lib/client), the
 * repository the doctor pushes to, and what it pushed so far (the cleanup removes exactly that).
 */

export interface DoctorTarget {
  /** `http(s)://host[:port]`, no path. */
  base: URL;
  credentials?: Credentials | undefined;
  /** @default `ocireg-doctor/<random>` */
  repository?: string;
}

export interface PushedBlob {
  digest: string;
  bytes: Buffer;
}

export interface PushedManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

/** Every status is an observation here: the checks judge them, the client must not throw on them. */
const ANY_STATUS = Array.from({ length: 500 }, (_, index) => index + 100);

/** The Go HTTP client's limit (net/http: "stopped after 10 redirects"). */
const MAX_REDIRECTS = 10;

export class DoctorSession {
  readonly base: URL;
  readonly repository: string;
  readonly credentials: Credentials | undefined;
  readonly transport = new HttpTransport({ idleTimeoutMs: 60_000, maxSockets: 4 });
  readonly client: RegistryClient;

  /** The `Bearer` challenge of `GET /v2/`, when the registry wants tokens. */
  challenge: Challenge | undefined;
  /** `OCI-Chunk-Max-Length` from the upload POST, when advertised. */
  chunkMaxLength: number | undefined;
  /** Blobs by role: `config`, `layer`, `streamed`, `large`, `empty`. */
  readonly blobs = new Map<string, PushedBlob>();
  /** Manifests by role: `image`, `referrer`. */
  readonly manifests = new Map<string, PushedManifest>();
  readonly tags: string[] = [];
  /** Upload Locations opened and maybe left open (cancelled by the cleanup). */
  readonly openUploads = new Set<string>();

  constructor(target: DoctorTarget) {
    this.base = target.base;
    this.credentials = target.credentials;
    this.repository = target.repository ?? `ocireg-doctor/${randomBytes(6).toString('hex')}`;
    this.client = new RegistryClient({
      registry: target.base.host,
      plainHttp: target.base.protocol === 'http:',
      credentials: target.credentials,
      scopes: [`repository:${this.repository}:pull,push,delete`],
      transport: this.transport,
      userAgent: 'ocireg-doctor',
    });
  }

  /** `/v2/<repository>/<rest>` */
  path(rest: string): string {
    return `/v2/${this.repository}/${rest}`;
  }

  /** A request as the registry client sends it (token auth answered as docker does); any status is returned. */
  request(method: string, target: string | URL, options: { headers?: Record<string, string>; body?: Uint8Array | (() => Readable) } = {}): Promise<HttpResult> {
    return this.client.request(method, target, { ...options, expect: ANY_STATUS });
  }

  /** A request with no credentials at all, e.g. the first `GET /v2/` or a presigned URL. */
  raw(method: string, url: URL, options: { headers?: Record<string, string>; body?: Uint8Array } = {}): Promise<HttpResult> {
    return this.transport.send({ method, url, headers: { 'user-agent': 'ocireg-doctor', ...options.headers }, ...(options.body ? { body: options.body } : {}) });
  }

  /**
   * Sends and follows redirects as Go's HTTP client does for GET and HEAD (docker, containerd, skopeo): same
   * method, the registry's credentials only to the registry's host (and never next to a presigned query).
   */
  async follow(method: 'GET' | 'HEAD', target: string | URL, headers: Record<string, string> = {}): Promise<HttpResult[]> {
    const hops: HttpResult[] = [];
    let url = this.client.url(target);
    for (;;) {
      const response = url.host === this.base.host ? await this.request(method, url, { headers }) : await this.raw(method, url, { headers });
      hops.push(response);
      const location = headerValue(response.headers, 'location');
      if (![301, 302, 303, 307, 308].includes(response.status) || location === undefined || hops.length > MAX_REDIRECTS) return hops;
      url = new URL(location, url);
    }
  }

  /** POST an upload, then PUT the whole blob with `?digest=` (containerd, buildkit, oras). */
  async pushMonolithic(role: string, bytes: Buffer): Promise<{ post: HttpResult; put?: HttpResult; digest: string }> {
    const digest = digestOf(bytes);
    const post = await this.request('POST', this.path('blobs/uploads/'));
    const location = headerValue(post.headers, 'location');
    if (post.status !== 202 || location === undefined) return { post, digest };
    const url = this.client.url(location, this.base);
    this.openUploads.add(url.href);
    url.searchParams.set('digest', digest);
    const put = await this.request('PUT', url, { headers: { 'content-type': 'application/octet-stream' }, body: bytes });
    if (put.status === 201) {
      this.openUploads.delete(this.client.url(location, this.base).href);
      this.blobs.set(role, { digest, bytes });
    }
    return { post, put, digest };
  }

  close(): void {
    this.transport.close();
  }
}

/** A URL as a row shows it: presigned queries shortened (they are long and hold a signature). */
export function showUrl(url: URL | string): string {
  const parsed = typeof url === 'string' ? new URL(url) : url;
  if (/X-Amz-Signature=/i.test(parsed.search)) return `${parsed.origin}${parsed.pathname}?X-Amz-…(presigned)`;
  return `${parsed.origin}${parsed.pathname}${parsed.search}`;
}

/** `name: value` of the named headers that are present, `name: (absent)` for the others. */
export function showHeaders(headers: IncomingHttpHeaders, names: string[]): string {
  return names.map((name) => `${name}: ${headerValue(headers, name) ?? '(absent)'}`).join(', ');
}

/** The first 200 characters of a body, as text. */
export function showBody(body: Buffer): string {
  const text = body.toString('utf8').replace(/\s+/g, ' ').trim();
  if (text === '') return '(empty body)';
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

export { headerValue };
