import { OciError, type UploadPosition } from '../registry/errors.ts';
import type { ByteRange } from '../registry/types.ts';

/**
 * Byte ranges of uploads (Content-Range on PATCH, Range on responses) and of blob reads (Range on GET).
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#pushing-a-blob-in-chunks
 */

/** A chunk's `Content-Range`: the spec's `<start>-<end>`; the RFC 9110 `bytes <start>-<end>/<total>` form is accepted too. */
export function parseContentRange(header: string): ByteRange {
  const range = readContentRange(header);
  if (!range) throw new OciError('RANGE_INVALID', 'malformed Content-Range', { contentRange: header });
  return range;
}

/** {@link parseContentRange}, undefined for a malformed header. */
export function readContentRange(header: string): ByteRange | undefined {
  const match = /^\s*(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?\s*$/.exec(header);
  if (!match) return undefined;
  const range = { start: Number(match[1]), end: Number(match[2]) };
  if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.end < range.start) return undefined;
  return range;
}

/** The `Range` an upload reports: bytes `0-<last received>`; `0-0` before any byte, as distribution answers. */
export function uploadRange(offset: number): string {
  return `0-${Math.max(offset - 1, 0)}`;
}

/** Where an upload stands, as POST, PATCH, GET and a 416 on the upload report it. */
export function uploadPositionHeaders(position: UploadPosition): Record<string, string> {
  return {
    location: `/v2/${position.name}/blobs/uploads/${position.uploadId}`,
    range: uploadRange(position.offset),
    'docker-upload-uuid': position.uploadId,
  };
}

/**
 * The offset an upload's `Range` reports, the inverse of {@link uploadRange}: the next byte to send. Absent, empty
 * or `0-0` is 0 (the `0-0` convention cannot tell "no byte" from "one byte": the caller who sent bytes knows which);
 * undefined when the header is not `0-<end>` (a `bytes=` prefix is tolerated, as some registries send it).
 */
export function uploadOffset(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === '') return 0;
  const match = /^\s*(?:bytes=)?0-(\d+)\s*$/.exec(header);
  if (!match) return undefined;
  const end = Number(match[1]);
  if (!Number.isSafeInteger(end)) return undefined;
  return end === 0 ? 0 : end + 1;
}

/**
 * A GET's `Range` (RFC 9110 §14.1.2) against a blob of `size` bytes. Forms we do not serve (several ranges,
 * other units) are ignored, which means the whole blob, as the RFC allows.
 */
export function parseByteRange(header: string, size: number): ByteRange | 'unsatisfiable' | undefined {
  const match = /^\s*bytes=(\d*)-(\d*)\s*$/.exec(header);
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(size - suffix, 0), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}
