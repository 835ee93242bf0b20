import { OciError } from '../../registry/errors.ts';
import type { Json } from '../../registry/types.ts';

/**
 * What an upload needs between invocations, kept by the core in the upload session: JSON of a few hundred bytes
 * plus ~23 per part, so even 10,000 parts (~230 KB) fit a DynamoDB item.
 */
export interface UploadState {
  v: 1;
  uploadId: string;
  /** Bytes appended and acknowledged. */
  size: number;
  /** hash-wasm SHA-256 state after `size` bytes, base64. */
  sha256: string;
  /** S3's multipart upload id, once the first part was flushed. */
  multipartId?: string;
  /** ETags of the flushed parts 1..n, packed by `packEtag` and joined by commas (≤ ~23 bytes a part). */
  etags: string;
  /** Appends not yet in a part, in order: [key, size]. Together < 5 MiB, at most MAX_BUFFERED_APPENDS. */
  buffer: [string, number][];
  /** Buffer objects already copied into a part; deleted by the next call (see the concurrency note). */
  garbage: string[];
}

/**
 * Part ETags are `"<32 hex>"` (MD5) for unencrypted and SSE-S3 objects: kept as base64 of the 16 bytes (22
 * characters). Any other form is kept verbatim behind a `!`.
 */
export function packEtag(etag: string): string {
  const hex = /^"([0-9a-f]{32})"$/.exec(etag)?.[1];
  return hex ? Buffer.from(hex, 'hex').toString('base64url') : `!${etag}`;
}

export function unpackEtag(packed: string): string {
  return packed.startsWith('!') ? packed.slice(1) : `"${Buffer.from(packed, 'base64url').toString('hex')}"`;
}

export function etagsOf(state: UploadState): string[] {
  return state.etags === '' ? [] : state.etags.split(',').map(unpackEtag);
}

export function toJson(state: UploadState): Json {
  return state as unknown as Json;
}

/** The state as the core kept it; UNKNOWN when it is not one this store wrote. */
export function parseState(json: Json): UploadState {
  const state = json as Partial<UploadState> | null;
  if (
    typeof state !== 'object' ||
    state === null ||
    state.v !== 1 ||
    typeof state.uploadId !== 'string' ||
    typeof state.size !== 'number' ||
    typeof state.sha256 !== 'string' ||
    typeof state.etags !== 'string' ||
    !Array.isArray(state.buffer) ||
    !Array.isArray(state.garbage)
  ) {
    throw new OciError('UNKNOWN', 'corrupt S3 upload state');
  }
  return state as UploadState;
}
