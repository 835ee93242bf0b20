import type { BlobMiss, BlobMissPlan, BlobMissPolicy } from '../lib/registry/pull-through-cache.ts';
import type { BackgroundBlobCopies } from '../lib/storage/lambda/background-blob-copies.ts';

/**
 * The largest blob the registry function copies upstream → S3 within the pull that missed it, by default. The budget:
 * the function has 29 s (the HTTP API's 30 s integration timeout) and holds two 8 MiB parts at a time whatever the
 * size (lib/storage/s3/s3-streamed-object.ts). 64 MiB is ~3 s at 20 MB/s and still under 15 s at a poor 5 MB/s
 * from the upstream, with the rest of the request (rules, metadata, the S3 multipart calls) well inside the rest.
 */
export const DEFAULT_COPY_IN_REQUEST_MAX_BYTES = 64 * 1024 * 1024;

/**
 * How the registry function serves a pull-through blob miss. Lambda behind API Gateway cannot stream a layer to
 * the client (responses are buffered, at most 6 MB), so a miss is never teed as `ocireg serve` does:
 *
 * | upstream's declared size          | this pull                                           | the cache                     |
 * | --------------------------------- | --------------------------------------------------- | ----------------------------- |
 * | ≤ `copyInRequestMaxBytes`         | waits for the copy, then a 307 to S3                | stored within the request     |
 * | larger, or undeclared             | 307 to the upstream's own URL (CDN, presigned, or the blob URL of an upstream that wants no token) | copied by the copy function (async invocation, 15 min) |
 * | larger, upstream serves only behind its token | 503 UNAVAILABLE "try again in a minute" | same                          |
 *
 * The last row is what streaming through the function would have to answer anyway: its response limit (6 MB) is below
 * the in-request copy limit, so no blob that the function could stream is ever too large to copy.
 */
export class AwsBlobMissPolicy implements BlobMissPolicy {
  readonly #copies: BackgroundBlobCopies | undefined;
  readonly #maxBytes: number;
  readonly #log: (entry: Record<string, unknown>) => void;

  /** Without `copies` (no copy function configured), large blobs are redirected but never cached. */
  constructor(options: { copies?: BackgroundBlobCopies | undefined; copyInRequestMaxBytes?: number; log?: (entry: Record<string, unknown>) => void }) {
    this.#copies = options.copies;
    this.#maxBytes = options.copyInRequestMaxBytes ?? DEFAULT_COPY_IN_REQUEST_MAX_BYTES;
    this.#log = options.log ?? (() => undefined);
  }

  async plan(miss: BlobMiss): Promise<BlobMissPlan> {
    if (miss.size !== undefined && miss.size <= this.#maxBytes) return { kind: 'copy' };
    const started = this.#copies ? await this.#copies.start({ name: miss.name, digest: miss.digest }) : undefined;
    const msg = started === undefined ? 'cache blob too large to copy in the request, and no copy function: not cached' : started ? 'cache blob copy started in the background' : 'cache blob copy already running';
    this.#log({ level: started === undefined ? 'warn' : 'info', msg, name: miss.name, digest: miss.digest, size: miss.size, redirect: miss.url !== undefined });
    return miss.url !== undefined ? { kind: 'elsewhere', read: { kind: 'redirect', url: miss.url } } : { kind: 'elsewhere' };
  }
}
