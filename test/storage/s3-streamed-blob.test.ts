import { createHash, randomBytes } from 'node:crypto';
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isOciError } from '../../lib/registry/errors.ts';
import type { ByteSource } from '../../lib/registry/types.ts';
import { startAwsLocal, type AwsLocal } from '../../lib/dev/aws-local.ts';
import { S3CallCounter } from '../../lib/dev/sdk-call-counter.ts';
import { createLocalResources, resourceNames } from '../../lib/storage/aws-resources.ts';
import { S3BlobStore } from '../../lib/storage/s3/s3-blob-store.ts';
import { partsOf, STREAM_PART_SIZE } from '../../lib/storage/s3/s3-streamed-object.ts';
import { parsedSha256 as sha256 } from '../support/digests.ts';

/**
 * S3BlobStore.commitWhole with a stream larger than one part (what a pull-through cache copy hands it): a multipart
 * upload through the strict s3rver (parts ≥ 5 MiB but the last, the production client's checksum settings),
 * verified before CompleteMultipartUpload.
 */

const MiB = 1024 * 1024;
let aws: AwsLocal;
const names = resourceNames('ocireg-streamed');

beforeAll(async () => {
  aws = await startAwsLocal();
  await createLocalResources(aws.dynamo, aws.s3, names);
}, 120_000);
afterAll(async () => {
  await aws?.stop();
});

/** `content` as an upstream's body arrives: in 64 KiB chunks. */
function trickle(content: Buffer, chunk = 64 * 1024): ByteSource {
  return (async function* () {
    for (let at = 0; at < content.length; at += chunk) yield content.subarray(at, at + chunk);
  })();
}

async function objectsUnder(prefix: string): Promise<string[]> {
  const { Contents } = await aws.s3.send(new ListObjectsV2Command({ Bucket: names.bucket, Prefix: prefix }));
  return (Contents ?? []).map((object) => object.Key!);
}

describe('S3BlobStore.commitWhole with a streamed body over one part', () => {
  it('writes 8 MiB parts through a multipart upload, and the object reads back bit for bit', async () => {
    // Prepare
    const content = randomBytes(2 * STREAM_PART_SIZE + 3 * MiB);
    const calls = new S3CallCounter();
    const s3 = calls.attach(aws.s3Client());
    const store = new S3BlobStore({ s3, bucket: names.bucket });

    // Act
    const { location, size } = await store.commitWhole(sha256(content), trickle(content));
    const read = await store.read(location);
    const back = read.kind === 'redirect' ? Buffer.from(await (await fetch(read.url)).arrayBuffer()) : Buffer.alloc(0);

    // Assess
    expect(calls.snapshot()).toEqual({ CreateMultipartUpload: 1, UploadPart: 3, CompleteMultipartUpload: 1 });
    expect(size).toBe(content.length);
    expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(content).digest('hex'));
    s3.destroy();
  });

  it('refuses a stream that does not match the digest: aborts the upload, and no object appears', async () => {
    // Prepare
    const content = randomBytes(STREAM_PART_SIZE + MiB);
    const calls = new S3CallCounter();
    const s3 = calls.attach(aws.s3Client());
    const store = new S3BlobStore({ s3, bucket: names.bucket });
    const before = await objectsUnder('blobs/');

    // Act
    const error = await store.commitWhole(sha256(randomBytes(10)), trickle(content)).catch((e: unknown) => e);

    // Assess
    expect(isOciError(error, 'DIGEST_INVALID')).toBe(true);
    expect(calls.snapshot()).toEqual({ CreateMultipartUpload: 1, UploadPart: 2, AbortMultipartUpload: 1 });
    expect(await objectsUnder('blobs/')).toEqual(before);
    const { Uploads } = await aws.s3.send(new ListMultipartUploadsCommand({ Bucket: names.bucket })).catch(() => ({ Uploads: [] }));
    expect(Uploads ?? []).toEqual([]);
    s3.destroy();
  });

  it('aborts when the stream breaks off midway, leaving no object', async () => {
    const content = randomBytes(STREAM_PART_SIZE + MiB);
    const store = new S3BlobStore({ s3: aws.s3, bucket: names.bucket });
    const before = await objectsUnder('blobs/');
    const broken = (async function* () {
      yield* trickle(content.subarray(0, STREAM_PART_SIZE + 1000));
      throw new Error('upstream connection reset');
    })();

    const error = await store.commitWhole(sha256(content), broken).catch((e: unknown) => e);

    expect((error as Error).message).toBe('upstream connection reset');
    expect(await objectsUnder('blobs/')).toEqual(before);
  });

  it('keeps a blob of one part or less to one PutObject, as a push', async () => {
    const content = randomBytes(STREAM_PART_SIZE);
    const calls = new S3CallCounter();
    const s3 = calls.attach(aws.s3Client());
    const { size } = await new S3BlobStore({ s3, bucket: names.bucket }).commitWhole(sha256(content), trickle(content));
    expect(calls.snapshot()).toEqual({ PutObject: 1 });
    expect(size).toBe(content.length);
    s3.destroy();
  });
});

describe('partsOf', () => {
  it('cuts any chunking into parts of exactly the size, the last one shorter, none for nothing', async () => {
    const collect = async (body: ByteSource, size: number) => {
      const lengths: number[] = [];
      for await (const part of partsOf(body, size)) lengths.push(part.byteLength);
      return lengths;
    };
    const content = randomBytes(25);
    expect(await collect(trickle(content, 7), 10)).toEqual([10, 10, 5]);
    expect(await collect(trickle(content, 30), 5)).toEqual([5, 5, 5, 5, 5]);
    expect(await collect(trickle(Buffer.alloc(0)), 5)).toEqual([]);
  });
});
