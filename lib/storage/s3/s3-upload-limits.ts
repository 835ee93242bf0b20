import { type OciError, payloadTooLarge } from '../../registry/errors.ts';

// S3's multipart limits and the largest blob upload they allow (S3BlobStore refuses more before S3 would).

/** S3's smallest part, except the last one of an upload. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's largest part number. */
export const MAX_PARTS = 10_000;
/**
 * The largest blob an upload may reach. Every flushed part is ≥ 5 MiB, so 10,000 parts always hold this much
 * (10,000 × 5 MiB = 52,428,800,000 bytes ≈ 48.8 GiB); bigger uploads are refused before S3 would refuse them.
 */
export const MAX_BLOB_SIZE = MAX_PARTS * MIN_PART_SIZE;
/** One append at most: under the ~4.4 MB of raw body an API Gateway → Lambda request carries. */
export const DEFAULT_MAX_CHUNK_LENGTH = 4 * 1024 * 1024;

export function tooLarge(size: number): OciError {
  return payloadTooLarge(
    `blob upload of ${size} bytes exceeds this registry's limit of ${MAX_BLOB_SIZE} bytes ` +
      `(S3 multipart uploads have at most ${MAX_PARTS} parts, each at least ${MIN_PART_SIZE} bytes)`,
    { size, max: MAX_BLOB_SIZE },
  );
}
