import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
  type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startAwsLocal, type AwsLocal } from '../../lib/dev/aws-local.ts';
import { bytesOf } from '../../lib/registry/bytes.ts';
import { isOciError } from '../../lib/registry/errors.ts';
import { createLocalResources, resourceNames } from '../../lib/storage/aws-resources.ts';
import { S3BlobStore } from '../../lib/storage/s3/s3-blob-store.ts';
import { parsedSha256 as sha256 } from '../support/digests.ts';

/**
 * The strict S3 (lib/dev/strict-s3.ts) refuses what real S3 refuses about checksums and encodings, and accepts the
 * production configuration (lib/storage/aws-clients.ts). `aws.s3` is the production client; `sdkDefaults` is an S3
 * client as the SDK builds it with no configuration, the one the Lambda ran with before the factory.
 */

const MiB = 1024 * 1024;
let aws: AwsLocal;
let sdkDefaults: S3Client;
const names = resourceNames('ocireg-strict');
const Bucket = names.bucket;

beforeAll(async () => {
  aws = await startAwsLocal();
  await createLocalResources(aws.dynamo, aws.s3, names);
  sdkDefaults = new S3Client({ endpoint: aws.endpoints.s3, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, forcePathStyle: true });
});
afterAll(async () => {
  sdkDefaults?.destroy();
  await aws?.stop();
});

const newKey = (label: string) => `strict/${label}-${randomBytes(4).toString('hex')}`;
const errorOf = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error as Error & { $metadata?: { httpStatusCode?: number } });

/** Records the headers of each request `client` sends (after the SDK's own middleware set them), by operation. */
function captureHeaders(client: S3Client): { operation: string; headers: Record<string, string> }[] {
  const seen: { operation: string; headers: Record<string, string> }[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      seen.push({ operation: String(context.commandName).replace(/Command$/, ''), headers: { ...(args.request as { headers: Record<string, string> }).headers } });
      return next(args);
    },
    { step: 'finalizeRequest', name: `capture-headers-${randomBytes(4).toString('hex')}`, priority: 'low' },
  );
  return seen;
}

/** Flips the bits of `mask` in byte `index` of `bytes`. */
function flip(bytes: Buffer, index: number, mask: number): void {
  bytes.writeUInt8(bytes.readUInt8(index) ^ mask, index);
}

async function objectBytes(client: S3Client, Key: string): Promise<Buffer> {
  const { Body } = await client.send(new GetObjectCommand({ Bucket, Key }));
  return Buffer.from(await Body!.transformToByteArray());
}

describe('multipart checksums: the SDK defaults against the production configuration', () => {
  it('refuses the SDK defaults at CompleteMultipartUpload with InvalidPart (CRC32 parts, no algorithm on Create, none listed), where the blob store then fails every multipart push', async () => {
    // Prepare: the blob store as it ran before the factory, on a client with the SDK's defaults
    const store = new S3BlobStore({ s3: sdkDefaults, bucket: Bucket });
    const content = randomBytes(6 * MiB);
    let state = await store.startUpload(`defaults-${randomBytes(4).toString('hex')}`);
    const sent = captureHeaders(sdkDefaults);
    // Act
    for (let at = 0; at < content.length; at += 2 * MiB) state = (await store.append(state, at, bytesOf(content.subarray(at, at + 2 * MiB)))).state;
    const error = await errorOf(store.commit(state, sha256(content), content.length));
    // Assess: the part went up with a CRC32 (accepted), and Complete failed on it
    expect(sent.filter(({ operation }) => operation === 'UploadPart').map(({ headers }) => headers['x-amz-sdk-checksum-algorithm'])).toEqual(['CRC32']);
    expect(sent.find(({ operation }) => operation === 'CreateMultipartUpload')?.headers['x-amz-checksum-algorithm']).toBeUndefined();
    expect(isOciError(error, 'BLOB_UPLOAD_INVALID')).toBe(true);
    expect((error as { detail?: { cause?: string } }).detail?.cause).toBe('InvalidPart');
  });

  it('commits the same upload with the production client, bit-identical', async () => {
    // Prepare
    const store = new S3BlobStore({ s3: aws.s3, bucket: Bucket });
    const content = randomBytes(6 * MiB);
    let state = await store.startUpload(`production-${randomBytes(4).toString('hex')}`);
    const sent = captureHeaders(aws.s3);
    // Act
    for (let at = 0; at < content.length; at += 2 * MiB) state = (await store.append(state, at, bytesOf(content.subarray(at, at + 2 * MiB)))).state;
    const location = await store.commit(state, sha256(content), content.length);
    // Assess: no write of data carried a flexible checksum (DeleteObjects, which requires one, gets the SDK's CRC32)
    const checksummed = sent.filter(({ headers }) => Object.keys(headers).some((name) => name.startsWith('x-amz-checksum-') && name !== 'x-amz-checksum-mode'));
    expect(sent.map(({ operation }) => operation)).toEqual(expect.arrayContaining(['PutObject', 'CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload']));
    expect(checksummed.map(({ operation }) => operation).filter((operation) => operation !== 'DeleteObjects')).toEqual([]);
    expect((await objectBytes(aws.s3, location)).equals(content)).toBe(true);
  });

  it('refuses a CRC32 part on an upload created without an algorithm when Complete leaves its checksum out, and accepts it listed', async () => {
    // Prepare
    const Key = newKey('no-algorithm');
    const { UploadId } = await aws.s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
    const body = randomBytes(1000);
    const { ETag, ChecksumCRC32 } = await sdkDefaults.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: body }));
    const complete = (part: CompletedPart) => aws.s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: [part] } }));
    // Act
    const without = await errorOf(complete({ PartNumber: 1, ETag }));
    await complete({ PartNumber: 1, ETag, ChecksumCRC32 });
    // Assess
    expect(ChecksumCRC32).toMatch(/^[A-Za-z0-9+/]{6}==$/);
    expect(without?.name).toBe('InvalidPart');
    expect(without?.$metadata?.httpStatusCode).toBe(400);
    expect((await objectBytes(aws.s3, Key)).equals(body)).toBe(true);
  });

  it('keeps an upload created with CRC32 to CRC32: other or missing part checksums, and a Complete without them, are refused as S3 documents', async () => {
    // Prepare
    const Key = newKey('crc32');
    const { UploadId } = await aws.s3.send(new CreateMultipartUploadCommand({ Bucket, Key, ChecksumAlgorithm: 'CRC32' }));
    const first = randomBytes(5 * MiB);
    const last = randomBytes(100);
    // Act
    const sha256Part = await errorOf(aws.s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: first, ChecksumAlgorithm: 'SHA256' })));
    const noChecksumPart = await errorOf(aws.s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: first })));
    const parts = [
      { PartNumber: 1, ...(await aws.s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: first, ChecksumAlgorithm: 'CRC32' }))) },
      { PartNumber: 2, ...(await aws.s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 2, Body: last, ChecksumAlgorithm: 'CRC32' }))) },
    ];
    const complete = (list: CompletedPart[]) => aws.s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: list } }));
    const missing = await errorOf(complete(parts.map(({ PartNumber, ETag }) => ({ PartNumber, ETag }))));
    const wrong = await errorOf(complete(parts.map(({ PartNumber, ETag }, index) => ({ PartNumber, ETag, ChecksumCRC32: parts[1 - index]!.ChecksumCRC32 }))));
    await complete(parts.map(({ PartNumber, ETag, ChecksumCRC32 }) => ({ PartNumber, ETag, ChecksumCRC32 })));
    // Assess
    expect(sha256Part?.name).toBe('InvalidRequest');
    expect(sha256Part?.message).toBe('Checksum Type mismatch occurred, expected checksum Type: crc32, actual checksum Type: sha256');
    expect(noChecksumPart?.message).toBe('Checksum Type mismatch occurred, expected checksum Type: crc32, actual checksum Type: null');
    expect(missing?.name).toBe('InvalidRequest');
    expect(missing?.message).toMatch(/^The upload was created using a crc32 checksum\. The complete request must include the checksum for each part\. It was missing for part 1/);
    expect(wrong?.name).toBe('InvalidPart');
    expect((await objectBytes(aws.s3, Key)).equals(Buffer.concat([first, last]))).toBe(true);
  });

  it('lets a FULL_OBJECT CRC32 upload take parts without checksums and verifies the whole-object checksum at Complete (BadDigest)', async () => {
    // Prepare
    const Key = newKey('full-object');
    const { UploadId } = await aws.s3.send(new CreateMultipartUploadCommand({ Bucket, Key, ChecksumAlgorithm: 'CRC32', ChecksumType: 'FULL_OBJECT' }));
    const first = randomBytes(5 * MiB);
    const last = randomBytes(1000);
    const parts: CompletedPart[] = [];
    for (const [index, Body] of [first, last].entries()) {
      const { ETag } = await aws.s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: index + 1, Body }));
      parts.push({ PartNumber: index + 1, ETag });
    }
    const complete = (ChecksumCRC32: string) =>
      aws.s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, ChecksumType: 'FULL_OBJECT', ChecksumCRC32, MultipartUpload: { Parts: parts } }));
    const crc32Of = (bytes: Buffer) => {
      const out = Buffer.alloc(4);
      out.writeUInt32BE(crc32(bytes));
      return out.toString('base64');
    };
    // Act
    const wrong = await errorOf(complete(crc32Of(first)));
    await complete(crc32Of(Buffer.concat([first, last])));
    // Assess
    expect(wrong?.name).toBe('BadDigest');
    expect((await objectBytes(aws.s3, Key)).equals(Buffer.concat([first, last]))).toBe(true);
  });

  it('refuses checksum types an algorithm cannot have at CreateMultipartUpload', async () => {
    // Act
    const fullSha256 = await errorOf(aws.s3.send(new CreateMultipartUploadCommand({ Bucket, Key: newKey('type'), ChecksumAlgorithm: 'SHA256', ChecksumType: 'FULL_OBJECT' })));
    const compositeCrc64 = await errorOf(aws.s3.send(new CreateMultipartUploadCommand({ Bucket, Key: newKey('type'), ChecksumAlgorithm: 'CRC64NVME', ChecksumType: 'COMPOSITE' })));
    // Assess
    expect(fullSha256?.message).toBe('The FULL_OBJECT checksum type cannot be used with the sha256 checksum algorithm.');
    expect(compositeCrc64?.message).toBe('The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.');
  });
});

describe('aws-chunked bodies and verified checksums', () => {
  it('decodes an aws-chunked body with a trailing CRC32 (the SDK default for streams) and stores the decoded bytes', async () => {
    // Prepare
    const Key = newKey('chunked');
    const content = randomBytes(100_000);
    const sent = captureHeaders(sdkDefaults);
    // Act
    await sdkDefaults.send(new PutObjectCommand({ Bucket, Key, Body: Readable.from([content.subarray(0, 65_536), content.subarray(65_536)]), ContentLength: content.length }));
    // Assess
    expect(sent.at(-1)?.headers).toMatchObject({
      'content-encoding': 'aws-chunked',
      'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
      'x-amz-trailer': 'x-amz-checksum-crc32',
      'x-amz-decoded-content-length': String(content.length),
    });
    expect((await objectBytes(aws.s3, Key)).equals(content)).toBe(true);
    const head = await aws.s3.send(new HeadObjectCommand({ Bucket, Key }));
    expect(head.ContentLength).toBe(content.length);
    expect(head.ContentEncoding).toBeUndefined();
  });

  it('answers BadDigest when a byte of an aws-chunked body changed in transit, and keeps no object', async () => {
    // Prepare: flip one data byte of the encoded stream after the SDK computed the trailer
    const Key = newKey('chunked-bad');
    const client = new S3Client({ endpoint: aws.endpoints.s3, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, forcePathStyle: true });
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { body: Readable };
        let flipped = false;
        request.body = request.body.map((chunk: Buffer | string) => {
          const bytes = Buffer.from(chunk);
          if (!flipped && bytes.length > 1000) {
            flip(bytes, 500, 0xff);
            flipped = true;
          }
          return bytes;
        });
        return next(args);
      },
      { step: 'finalizeRequest', name: 'corrupt-in-transit-test', priority: 'low' },
    );
    // Act
    const error = await errorOf(client.send(new PutObjectCommand({ Bucket, Key, Body: Readable.from([randomBytes(20_000)]), ContentLength: 20_000 })));
    client.destroy();
    // Assess
    expect(error?.name).toBe('BadDigest');
    expect((await errorOf(aws.s3.send(new HeadObjectCommand({ Bucket, Key }))))?.name).toBe('NotFound');
  });

  it('refuses an aws-chunked body whose chunks before the last are under 8 KiB (InvalidChunkSizeError)', async () => {
    // Act: a stream of small pieces, each sent as its own chunk
    const error = await errorOf(sdkDefaults.send(new PutObjectCommand({ Bucket, Key: newKey('small-chunks'), Body: Readable.from([randomBytes(100), randomBytes(100)]), ContentLength: 200 })));
    // Assess
    expect(error?.name).toBe('InvalidChunkSizeError');
    expect(error?.$metadata?.httpStatusCode).toBe(403);
  });

  it('answers BadDigest for an x-amz-checksum-sha256 or Content-MD5 that is not the body’s, and XAmzContentSHA256Mismatch for a changed signed payload', async () => {
    // Prepare
    const body = randomBytes(1000);
    const other = randomBytes(1000);
    const Key = newKey('digests');
    const tampering = aws.s3Client();
    tampering.middlewareStack.add(
      (next) => async (args) => {
        (args.request as { body: Uint8Array }).body = other;
        return next(args);
      },
      { step: 'finalizeRequest', name: 'swap-signed-body-test', priority: 'low' },
    );
    // Act
    const sha = await errorOf(aws.s3.send(new PutObjectCommand({ Bucket, Key, Body: body, ChecksumSHA256: Buffer.from(sha256(other).hex, 'hex').toString('base64') })));
    const md5 = await errorOf(aws.s3.send(new PutObjectCommand({ Bucket, Key, Body: body, ContentMD5: 'AAAAAAAAAAAAAAAAAAAAAA==' })));
    const swapped = await errorOf(tampering.send(new PutObjectCommand({ Bucket, Key, Body: body })));
    tampering.destroy();
    await aws.s3.send(new PutObjectCommand({ Bucket, Key, Body: body, ChecksumSHA256: Buffer.from(sha256(body).hex, 'hex').toString('base64') }));
    // Assess
    expect([sha?.name, md5?.name, swapped?.name]).toEqual(['BadDigest', 'BadDigest', 'XAmzContentSHA256Mismatch']);
    expect((await objectBytes(aws.s3, Key)).equals(body)).toBe(true);
  });
});

describe('response checksums', () => {
  it('returns the checksum stored with an object, so the production client refuses bytes damaged at rest', async () => {
    // Prepare: an object written as the blob store writes buffered appends, then damaged in s3rver's file
    const Key = newKey('at-rest');
    const body = randomBytes(300_000);
    await aws.s3.send(new PutObjectCommand({ Bucket, Key, Body: body, ContentLength: body.length }));
    const intact = await aws.s3.send(new GetObjectCommand({ Bucket, Key }));
    await intact.Body!.transformToByteArray();
    const file = aws.s3ObjectFile(Bucket, Key);
    const damaged = await readFile(file);
    flip(damaged, 1234, 0x01);
    await writeFile(file, damaged);
    // Act
    const error = await errorOf(objectBytes(aws.s3, Key));
    // Assess
    expect(intact.ChecksumCRC64NVME).toMatch(/^[A-Za-z0-9+/]{11}=$/);
    expect(error?.message).toMatch(/Checksum mismatch/i);
  });

  it('never assembles a part from a damaged buffered append', async () => {
    // Prepare: 1 MiB buffered, damaged at rest, then the append that flushes the first part reads it back
    const store = new S3BlobStore({ s3: aws.s3, bucket: Bucket });
    const content = randomBytes(5 * MiB);
    const first = await store.append(await store.startUpload(`damaged-${randomBytes(4).toString('hex')}`), 0, bytesOf(content.subarray(0, MiB)));
    const [[bufferKey]] = (first.state as { buffer: [string, number][] }).buffer as [[string, number]];
    const file = aws.s3ObjectFile(Bucket, bufferKey);
    const damaged = await readFile(file);
    flip(damaged, 42, 0x80);
    await writeFile(file, damaged);
    // Act
    const error = await errorOf(store.append(first.state, MiB, bytesOf(content.subarray(MiB))));
    // Assess
    expect(error?.message).toMatch(/Checksum mismatch/i);
  });
});

describe('ListObjectsV2 pages (s3rver-list-v2.ts: s3rver\'s own continuation tokens need DES, which Node 22 lacks)', () => {
  it('pages through a prefix with continuation tokens, as S3 does: KeyCount, IsTruncated, every key once, in order', async () => {
    // Prepare
    const prefix = `${newKey('list')}/`;
    const keys = Array.from({ length: 12 }, (_, index) => `${prefix}k${String(index).padStart(2, '0')}`);
    for (const Key of keys) await aws.s3.send(new PutObjectCommand({ Bucket, Key, Body: randomBytes(8) }));
    // Act
    const pages: ListObjectsV2CommandOutput[] = [];
    let token: string | undefined;
    do {
      const page = await aws.s3.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, MaxKeys: 5, ...(token ? { ContinuationToken: token } : {}) }));
      pages.push(page);
      token = page.NextContinuationToken;
    } while (token !== undefined);
    const afterFive = await aws.s3.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, StartAfter: keys[4] }));
    const forged = await aws.s3.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken: 'not-a-token' })).catch((error: unknown) => error);
    // Assess
    expect(pages.map((page) => [page.KeyCount, page.IsTruncated, page.NextContinuationToken !== undefined])).toEqual([
      [5, true, true],
      [5, true, true],
      [2, false, false],
    ]);
    expect(pages.flatMap((page) => (page.Contents ?? []).map((object) => object.Key))).toEqual(keys);
    expect(pages[1]!.ContinuationToken).toBe(pages[0]!.NextContinuationToken);
    expect(pages[0]!.Contents![0]!.Owner).toBeUndefined();
    expect((afterFive.Contents ?? []).map((object) => object.Key)).toEqual(keys.slice(5));
    expect(afterFive.StartAfter).toBe(keys[4]);
    expect(forged).toMatchObject({ name: 'InvalidArgument' });
  });
});
