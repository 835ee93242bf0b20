import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { ParsedDigest } from '../../registry/digest.ts';
import { digestInvalid } from '../../registry/errors.ts';
import type { ByteSource } from '../../registry/types.ts';
import { isS3Error } from './s3-errors.ts';

/**
 * Part size of a streamed blob: above S3's 5 MiB minimum, so 10,000 parts hold 80 GiB, and small enough that the two
 * parts in memory at once (one uploading, one filling) are 16 MiB whatever the blob's size.
 */
export const STREAM_PART_SIZE = 8 * 1024 * 1024;

/** A stream cut into parts of exactly `size` bytes, the last one shorter (or none for an empty stream). */
export async function* partsOf(body: ByteSource, size: number): AsyncGenerator<Uint8Array> {
  let pieces: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of body) {
    let at = 0;
    while (at < chunk.byteLength) {
      const take = Math.min(size - length, chunk.byteLength - at);
      pieces.push(chunk.subarray(at, at + take));
      length += take;
      at += take;
      if (length === size) {
        yield Buffer.concat(pieces);
        pieces = [];
        length = 0;
      }
    }
  }
  if (length > 0) yield Buffer.concat(pieces);
}

export interface StreamedObject {
  s3: S3Client;
  bucket: string;
  key: string;
  digest: ParsedDigest;
  /** The parts already read (to decide between one PutObject and this), then the rest (from {@link partsOf}). */
  read: Uint8Array[];
  rest: AsyncIterator<Uint8Array>;
  /** Most parts S3 takes; more is `tooLarge`. */
  maxParts: number;
  tooLarge: (size: number) => Error;
}

/**
 * Writes a stream of any length as one S3 object by multipart upload, hashing it on the way, and completes the
 * upload only when the bytes hash to `digest`: on a mismatch, a broken stream or any failure the multipart upload is
 * aborted and no object appears at `key` (parts of an upload that was neither completed nor aborted, a function
 * that died, are removed by the bucket's lifecycle rule).
 *
 * The upload is the classic one the production S3 client makes (lib/storage/aws-clients.ts, `WHEN_REQUIRED`): no
 * `ChecksumAlgorithm` on CreateMultipartUpload, none on the parts, ETags only in Complete; each part is protected in
 * transit by its signed SHA-256 payload hash. The blob's own digest is ours to check (S3 has no SHA-256 of a
 * multipart object). Reading and uploading overlap: part n+1 is read while part n uploads.
 */
export async function writeStreamedObject(object: StreamedObject): Promise<number> {
  const { s3, bucket, key, digest } = object;
  const hash = createHash(digest.algorithm);
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: 'application/octet-stream' }));
  if (!UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
  const etags: string[] = [];
  let size = 0;
  let uploading: Promise<void> = Promise.resolve();
  try {
    const pending = [...object.read];
    const nextPart = async (): Promise<Uint8Array | undefined> => {
      if (pending.length > 0) return pending.shift();
      const next = await object.rest.next();
      return next.done ? undefined : next.value;
    };
    let part = await nextPart();
    for (let number = 1; part !== undefined; number++) {
      if (number > object.maxParts) throw object.tooLarge(size + part.byteLength);
      hash.update(part);
      size += part.byteLength;
      const body: Uint8Array = part;
      const partNumber = number;
      await uploading;
      uploading = s3
        .send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: partNumber, Body: body, ContentLength: body.byteLength }))
        .then(({ ETag }) => {
          if (!ETag) throw new Error('UploadPart returned no ETag');
          etags[partNumber - 1] = ETag;
        });
      // A failed part fails the loop at the next await; until then the next part is read.
      uploading.catch(() => undefined);
      part = await nextPart();
    }
    await uploading;
    const actual = `${digest.algorithm}:${hash.digest('hex')}`;
    if (actual !== digest.digest) throw digestInvalid('the content has another digest', { expected: digest.digest, actual });
    await s3.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: etags.map((ETag, index) => ({ PartNumber: index + 1, ETag })) } }),
    );
    return size;
  } catch (error) {
    await uploading.catch(() => undefined);
    await object.rest.return?.();
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch((abortError: unknown) => {
      if (!isS3Error(abortError, 'NoSuchUpload', 'NotFound')) throw abortError;
    });
    throw error;
  }
}
