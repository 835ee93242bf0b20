import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { ParsedDigest } from '../../registry/digest.ts';
import { blobUploadInvalid, OciError } from '../../registry/errors.ts';
import { blobKey, uploadBufferKey } from './keys.ts';
import { isS3Error } from './s3-errors.ts';
import type { UploadState } from './s3-upload-state.ts';

/**
 * The S3 requests of S3BlobStore, one method each, with their errors translated at the boundary (a buffered append
 * or multipart upload that is gone becomes BLOB_UPLOAD_INVALID). Holds no state but the client and the bucket.
 */
export class S3UploadObjects {
  readonly #s3: S3Client;
  readonly #bucket: string;

  constructor(s3: S3Client, bucket: string) {
    this.#s3 = s3;
    this.#bucket = bucket;
  }

  /**
   * Writes a blob's verified bytes at `key` in one PutObject; for sha256 with `x-amz-checksum-sha256`, which S3
   * verifies too (BadDigest, nothing written): the bytes stored are the bytes hashed.
   */
  async putBlob(key: string, bytes: Uint8Array, digest: ParsedDigest): Promise<void> {
    await this.#s3.send(
      new PutObjectCommand({
        Bucket: this.#bucket,
        Key: key,
        Body: bytes,
        ContentLength: bytes.byteLength,
        ContentType: 'application/octet-stream',
        ...(digest.algorithm === 'sha256' ? { ChecksumSHA256: Buffer.from(digest.hex, 'hex').toString('base64') } : {}),
      }),
    );
  }

  /** Whether `key` holds an object of `size` bytes. */
  async holds(key: string, size: number): Promise<boolean> {
    try {
      const head = await this.#s3.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }));
      return head.ContentLength === size;
    } catch (error) {
      if (isS3Error(error, 'NotFound', 'NoSuchKey')) return false;
      throw error;
    }
  }

  /** Writes `bytes` as a new buffer object, named after the offset it starts at. */
  async bufferAppend(uploadId: string, bytes: Uint8Array, offset: number): Promise<[string, number]> {
    const key = uploadBufferKey(uploadId, offset, randomBytes(6).toString('hex'));
    await this.#s3.send(new PutObjectCommand({ Bucket: this.#bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength }));
    return [key, bytes.byteLength];
  }

  /** Uploads one part; returns its ETag as S3 gave it. */
  async uploadPart(multipartId: string, key: string, partNumber: number, bytes: Uint8Array): Promise<string> {
    try {
      const { ETag } = await this.#s3.send(
        new UploadPartCommand({ Bucket: this.#bucket, Key: key, UploadId: multipartId, PartNumber: partNumber, Body: bytes, ContentLength: bytes.byteLength }),
      );
      if (!ETag) throw new Error('UploadPart returned no ETag');
      return ETag;
    } catch (error) {
      if (isS3Error(error, 'NoSuchUpload')) throw blobUploadInvalid('the upload has expired or was cancelled; start it again', { multipartId });
      throw error;
    }
  }

  /** A committed blob's bytes; BLOB_UNKNOWN when the object is gone (collected since its record was read). */
  async readObject(key: string): Promise<Uint8Array> {
    try {
      const { Body } = await this.#s3.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }));
      return Body ? await Body.transformToByteArray() : new Uint8Array();
    } catch (error) {
      if (isS3Error(error, 'NoSuchKey', 'NotFound')) throw new OciError('BLOB_UNKNOWN', 'the blob\'s bytes are gone', { key });
      throw error;
    }
  }

  async readBuffer(buffer: [string, number][]): Promise<Uint8Array[]> {
    return Promise.all(
      buffer.map(async ([key, size]) => {
        try {
          const { Body } = await this.#s3.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }));
          const bytes = Body ? await Body.transformToByteArray() : new Uint8Array();
          if (bytes.byteLength !== size) throw new Error(`buffered append ${key} has ${bytes.byteLength} bytes, expected ${size}`);
          return bytes;
        } catch (error) {
          if (isS3Error(error, 'NoSuchKey', 'NotFound')) {
            throw blobUploadInvalid('buffered upload data is gone (expired, or cancelled by a concurrent request); start the upload again', { key });
          }
          throw error;
        }
      }),
    );
  }

  /** Leaves nothing of the upload but orphans: aborts the multipart upload and deletes the known buffer objects. */
  async discard(state: UploadState): Promise<void> {
    if (state.multipartId !== undefined) {
      await this.#s3
        .send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: blobKey(state.uploadId), UploadId: state.multipartId }))
        .catch((error: unknown) => {
          if (!isS3Error(error, 'NoSuchUpload', 'NotFound')) throw error;
        });
    }
    await this.delete([...state.garbage, ...state.buffer.map(([key]) => key)]);
  }

  async delete(keys: string[]): Promise<void> {
    if (keys.length === 1) {
      await this.#s3.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: keys[0] }));
      return;
    }
    for (let at = 0; at < keys.length; at += 1000) {
      const batch = keys.slice(at, at + 1000);
      await this.#s3.send(new DeleteObjectsCommand({ Bucket: this.#bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
    }
  }

  /** Cleanup that must not fail the request: whatever stays is expired by the bucket's lifecycle rule. */
  async deleteQuietly(keys: string[]): Promise<void> {
    await this.delete(keys).catch(() => undefined);
  }

  /** Deletes every object under `prefix` (an upload's buffer folder: orphans of appends that lost a race included). */
  async deleteUnder(prefix: string): Promise<void> {
    let token: string | undefined;
    do {
      const page = await this.#s3.send(new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
      await this.delete((page.Contents ?? []).flatMap((object) => (object.Key ? [object.Key] : [])));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }
}
