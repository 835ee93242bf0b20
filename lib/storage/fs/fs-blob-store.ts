import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ParsedDigest } from '../../registry/digest.ts';
import { digestInvalid, OciError } from '../../registry/errors.ts';
import type { BlobRead, BlobStore } from '../../registry/ports.ts';
import type { ByteRange, ByteSource, Json } from '../../registry/types.ts';
import { isNotFound } from './atomic-file.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import type { FsKeys } from './keys.ts';

/** A SHA-256 kept in memory while an upload arrives in order, so commit need not read the bytes back. */
interface LiveHash {
  hash: Hash;
  /** Bytes hashed so far: valid only while it equals the upload's size. */
  size: number;
}

const READ_BUFFER = 1024 * 1024;

/**
 * Blob bytes in files. An upload is one file under uploads/, written in place; commit verifies its digest,
 * flushes it and renames it to its content address, so a blob is either absent or whole.
 *
 * Hashing: the SHA-256 is computed while bytes arrive (node:crypto, in memory). If the process restarted
 * mid-upload, or an append failed, commit re-reads the file instead: the session never depends on memory.
 */
export class FsBlobStore implements BlobStore {
  readonly maxChunkLength: number | undefined;
  readonly #keys: FsKeys;
  readonly #mutex = new KeyedMutex();
  readonly #live = new Map<string, LiveHash>();

  /** `maxChunkLength` is unlimited by default; set, it lets a local registry behave like the AWS one (tests, push tool). */
  constructor(keys: FsKeys, maxChunkLength?: number) {
    this.#keys = keys;
    this.maxChunkLength = maxChunkLength;
  }

  async startUpload(uploadId: string): Promise<Json> {
    const path = this.#keys.uploadData(uploadId);
    await mkdir(dirname(path), { recursive: true });
    await (await open(path, 'wx')).close();
    this.#live.set(uploadId, { hash: createHash('sha256'), size: 0 });
    return { uploadId };
  }

  async append(state: Json, offset: number, body: ByteSource): Promise<{ state: Json; size: number }> {
    const uploadId = uploadIdOf(state);
    return this.#mutex.run(uploadId, async () => {
      const path = this.#keys.uploadData(uploadId);
      // The session's offset is the truth: bytes past it come from an append that failed or was never acknowledged.
      const current = await stat(path).catch((error: unknown) => {
        if (isNotFound(error)) throw new OciError('BLOB_UPLOAD_UNKNOWN', 'upload data is gone', { uploadId });
        throw error;
      });
      if (current.size !== offset) await truncate(path, offset);
      let live = this.#live.get(uploadId);
      if (live && live.size !== offset) {
        this.#live.delete(uploadId);
        live = undefined;
      }
      let written = 0;
      try {
        await pipeline(
          body,
          async function* (source: ByteSource) {
            for await (const chunk of source) {
              live?.hash.update(chunk);
              written += chunk.byteLength;
              yield chunk;
            }
          },
          createWriteStream(path, { flags: 'r+', start: offset }),
        );
      } catch (error) {
        this.#live.delete(uploadId);
        await truncate(path, offset).catch(() => undefined);
        throw error;
      }
      if (live) live.size += written;
      return { state, size: offset + written };
    });
  }

  async commit(state: Json, digest: ParsedDigest, size: number): Promise<string> {
    const uploadId = uploadIdOf(state);
    return this.#mutex.run(uploadId, async () => {
      const path = this.#keys.uploadData(uploadId);
      const live = this.#live.get(uploadId);
      this.#live.delete(uploadId);
      const actual =
        live && live.size === size && digest.algorithm === 'sha256'
          ? `sha256:${live.hash.digest('hex')}`
          : await hashFile(path, digest.algorithm, size);
      if (actual !== digest.digest) {
        throw digestInvalid('uploaded content has another digest', { expected: digest.digest, actual });
      }
      const file = await open(path, 'r+');
      try {
        await file.sync();
      } finally {
        await file.close();
      }
      const location = this.#keys.blobLocation(digest.digest);
      const target = this.#keys.blobPath(location);
      await mkdir(dirname(target), { recursive: true });
      await rename(path, target);
      return location;
    });
  }

  async abort(state: Json): Promise<void> {
    const uploadId = uploadIdOf(state);
    await this.#mutex.run(uploadId, async () => {
      this.#live.delete(uploadId);
      await rm(this.#keys.uploadData(uploadId), { force: true });
    });
  }

  async read(location: string, range?: ByteRange): Promise<BlobRead> {
    const path = this.#keys.blobPath(location);
    // Open first so a missing file is an error now, not after the response headers went out.
    const file = await open(path, 'r').catch((error: unknown) => {
      if (isNotFound(error)) throw new OciError('BLOB_UNKNOWN', 'blob content is missing from storage', { location });
      throw error;
    });
    const options = range ? { start: range.start, end: range.end, highWaterMark: READ_BUFFER } : { highWaterMark: READ_BUFFER };
    return { kind: 'stream', body: file.createReadStream(options) };
  }

  async delete(location: string): Promise<void> {
    await rm(this.#keys.blobPath(location), { force: true });
  }
}

async function hashFile(path: string, algorithm: string, size: number): Promise<string> {
  const hash = createHash(algorithm);
  let seen = 0;
  if (size > 0) {
    for await (const chunk of createReadStream(path, { start: 0, end: size - 1, highWaterMark: READ_BUFFER }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      seen += chunk.byteLength;
    }
  }
  if (seen !== size) throw new OciError('SIZE_INVALID', 'upload is shorter than its recorded size', { size, seen });
  return `${algorithm}:${hash.digest('hex')}`;
}

function uploadIdOf(state: Json): string {
  const uploadId = (state as { uploadId?: unknown }).uploadId;
  if (typeof uploadId !== 'string') throw new OciError('UNKNOWN', 'corrupt upload state');
  return uploadId;
}
