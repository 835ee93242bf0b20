import { createHash } from 'node:crypto';
import { readAll } from '../../registry/bytes.ts';
import type { ParsedDigest } from '../../registry/digest.ts';
import { digestInvalid, OciError } from '../../registry/errors.ts';
import type { BlobRead, BlobStore } from '../../registry/ports.ts';
import type { ByteRange, ByteSource, Json } from '../../registry/types.ts';

export interface MemoryBlobStoreOptions {
  /** Simulates a platform body limit (the S3 store's), for tests of the 413 path. */
  maxChunkLength?: number;
}

/** Blob bytes in memory: the fake for core unit tests, and the reference the contract suite is written against. */
export class MemoryBlobStore implements BlobStore {
  readonly maxChunkLength: number | undefined;
  readonly #uploads = new Map<string, Uint8Array[]>();
  readonly #blobs = new Map<string, Uint8Array>();

  constructor(options: MemoryBlobStoreOptions = {}) {
    this.maxChunkLength = options.maxChunkLength;
  }

  async startUpload(uploadId: string): Promise<Json> {
    this.#uploads.set(uploadId, []);
    return { uploadId };
  }

  async append(state: Json, offset: number, body: ByteSource): Promise<{ state: Json; size: number }> {
    const chunks = this.#chunks(state);
    if (offset !== sizeOf(chunks)) throw new OciError('UNKNOWN', 'append at an offset other than the upload size');
    const bytes = await readAll(body);
    if (bytes.byteLength > 0) chunks.push(Uint8Array.from(bytes));
    return { state, size: offset + bytes.byteLength };
  }

  async commit(state: Json, digest: ParsedDigest, size: number): Promise<string> {
    const chunks = this.#chunks(state);
    if (sizeOf(chunks) !== size) throw new OciError('SIZE_INVALID', 'upload size does not match', { size });
    const hash = createHash(digest.algorithm);
    for (const chunk of chunks) hash.update(chunk);
    const actual = `${digest.algorithm}:${hash.digest('hex')}`;
    if (actual !== digest.digest) {
      throw digestInvalid('uploaded content has another digest', { expected: digest.digest, actual });
    }
    // One location per upload, as on S3 and fs: a blob uploaded again while garbage collection deletes the old
    // copy must not be overwritten by it nor deleted with it.
    const location = `${digest.digest}@${uploadIdOf(state)}`;
    this.#blobs.set(location, Buffer.concat(chunks));
    this.#uploads.delete(uploadIdOf(state));
    return location;
  }

  async abort(state: Json): Promise<void> {
    this.#uploads.delete(uploadIdOf(state));
  }

  async read(location: string, range?: ByteRange): Promise<BlobRead> {
    const blob = this.#blobs.get(location);
    if (!blob) throw new OciError('UNKNOWN', `blob bytes missing at ${location}`);
    const bytes = range ? blob.subarray(range.start, range.end + 1) : blob;
    return { kind: 'stream', body: (async function* () { yield bytes; })() };
  }

  async delete(location: string): Promise<void> {
    this.#blobs.delete(location);
  }

  /** Uploads not yet committed or aborted: lets tests assert that nothing is left behind. */
  get openUploads(): number {
    return this.#uploads.size;
  }

  #chunks(state: Json): Uint8Array[] {
    const chunks = this.#uploads.get(uploadIdOf(state));
    if (!chunks) throw new OciError('UNKNOWN', 'upload storage missing');
    return chunks;
  }
}

function uploadIdOf(state: Json): string {
  return (state as { uploadId: string }).uploadId;
}

function sizeOf(chunks: Uint8Array[]): number {
  return chunks.reduce((total, chunk) => total + chunk.byteLength, 0);
}
