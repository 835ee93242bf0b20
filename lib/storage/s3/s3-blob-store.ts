import { createHash, randomUUID } from 'node:crypto';
import { CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ParsedDigest } from '../../registry/digest.ts';
import { blobUploadInvalid, digestInvalid, isOciError, OciError, sizeInvalid, unsupported } from '../../registry/errors.ts';
import type { BlobRead, BlobStore } from '../../registry/ports.ts';
import type { ByteRange, ByteSource, Json } from '../../registry/types.ts';
import { blobKey, checkedBlobKey, isBlobKey, uploadBufferPrefix } from './keys.ts';
import { ResumableSha256 } from './resumable-sha256.ts';
import { collect, concat } from './s3-bytes.ts';
import { isS3Error } from './s3-errors.ts';
import { partsOf, STREAM_PART_SIZE, writeStreamedObject } from './s3-streamed-object.ts';
import { DEFAULT_MAX_CHUNK_LENGTH, MAX_BLOB_SIZE, MAX_PARTS, MIN_PART_SIZE, tooLarge } from './s3-upload-limits.ts';
import { S3UploadObjects } from './s3-upload-objects.ts';
import { etagsOf, packEtag, parseState, toJson, type UploadState } from './s3-upload-state.ts';

export const DEFAULT_PRESIGN_EXPIRES_IN = 900;

export interface S3BlobStoreOptions {
  s3: S3Client;
  bucket: string;
  /** Lifetime of presigned GET URLs, seconds. @default 900 */
  presignExpiresIn?: number;
  /** The largest body one append accepts (advertised as OCI-Chunk-Max-Length). @default 4 MiB */
  maxChunkLength?: number;
  /** Signs GET URLs for another endpoint than `s3` talks to (a public hostname, a CDN). @default s3 */
  presignClient?: S3Client;
  /**
   * Answer blob HEADs with a presigned S3 HEAD URL (the core sends a 307) rather than from metadata: the size
   * then comes from S3, for gateways that alter a HEAD's Content-Length (lib/infra `blobHeadRedirect`).
   * @default false
   */
  headRedirect?: boolean;
}

/** Appends buffered before they are merged into one buffer object (keeps the state small under tiny chunks). */
const MAX_BUFFERED_APPENDS = 64;

/**
 * Blob bytes in S3. Reads are presigned GET URLs (the bytes never pass through the Lambda); uploads are S3
 * multipart uploads assembled from appends of at most `maxChunkLength` bytes.
 *
 * ```
 *  append (≤ 4 MiB)            buffered < 5 MiB?  ── yes ─▶ PutObject uploads/<id>/<offset>-<random>
 *                                    │ no
 *                                    ▼
 *                 GetObject each buffered append ─▶ UploadPart(buffer ‖ body) (part ≥ 5 MiB)
 *  commit   no part yet:  one buffered append ─▶ CopyObject to blobs/<id>;  several ─▶ PutObject of their concatenation
 *           parts:        rest of the buffer ─▶ last UploadPart ─▶ CompleteMultipartUpload at blobs/<id>
 *  commitWhole (the whole blob in one request) ─▶ PutObject blobs/<new id> with x-amz-checksum-sha256
 *              (a stream over 8 MiB: a cache copy)  ─▶ multipart upload at blobs/<new id>, verified before Complete
 * ```
 * The SHA-256 is computed while appending and saved in the state, so commit verifies the digest without reading
 * anything back; on mismatch nothing becomes an object at blobs/ (the multipart upload is aborted).
 *
 * Concurrent appends at one offset (a client retrying while its first request still runs): the core's
 * compare-and-set keeps one state, the other request fails. The loser cannot corrupt the winner:
 * - buffer keys are unique, so the loser's buffered append is an orphan (expired by the lifecycle rule);
 * - buffer objects that went into a part are deleted one call later, by a request that started from the winning
 *   state, so the loser never deletes an object the winner still needs;
 * - two first flushes each open a multipart upload: the loser's is never completed (the lifecycle rule aborts it);
 * - two flushes of one part number: the later UploadPart replaces the earlier one in S3, and if that was the
 *   loser's, CompleteMultipartUpload finds an ETag it was not given and fails (InvalidPart). The upload then fails
 *   with BLOB_UPLOAD_INVALID: wrong bytes are never committed.
 *
 * Digests: sha256 always; sha512 only for blobs that never needed a multipart part (< 5 MiB), re-read at commit;
 * larger sha512 uploads fail with UNSUPPORTED (only SHA-256 state is kept between invocations).
 */
export class S3BlobStore implements BlobStore {
  readonly maxChunkLength: number;
  readonly #s3: S3Client;
  readonly #presignClient: S3Client;
  readonly #bucket: string;
  readonly #presignExpiresIn: number;
  readonly #headRedirect: boolean;
  readonly #objects: S3UploadObjects;

  constructor(options: S3BlobStoreOptions) {
    const maxChunkLength = options.maxChunkLength ?? DEFAULT_MAX_CHUNK_LENGTH;
    if (!Number.isSafeInteger(maxChunkLength) || maxChunkLength < 1) {
      throw new Error(`maxChunkLength must be a positive integer of bytes, got ${options.maxChunkLength}`);
    }
    this.maxChunkLength = maxChunkLength;
    this.#s3 = options.s3;
    this.#presignClient = options.presignClient ?? options.s3;
    this.#bucket = options.bucket;
    this.#presignExpiresIn = options.presignExpiresIn ?? DEFAULT_PRESIGN_EXPIRES_IN;
    this.#headRedirect = options.headRedirect ?? false;
    this.#objects = new S3UploadObjects(options.s3, options.bucket);
  }

  async startUpload(uploadId: string): Promise<Json> {
    blobKey(uploadId);
    const state: UploadState = { v: 1, uploadId, size: 0, sha256: (await ResumableSha256.resume()).save(), etags: '', buffer: [], garbage: [] };
    return toJson(state);
  }

  async append(stateJson: Json, offset: number, body: ByteSource, _declaredLength?: number): Promise<{ state: Json; size: number }> {
    const state = parseState(stateJson);
    if (offset !== state.size) {
      throw new OciError('UNKNOWN', `upload state holds ${state.size} bytes but the append is at offset ${offset}`, { uploadId: state.uploadId });
    }
    const bytes = await collect(body, this.maxChunkLength);
    if (bytes.byteLength === 0) return { state: stateJson, size: offset };
    const size = offset + bytes.byteLength;
    if (size > MAX_BLOB_SIZE) throw tooLarge(size);

    const hash = await ResumableSha256.resume(state.sha256);
    const next: UploadState = { ...state, size, sha256: hash.update(bytes).save(), garbage: [] };
    const buffered = state.buffer.reduce((total, [, length]) => total + length, 0) + bytes.byteLength;
    let work: Promise<void>;
    if (buffered >= MIN_PART_SIZE) {
      work = this.#flushPart(state, bytes).then(({ multipartId, etag }) => {
        next.multipartId = multipartId;
        next.etags = state.etags === '' ? etag : `${state.etags},${etag}`;
        next.buffer = [];
        next.garbage = state.buffer.map(([key]) => key);
      });
    } else if (state.buffer.length < MAX_BUFFERED_APPENDS) {
      work = this.#objects.bufferAppend(state.uploadId, bytes, offset).then((entry) => {
        next.buffer = [...state.buffer, entry];
      });
    } else {
      // Many tiny appends: merge them into one buffer object.
      work = this.#objects.readBuffer(state.buffer).then(async (pieces) => {
        next.buffer = [await this.#objects.bufferAppend(state.uploadId, concat([...pieces, bytes]), offset + bytes.byteLength - buffered)];
        next.garbage = state.buffer.map(([key]) => key);
      });
    }
    // The previous flush's buffer objects: only requests that started from the winning state get here.
    await Promise.all([work, this.#objects.deleteQuietly(state.garbage)]);
    return { state: toJson(next), size };
  }

  async commit(stateJson: Json, digest: ParsedDigest, size: number): Promise<string> {
    const state = parseState(stateJson);
    if (size !== state.size) throw sizeInvalid(`upload holds ${state.size} bytes, not ${size}`, { size, uploaded: state.size });
    const key = blobKey(state.uploadId);

    let buffered: Uint8Array[] | undefined;
    let actual: string;
    if (digest.algorithm === 'sha256') {
      actual = `sha256:${(await ResumableSha256.resume(state.sha256)).hex()}`;
    } else {
      if (state.multipartId !== undefined) {
        throw unsupported(`${digest.algorithm} digests are verified only for blobs under ${MIN_PART_SIZE} bytes on S3 storage; push it as sha256`);
      }
      buffered = await this.#objects.readBuffer(state.buffer);
      const hash = createHash(digest.algorithm);
      for (const piece of buffered) hash.update(piece);
      actual = `${digest.algorithm}:${hash.digest('hex')}`;
    }
    if (actual !== digest.digest) {
      await this.#objects.discard(state);
      throw digestInvalid('uploaded content has another digest', { expected: digest.digest, actual });
    }

    try {
      await this.#assemble(state, key, digest, buffered);
    } catch (error) {
      // A retried commit whose first attempt completed (the Lambda died before the core recorded it): the object is
      // there, and only a persisted state of this upload, which has a single version per size, can have written it.
      const gone = isOciError(error, 'BLOB_UPLOAD_INVALID') || isS3Error(error, 'NoSuchUpload', 'NoSuchKey');
      if (gone && (await this.#objects.holds(key, size))) return key;
      if (gone || isS3Error(error, 'InvalidPart', 'InvalidPartOrder', 'EntityTooSmall')) {
        await this.#objects.discard(state);
        throw blobUploadInvalid('the upload was modified by a concurrent request or has expired; start it again', { uploadId: state.uploadId, cause: (error as Error).name });
      }
      throw error;
    }
    await this.#objects.deleteQuietly([...state.garbage, ...state.buffer.map(([bufferKey]) => bufferKey)]);
    return key;
  }

  /**
   * A blob pushed in one request: one PutObject straight to a key of its own, `blobs/<new id>` (before, the bytes
   * went to a buffer object, were copied to `blobs/<uploadId>` and the buffer deleted: 3 calls, now 1).
   *
   * The digest is checked here before anything is written, and once more by S3: for sha256 the PutObject carries
   * it as `x-amz-checksum-sha256`, and S3 refuses a body that hashes otherwise (BadDigest) without creating the
   * object, so even bytes damaged between the function and S3 never sit at a blob key. The object is not yet a
   * blob anyone can read: the core records it (MetadataStore.putBlob) only after this returns.
   *
   * A key of its own, not `blobs/<uploadId>`, because two requests may close one upload at once (a client retrying,
   * or a PATCH racing a PUT); with a shared key the later write could replace bytes already recorded under another
   * digest. Two one-request pushes of the same digest:
   * ```
   *  push A                               push B
   *  PutObject blobs/<a> (S3 verifies)    PutObject blobs/<b> (S3 verifies)
   *  putBlob(D → blobs/<a>)  ✓ first
   *                                       putBlob(D → blobs/<b>)  ✗ exists: the record in force is blobs/<a>
   *                                       DeleteObject blobs/<b>  (the core drops the duplicate)
   *  both link D → blobs/<a>; nothing was readable before its record existed
   * ```
   * A function that dies between PutObject and putBlob leaves an unrecorded object under blobs/, as a commit by
   * copy always could; garbage collection finds it by listing blobs/ against the records.
   */
  async commitWhole(digest: ParsedDigest, body: ByteSource): Promise<{ location: string; size: number }> {
    // A body of more than one part (a pull-through cache copy: pushes are limited to maxChunkLength by the core)
    // streams into a multipart upload instead, one part in memory at a time (s3-streamed-object.ts).
    const parts = partsOf(body, STREAM_PART_SIZE)[Symbol.asyncIterator]();
    const first = await parts.next();
    const second = first.done ? first : await parts.next();
    if (!second.done) {
      const key = blobKey(randomUUID());
      const read = [first.value as Uint8Array, second.value];
      const size = await writeStreamedObject({ s3: this.#s3, bucket: this.#bucket, key, digest, read, rest: parts, maxParts: MAX_PARTS, tooLarge });
      return { location: key, size };
    }
    const bytes: Uint8Array = first.done ? new Uint8Array() : first.value;
    const actual = `${digest.algorithm}:${createHash(digest.algorithm).update(bytes).digest('hex')}`;
    if (actual !== digest.digest) throw digestInvalid('uploaded content has another digest', { expected: digest.digest, actual });
    const key = blobKey(randomUUID());
    await this.#objects.putBlob(key, bytes, digest);
    return { location: key, size: bytes.byteLength };
  }

  async abort(stateJson: Json): Promise<void> {
    const state = parseState(stateJson);
    await this.#objects.discard(state);
    // Orphans of appends that lost a race are not in the state: sweep the upload's whole buffer folder.
    await this.#objects.deleteUnder(uploadBufferPrefix(state.uploadId));
  }

  /** A presigned GET URL, whole blob or range alike: the client sends its Range header to S3 itself. No S3 call. */
  async read(location: string, _range?: ByteRange): Promise<BlobRead> {
    const url = await getSignedUrl(this.#presignClient, new GetObjectCommand({ Bucket: this.#bucket, Key: checkedBlobKey(location) }), { expiresIn: this.#presignExpiresIn });
    return { kind: 'redirect', url };
  }

  /** One GetObject (the SDK verifies the checksum S3 stored), for the small blobs the registry reads itself. */
  async readBytes(location: string): Promise<Uint8Array> {
    return this.#objects.readObject(checkedBlobKey(location));
  }

  /** With `headRedirect`, a presigned HEAD URL (the signature covers the method); else undefined. No S3 call. */
  async headRedirect(location: string): Promise<string | undefined> {
    if (!this.#headRedirect) return undefined;
    return getSignedUrl(this.#presignClient, new HeadObjectCommand({ Bucket: this.#bucket, Key: checkedBlobKey(location) }), { expiresIn: this.#presignExpiresIn });
  }

  async delete(location: string): Promise<void> {
    if (!isBlobKey(location)) return;
    await this.#s3.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: location }));
  }

  // ---- internals

  /** Makes the verified upload the object at `key`: one copy or put when it never needed a part, else the last part and CompleteMultipartUpload. */
  async #assemble(state: UploadState, key: string, digest: ParsedDigest, buffered: Uint8Array[] | undefined): Promise<void> {
    if (state.multipartId === undefined) {
      const [only] = state.buffer;
      if (state.buffer.length === 1 && only && buffered === undefined) {
        await this.#s3.send(
          new CopyObjectCommand({ Bucket: this.#bucket, Key: key, CopySource: copySource(this.#bucket, only[0]), ContentType: 'application/octet-stream', MetadataDirective: 'REPLACE' }),
        );
        return;
      }
      const bytes = concat(buffered ?? (await this.#objects.readBuffer(state.buffer)));
      await this.#objects.putBlob(key, bytes, digest);
      return;
    }
    const etags = etagsOf(state);
    if (state.buffer.length > 0) {
      if (etags.length + 1 > MAX_PARTS) throw tooLarge(state.size);
      etags.push(await this.#objects.uploadPart(state.multipartId, key, etags.length + 1, concat(await this.#objects.readBuffer(state.buffer))));
    }
    await this.#s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.#bucket,
        Key: key,
        UploadId: state.multipartId,
        MultipartUpload: { Parts: etags.map((ETag, index) => ({ PartNumber: index + 1, ETag })) },
      }),
    );
  }

  /** Uploads the buffered appends and `bytes` as the next part, opening the multipart upload on the first one. */
  async #flushPart(state: UploadState, bytes: Uint8Array): Promise<{ multipartId: string; etag: string }> {
    const partNumber = (state.etags === '' ? 0 : state.etags.split(',').length) + 1;
    if (partNumber > MAX_PARTS) throw tooLarge(state.size + bytes.byteLength);
    const key = blobKey(state.uploadId);
    const [multipartId, buffered] = await Promise.all([
      state.multipartId ??
        this.#s3
          .send(new CreateMultipartUploadCommand({ Bucket: this.#bucket, Key: key, ContentType: 'application/octet-stream' }))
          .then(({ UploadId }) => {
            if (!UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
            return UploadId;
          }),
      this.#objects.readBuffer(state.buffer),
    ]);
    const etag = await this.#objects.uploadPart(multipartId, key, partNumber, concat([...buffered, bytes]));
    return { multipartId, etag: packEtag(etag) };
  }
}

function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}
