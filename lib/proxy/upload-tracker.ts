import type { IncomingHttpHeaders } from 'node:http';
import { headerValue } from '../client/http-transport.ts';
import { uploadOffset } from '../http/ranges.ts';
import type { UpstreamAddress } from './upstream-address.ts';

/** What the proxy knows of one upload session, from the answers that passed through it. */
export interface TrackedUpload {
  /** Where the next request for this upload goes: a client-side path and query (the upstream may change it). */
  location: string;
  /** Bytes the upstream holds; undefined when unknown (after a failure): ask with GET before sending more. */
  offset: number | undefined;
  /** The most bytes one request may carry for this upload. */
  maxChunk: number;
}

const UPLOAD_START = /^\/v2\/(.+)\/blobs\/uploads\/?$/;
const UPLOAD_SESSION = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/;

/** `start` for `/v2/<name>/blobs/uploads/`, `session` for an upload's own URL. */
export function uploadPathKind(path: string): 'start' | 'session' | undefined {
  if (UPLOAD_START.test(path)) return 'start';
  if (UPLOAD_SESSION.test(path)) return 'session';
  return undefined;
}

/**
 * The uploads in flight, learned from the upstream's answers, keyed by the path of their Location. The state
 * machine of one upload, as the answers drive it:
 *
 * ```
 * POST …/uploads/ → 202 + Location ──▶ tracked (offset from Range, maxChunk from OCI-Chunk-Max-Length)
 * tracked ── 202 (PATCH, or a chunk the proxy sent) ──▶ tracked, Location and offset updated
 * tracked ── any other answer (a failure, a GET's 204) ──▶ tracked, offset unknown
 * tracked ── PUT 2xx, DELETE, 404 ──▶ forgotten
 * (not seen start: another proxy process, a restart) ── an oversized request ──▶ adopted, offset unknown
 * ```
 *
 * Memory only; the oldest are forgotten past `capacity`, and a forgotten upload is adopted again if it comes back.
 */
export class UploadTracker {
  readonly #uploads = new Map<string, TrackedUpload>();
  readonly #address: UpstreamAddress;
  readonly #defaultChunkSize: number;
  readonly #capacity: number;
  /** The last `OCI-Chunk-Max-Length` the upstream advertised: the limit for uploads the proxy did not see start. */
  #advertisedMax: number | undefined;

  constructor(address: UpstreamAddress, defaultChunkSize: number, capacity = 10_000) {
    this.#address = address;
    this.#defaultChunkSize = defaultChunkSize;
    this.#capacity = capacity;
  }

  /** The upload whose Location has this path; undefined when not tracked. */
  get(path: string): TrackedUpload | undefined {
    return this.#uploads.get(path);
  }

  /** The most bytes one request may carry: the upload's own limit, else the upstream's last advertised, else the default. */
  limitFor(upload: TrackedUpload | undefined): number {
    return upload?.maxChunk ?? this.#advertisedMax ?? this.#defaultChunkSize;
  }

  /** Updates the uploads from an answer to `method path`; returns the upload it concerned, if tracked. */
  observe(method: string, path: string, status: number, headers: IncomingHttpHeaders): TrackedUpload | undefined {
    const advertised = positive(headerValue(headers, 'oci-chunk-max-length'));
    if (advertised !== undefined) this.#advertisedMax = advertised;
    const kind = uploadPathKind(path);
    if (kind === 'start') {
      if (method !== 'POST' || status !== 202) return undefined;
      const location = this.#proxyPath(headers);
      if (location === undefined) return undefined;
      const upload = { location, offset: uploadOffset(headerValue(headers, 'range')), maxChunk: this.limitFor(undefined) };
      return this.#track(upload);
    }
    if (kind !== 'session') return undefined;
    const upload = this.#uploads.get(path);
    if ((method === 'PUT' && status < 300) || method === 'DELETE' || status === 404) {
      this.#uploads.delete(path);
      return undefined;
    }
    if (upload && status === 202) this.accepted(upload, headers);
    else if (upload) upload.offset = undefined;
    return upload;
  }

  /**
   * Updates an upload from a 202 (or a GET's 204): its Location, which may change, and its offset. `sentUpTo` is
   * where the bytes just sent end: a `0-0` Range, or none, after a chunk was accepted means that chunk's end.
   */
  accepted(upload: TrackedUpload, headers: IncomingHttpHeaders, sentUpTo?: number): void {
    const location = this.#proxyPath(headers);
    if (location !== undefined && location !== upload.location) {
      this.#uploads.delete(keyOf(upload.location));
      upload.location = location;
      this.#track(upload);
    }
    const reported = uploadOffset(headerValue(headers, 'range'));
    upload.offset = sentUpTo !== undefined && reported === 0 ? sentUpTo : reported;
  }

  /** An upload the proxy did not see start: the client's URL, without `digest`, is its location. */
  adopt(url: URL, maxChunk: number): TrackedUpload {
    const query = new URLSearchParams(url.searchParams);
    query.delete('digest');
    return this.#track({ location: `${url.pathname}${query.size > 0 ? `?${query}` : ''}`, offset: undefined, maxChunk });
  }

  #track(upload: TrackedUpload): TrackedUpload {
    const key = keyOf(upload.location);
    this.#uploads.delete(key); // re-inserted: the newest last, for eviction
    this.#uploads.set(key, upload);
    while (this.#uploads.size > this.#capacity) this.#uploads.delete(this.#uploads.keys().next().value!);
    return upload;
  }

  #proxyPath(headers: IncomingHttpHeaders): string | undefined {
    const location = headerValue(headers, 'location');
    return location === undefined ? undefined : this.#address.toProxyPath(location);
  }
}

function keyOf(location: string): string {
  return new URL(location, 'http://proxy').pathname;
}

function positive(value: string | undefined): number | undefined {
  const number = value === undefined ? NaN : Number(value);
  return Number.isSafeInteger(number) && number > 0 ? number : undefined;
}
