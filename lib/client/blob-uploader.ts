import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { uploadOffset } from '../http/ranges.ts';
import { headerValue, type HttpResult } from './http-transport.ts';
import type { RegistryClient } from './registry-client.ts';
import { backoffDelay, DEFAULT_RETRY, isTransient, RegistryError, withRetry, type RetryPolicy } from './retry.ts';

/**
 * Uploads one blob in chunks small enough for a registry behind API Gateway + Lambda, resuming where the registry
 * says it stands after a failure:
 *
 * ```
 * HEAD blobs/<digest> ── 200 ──▶ exists
 *   │ 404
 * POST uploads/?mount=<digest>[&from=<repo>] ── 201 ──▶ mounted
 *   │ 202 Location, OCI-Chunk-Max-Length
 * PATCH <location> Content-Range: a-b  ◀──┐  each ≤ the chunk size; Location and Range from every 202
 *   │ 202 Range 0-b                        │
 *   ├── more bytes ────────────────────────┘
 *   │   failure (network, 5xx, 429, 416) → back off → GET <location> → 204 Range 0-n → resume at n+1
 *   │                                        (404: the session is gone → start again with POST)
 * PUT <location>&digest=<digest> (no body) ── 201 ──▶ uploaded
 * ```
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#pushing-a-blob-in-chunks
 */

/** Where the bytes of a blob come from: a region of a file, opened afresh for each attempt. */
export interface BlobContent {
  digest: string;
  size: number;
  /** A stream of bytes `start..end` (inclusive) of the blob. */
  open(start: number, end: number): Readable;
}

export interface UploadOptions {
  /** Chunk size when the registry advertises no `OCI-Chunk-Max-Length`; never more than it advertises. */
  chunkSize?: number;
  /** A repository on the same registry that may hold the blob: try a cross-repository mount first. */
  mountFrom?: string;
  retry?: RetryPolicy;
  /** Bytes of this blob the registry holds or is receiving, as they go out (may go back after a failure). */
  onProgress?: (bytes: number) => void;
  /** Told about every retry, for a log line. */
  onRetry?: (message: string) => void;
}

export type UploadOutcome = 'exists' | 'mounted' | 'uploaded';

export interface UploadResult {
  outcome: UploadOutcome;
  /** Offsets the upload resumed from after failures (empty when nothing failed). */
  resumedAt: number[];
  chunks: number;
}

/** 4 MiB: under API Gateway's ~4.4 MiB raw-body ceiling, and what the AWS deployment advertises. */
export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;

/** Splits `size` bytes starting at `offset` into chunks of at most `chunkSize`: inclusive `[start, end]` pairs. */
export function planChunks(offset: number, size: number, chunkSize: number): Array<[number, number]> {
  if (!(chunkSize > 0)) throw new Error(`chunk size must be positive, got ${chunkSize}`);
  const chunks: Array<[number, number]> = [];
  for (let start = offset; start < size; start += chunkSize) chunks.push([start, Math.min(start + chunkSize, size) - 1]);
  return chunks;
}

/** The chunk size for an upload: the caller's wish within the registry's advertised maximum (and minimum). */
export function chunkSizeFor(response: HttpResult | undefined, wanted: number | undefined): number {
  const max = positiveHeader(response, 'oci-chunk-max-length');
  const min = positiveHeader(response, 'oci-chunk-min-length');
  let size = wanted ?? max ?? DEFAULT_CHUNK_SIZE;
  if (max !== undefined) size = Math.min(size, max);
  if (min !== undefined && min <= (max ?? Infinity)) size = Math.max(size, min);
  return size;
}

/** The next offset from an upload's `Range: 0-<end>` (absent or `0-0` means nothing is stored yet). */
export function offsetFromRange(range: string | undefined): number {
  const offset = uploadOffset(range);
  if (offset === undefined) throw new RegistryError(`unexpected upload Range "${range}"`, 0);
  return offset;
}

export async function uploadBlob(client: RegistryClient, repository: string, blob: BlobContent, options: UploadOptions = {}): Promise<UploadResult> {
  const policy = options.retry ?? DEFAULT_RETRY;
  const retryLog = (error: unknown, delay: number) => options.onRetry?.(`${short(blob.digest)}: ${(error as Error).message}; retrying in ${delay} ms`);
  const result: UploadResult = { outcome: 'uploaded', resumedAt: [], chunks: 0 };

  const head = await withRetry(() => client.request('HEAD', `/v2/${repository}/blobs/${blob.digest}`, { expect: [200, 404] }), policy, retryLog);
  if (head.status === 200) {
    options.onProgress?.(blob.size);
    return { ...result, outcome: 'exists' };
  }

  let restarts = 0;
  for (;;) {
    const query = new URLSearchParams({ mount: blob.digest });
    if (options.mountFrom) query.set('from', options.mountFrom);
    const started = await withRetry(() => client.request('POST', `/v2/${repository}/blobs/uploads/?${query}`, { expect: [201, 202] }), policy, retryLog);
    if (started.status === 201) {
      options.onProgress?.(blob.size);
      return { ...result, outcome: 'mounted' };
    }
    let location = locationOf(client, started, started.url);
    const chunkSize = chunkSizeFor(started, options.chunkSize);
    let offset = 0;
    let failures = 0;
    let lost = false;

    while (offset < blob.size) {
      const end = Math.min(offset + chunkSize, blob.size) - 1;
      try {
        const sent = { bytes: 0 };
        const response = await client.request('PATCH', location, {
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${end}`, 'content-length': String(end - offset + 1) },
          body: () => counting(blob.open(offset, end), sent, (bytes) => options.onProgress?.(offset + bytes)),
          expect: [202],
        });
        result.chunks++;
        location = locationOf(client, response, location);
        const next = offsetFromRange(headerValue(response.headers, 'range'));
        // A registry that reports less than it received is believed: the next chunk starts where it says.
        offset = next > offset ? next : end + 1;
        failures = 0;
      } catch (error) {
        const outOfOrder = error instanceof RegistryError && error.status === 416;
        if ((!isTransient(error) && !outOfOrder) || ++failures >= policy.attempts) throw error;
        const delay = backoffDelay(policy, failures - 1, error);
        retryLog(error, delay);
        await sleep(delay);
        const status = await withRetry(() => client.request('GET', location, { expect: [204, 200, 404] }), policy, retryLog);
        if (status.status === 404) {
          lost = true;
          break;
        }
        location = locationOf(client, status, location);
        offset = offsetFromRange(headerValue(status.headers, 'range'));
        result.resumedAt.push(offset);
        options.onProgress?.(offset);
        options.onRetry?.(`${short(blob.digest)}: resuming at byte ${offset} of ${blob.size}`);
      }
    }
    if (lost) {
      if (++restarts >= policy.attempts) throw new RegistryError(`${short(blob.digest)}: the registry lost the upload ${restarts} times`, 404);
      options.onRetry?.(`${short(blob.digest)}: the registry no longer knows the upload; starting again`);
      options.onProgress?.(0);
      continue;
    }

    const complete = new URL(location);
    complete.searchParams.set('digest', blob.digest);
    const finished = await withRetry(
      async () => {
        const response = await client.request('PUT', complete, { headers: { 'content-length': '0' }, expect: [201, 204, 404] });
        // A 404 after a retried PUT may mean the first PUT committed the blob and closed the session.
        if (response.status === 404) {
          const check = await client.request('HEAD', `/v2/${repository}/blobs/${blob.digest}`, { expect: [200, 404] });
          if (check.status !== 200) throw new RegistryError(`PUT ${complete.pathname} answered 404: the upload is gone`, 404);
        }
        return response;
      },
      policy,
      retryLog,
    );
    const stored = headerValue(finished.headers, 'docker-content-digest');
    if (stored !== undefined && finished.status !== 404 && stored !== blob.digest) {
      throw new RegistryError(`the registry stored ${stored} for blob ${blob.digest}`, finished.status);
    }
    options.onProgress?.(blob.size);
    return result;
  }
}

function locationOf(client: RegistryClient, response: HttpResult, current: URL): URL {
  const location = headerValue(response.headers, 'location');
  if (!location) {
    if (response.status === 202 && response.url.pathname.endsWith('/uploads/')) throw new RegistryError(`POST ${response.url.pathname} answered 202 without a Location`, 202);
    return current;
  }
  return client.url(location, response.url);
}

function positiveHeader(response: HttpResult | undefined, name: string): number | undefined {
  const value = response && headerValue(response.headers, name);
  const number = value === undefined ? NaN : Number(value);
  return Number.isSafeInteger(number) && number > 0 ? number : undefined;
}

function counting(stream: Readable, sent: { bytes: number }, report: (bytes: number) => void): Readable {
  stream.on('data', (chunk: Buffer) => {
    sent.bytes += chunk.byteLength;
    report(sent.bytes);
  });
  return stream;
}

export function short(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}
