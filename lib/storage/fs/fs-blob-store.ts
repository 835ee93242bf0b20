import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ParsedDigest } from '../../registry/digest.ts';
import { digestInvalid, OciError } from '../../registry/errors.ts';
import type { BlobRead, BlobStore } from '../../registry/ports.ts';
import type { ByteRange, ByteSource, Json } from '../../registry/types.ts';
import { isNotFound } from './atomic-file.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import type { FsKeys } from './keys.ts';
import { RECYCLED_CHUNKS } from '../../registry/recyclable-body.ts';


/** A SHA-256 kept in memory while an upload arrives in order, so commit need not read the bytes back. */
interface LiveHash {
  hash: Hash;
  /** Bytes hashed so far: valid only while it equals the upload's size. */
  size: number;
}

const READ_BUFFER = 512 * 1024;
/** Bytes gathered into one positioned writev: socket chunks are ~64 KiB, one thread-pool round trip each is costly. */
const WRITE_BATCH = 1024 * 1024;
/** Start a background fdatasync each time this many bytes were written, so commit's fsync finds little left to flush. */
const EARLY_FLUSH = 16 * 1024 * 1024;

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
      const file = await open(path, 'r+');
      const writer = new BatchedWriter(file, offset);
      try {
        for await (const chunk of body) {
          live?.hash.update(chunk);
          written += chunk.byteLength;
          await writer.push(chunk);
        }
        await writer.finish();
      } catch (error) {
        this.#live.delete(uploadId);
        await writer.settle();
        await file.close().catch(() => undefined);
        await truncate(path, offset).catch(() => undefined);
        throw error;
      }
      await file.close();
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
      const location = this.#keys.blobLocation(digest.digest, uploadId);
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
    const stream = file.createReadStream(options);
    const recycled = async function* (): AsyncGenerator<Uint8Array> {
      try {
        const end = range ? range.end + 1 : (await file.stat()).size;
        const buffer = Buffer.allocUnsafeSlow(READ_BUFFER);
        for (let position = range ? range.start : 0; position < end; ) {
          const { bytesRead } = await file.read(buffer, 0, Math.min(READ_BUFFER, end - position), position);
          if (bytesRead === 0) break;
          position += bytesRead;
          yield buffer.subarray(0, bytesRead);
        }
      } finally {
        // The stream owns the file handle (it was never read from): destroying it closes the file.
        stream.destroy();
      }
    };
    return { kind: 'stream', body: Object.assign(stream, { [RECYCLED_CHUNKS]: recycled }) };
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

/**
 * Writes an append's bytes at increasing positions in batches of about WRITE_BATCH, with one write in flight while the
 * next batch gathers, and an fdatasync in the background every EARLY_FLUSH bytes (at most one at a time): the bytes
 * reach the disk while the rest of the upload is still arriving, instead of all at once when commit fsyncs. Holds on
 * to the chunks it is given until written, as a write stream does.
 */
class BatchedWriter {
  readonly #file: FileHandle;
  #position: number;
  #batch: Uint8Array[] = [];
  #batchBytes = 0;
  #writing: Promise<void> = Promise.resolve();
  #flushing: Promise<void> = Promise.resolve();
  #unflushed = 0;

  constructor(file: FileHandle, position: number) {
    this.#file = file;
    this.#position = position;
  }

  async push(chunk: Uint8Array): Promise<void> {
    this.#batch.push(chunk);
    this.#batchBytes += chunk.byteLength;
    if (this.#batchBytes >= WRITE_BATCH) await this.#startWrite();
  }

  /** Writes what is left and waits for every write and flush; throws the first failure. */
  async finish(): Promise<void> {
    await this.#startWrite();
    await this.#writing;
    await this.#flushing;
  }

  /** Waits for whatever is in flight, ignoring failures (the caller is already handling one). */
  async settle(): Promise<void> {
    await this.#writing.catch(() => undefined);
    await this.#flushing.catch(() => undefined);
  }

  async #startWrite(): Promise<void> {
    await this.#writing;
    if (this.#batchBytes === 0) return;
    const buffers = this.#batch;
    const bytes = this.#batchBytes;
    const position = this.#position;
    this.#batch = [];
    this.#batchBytes = 0;
    this.#position += bytes;
    const writing = writeFully(this.#file, buffers, position).then(() => this.#afterWrite(bytes));
    // Observed by the next push, finish() or settle(); until then a failure must not count as unhandled.
    writing.catch(() => undefined);
    this.#writing = writing;
  }

  async #afterWrite(bytes: number): Promise<void> {
    this.#unflushed += bytes;
    if (this.#unflushed < EARLY_FLUSH) return;
    await this.#flushing;
    this.#unflushed = 0;
    const flushing = this.#file.datasync();
    // As with writes: observed later, never unhandled.
    flushing.catch(() => undefined);
    this.#flushing = flushing;
  }
}

/** writev until every byte is written (a regular file may take fewer bytes than asked). */
async function writeFully(file: FileHandle, buffers: Uint8Array[], position: number): Promise<void> {
  let pending = buffers;
  let at = position;
  while (pending.length > 0) {
    const { bytesWritten } = await file.writev(pending, at);
    at += bytesWritten;
    let skip = bytesWritten;
    const rest: Uint8Array[] = [];
    for (const buffer of pending) {
      if (skip >= buffer.byteLength) {
        skip -= buffer.byteLength;
        continue;
      }
      rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
      skip = 0;
    }
    pending = rest;
  }
}

function uploadIdOf(state: Json): string {
  const uploadId = (state as { uploadId?: unknown }).uploadId;
  if (typeof uploadId !== 'string') throw new OciError('UNKNOWN', 'corrupt upload state');
  return uploadId;
}
