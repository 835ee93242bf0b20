import { createHash, randomBytes } from 'node:crypto';
import { DescribeTimeToLiveCommand, GetItemCommand, PutItemCommand, TransactionCanceledException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesOf } from '../../lib/registry/bytes.ts';
import { digestOf, parseDigest } from '../../lib/registry/digest.ts';
import { isOciError } from '../../lib/registry/errors.ts';
import { Registry } from '../../lib/registry/registry.ts';
import type { Json } from '../../lib/registry/types.ts';
import { createDynamoDbClient } from '../../lib/storage/aws-clients.ts';
import { createLocalResources, METADATA_TABLE, resourceNames, UPLOAD_SESSION_TTL_SECONDS } from '../../lib/storage/aws-resources.ts';
import { DynamoDbMetadataStore } from '../../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { manifestItemKey, tagKey, uploadKey } from '../../lib/storage/dynamodb/keys.ts';
import { manifestKey, uploadBufferPrefix } from '../../lib/storage/s3/keys.ts';
import { S3ManifestBodyStore } from '../../lib/storage/s3/s3-manifest-body-store.ts';
import { S3BlobStore } from '../../lib/storage/s3/s3-blob-store.ts';
import { MAX_BLOB_SIZE, MAX_PARTS, MIN_PART_SIZE } from '../../lib/storage/s3/s3-upload-limits.ts';
import { packEtag } from '../../lib/storage/s3/s3-upload-state.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startAwsLocal, type AwsLocal } from '../../lib/dev/aws-local.ts';
import { verifyPresignedUrl } from '../../lib/dev/presigned-url.ts';
import { S3CallCounter } from '../../lib/dev/sdk-call-counter.ts';
import { parsedSha256 as sha256 } from '../support/digests.ts';
import { boundedListingsContract } from '../http/bounded-listings.contract.ts';
import { malformedRequestsContract } from '../http/malformed-requests.contract.ts';
import { blobStoreContract } from './blob-store.contract.ts';
import { manifestBodyStoreContract } from './manifest-body-store.contract.ts';
import { metadataStoreContract, storedManifest } from './metadata-store.contract.ts';
import { tagHistoryStoreContract } from './tag-history-store.contract.ts';
import { DynamoDbTagHistoryStore } from '../../lib/storage/dynamodb/dynamodb-tag-history-store.ts';

const MiB = 1024 * 1024;

let aws: AwsLocal;
const names = resourceNames('ocireg-test');
beforeAll(async () => {
  aws = await startAwsLocal();
  await createLocalResources(aws.dynamo, aws.s3, names);
});
afterAll(async () => {
  await aws?.stop();
});

async function fetchRedirect(url: string, range?: string): Promise<Uint8Array> {
  const response = await fetch(url, range ? { headers: { range } } : {});
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** A new store, as a new Lambda invocation would build it. */
const blobStore = (options: { s3?: S3Client } = {}) => new S3BlobStore({ s3: options.s3 ?? aws.s3, bucket: names.bucket });
const metadataStore = (dynamo: DynamoDBClient = aws.dynamo) => new DynamoDbMetadataStore({ dynamo, table: names.table, bodies: manifestBodyStore() });
const manifestBodyStore = () => new S3ManifestBodyStore({ s3: aws.s3, bucket: names.bucket });

blobStoreContract('s3 (s3rver)', async () => ({ store: blobStore(), fetchRedirect }));
metadataStoreContract('DynamoDB Local', async () => metadataStore());
manifestBodyStoreContract('s3 (s3rver)', async () => manifestBodyStore());
tagHistoryStoreContract('DynamoDB Local', async (depth) => ({ metadata: metadataStore(), history: new DynamoDbTagHistoryStore({ dynamo: aws.dynamo, table: names.table, depth }) }));
// Through the app: an `n` past DynamoDB's 32-bit Limit answered 500 here before the core bounded listings.
boundedListingsContract('DynamoDB Local + s3rver', async () => ({ blobs: blobStore(), metadata: metadataStore() }));
malformedRequestsContract('DynamoDB Local + s3rver', async () => ({ blobs: blobStore(), metadata: metadataStore() }));

/** What the core does with the state between requests: JSON in a DynamoDB string attribute. */
const persisted = (state: Json): Json => JSON.parse(JSON.stringify(state)) as Json;
const uploadIdOf = (state: Json) => (state as { uploadId: string }).uploadId;

async function objectExists(key: string): Promise<boolean> {
  return aws.s3.send(new HeadObjectCommand({ Bucket: names.bucket, Key: key })).then(
    () => true,
    (error: unknown) => {
      if ((error as Error).name === 'NotFound') return false;
      throw error;
    },
  );
}

async function keysUnder(prefix: string): Promise<string[]> {
  const { Contents } = await aws.s3.send(new ListObjectsV2Command({ Bucket: names.bucket, Prefix: prefix }));
  return (Contents ?? []).map((object) => object.Key!);
}

async function readBack(store: S3BlobStore, location: string): Promise<Buffer> {
  const read = await store.read(location);
  if (read.kind !== 'redirect') throw new Error('expected a redirect');
  return Buffer.from(await fetchRedirect(read.url));
}

/** Appends `chunks` one per fresh store instance, the state persisted in between, like one Lambda call per PATCH. */
async function appendChunks(state: Json, chunks: Uint8Array[], offset = 0): Promise<{ state: Json; size: number }> {
  let size = offset;
  for (const chunk of chunks) {
    ({ state, size } = await blobStore().append(persisted(state), size, bytesOf(chunk), chunk.byteLength));
  }
  return { state: persisted(state), size };
}

/** Exact comparison without vitest's element-by-element diff, which takes minutes on 64 MiB. */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength);
  expect(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(expected)).toBe(true);
}

function split(content: Buffer, chunkSize: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < content.byteLength; at += chunkSize) chunks.push(content.subarray(at, at + chunkSize));
  return chunks;
}

describe('strict s3rver', () => {
  it('refuses CompleteMultipartUpload when a part other than the last is under 5 MiB, like S3', async () => {
    // Prepare
    const Key = `strict/${randomBytes(4).toString('hex')}`;
    const { UploadId } = await aws.s3.send(new CreateMultipartUploadCommand({ Bucket: names.bucket, Key }));
    const one = await aws.s3.send(new UploadPartCommand({ Bucket: names.bucket, Key, UploadId, PartNumber: 1, Body: randomBytes(MiB) }));
    const two = await aws.s3.send(new UploadPartCommand({ Bucket: names.bucket, Key, UploadId, PartNumber: 2, Body: randomBytes(10) }));
    // Act
    const error = await aws.s3
      .send(new CompleteMultipartUploadCommand({ Bucket: names.bucket, Key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: one.ETag }, { PartNumber: 2, ETag: two.ETag }] } }))
      .catch((e: unknown) => e);
    // Assess
    expect((error as Error).name).toBe('EntityTooSmall');
    expect(await objectExists(Key)).toBe(false);
  });

  it('refuses a part ETag that is not the part uploaded, and part numbers above 10,000 on client and server', async () => {
    const Key = `strict/${randomBytes(4).toString('hex')}`;
    const { UploadId } = await aws.s3.send(new CreateMultipartUploadCommand({ Bucket: names.bucket, Key }));
    await aws.s3.send(new UploadPartCommand({ Bucket: names.bucket, Key, UploadId, PartNumber: 1, Body: randomBytes(100) }));
    const wrongEtag = await aws.s3
      .send(new CompleteMultipartUploadCommand({ Bucket: names.bucket, Key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"0123456789abcdef0123456789abcdef"' }] } }))
      .catch((e: unknown) => e);
    expect((wrongEtag as Error).name).toBe('InvalidPart');
    const clientSide = await aws.s3.send(new UploadPartCommand({ Bucket: names.bucket, Key, UploadId, PartNumber: MAX_PARTS + 1, Body: 'x' })).catch((e: unknown) => e);
    expect((clientSide as Error).name).toBe('InvalidArgument');
    const plain = aws.s3Client();
    const serverSide = await plain.send(new UploadPartCommand({ Bucket: names.bucket, Key, UploadId, PartNumber: MAX_PARTS + 1, Body: 'x' })).catch((e: unknown) => e);
    plain.destroy();
    expect((serverSide as Error).name).toBe('InvalidArgument');
  });

  it('rejects a tampered or expired presigned URL, as s3rver alone would not', async () => {
    // Prepare
    const store = blobStore();
    const content = randomBytes(1000);
    const appended = await store.append(await store.startUpload(`presign-${randomBytes(4).toString('hex')}`), 0, bytesOf(content));
    const location = await store.commit(appended.state, sha256(content), appended.size);
    const read = await store.read(location);
    if (read.kind !== 'redirect') throw new Error('expected a redirect');
    const url = new URL(read.url);
    // Act
    const tamperedKey = new URL(url);
    tamperedKey.pathname = `${url.pathname.slice(0, -1)}x`;
    const tamperedExpiry = new URL(url);
    tamperedExpiry.searchParams.set('X-Amz-Expires', '604800');
    const [good, badKey, badExpiry] = await Promise.all([fetch(url), fetch(tamperedKey), fetch(tamperedExpiry)]);
    // Assess
    expect(good.status).toBe(200);
    expect(Buffer.from(await good.arrayBuffer())).toEqual(content);
    expect([badKey.status, badExpiry.status]).toEqual([403, 403]);
    expect(await badExpiry.text()).toContain('SignatureDoesNotMatch');
    expect(verifyPresignedUrl(read.url, LOCAL_CREDENTIALS)).toEqual({ valid: true });
    expect(verifyPresignedUrl(read.url, LOCAL_CREDENTIALS, { now: Date.now() + 901_000 })).toEqual({ valid: false, reason: 'expired' });
    expect(verifyPresignedUrl(read.url, { ...LOCAL_CREDENTIALS, secretAccessKey: 'other' }).valid).toBe(false);
  });
});

describe('S3BlobStore specifics', () => {
  it('redirects to a presigned URL without calling S3, signed for the presign client host', async () => {
    // Prepare
    const presignClient = aws.s3Client({ hostname: 'localhost' });
    const store = new S3BlobStore({ s3: aws.s3, bucket: names.bucket, presignClient, presignExpiresIn: 60 });
    const content = randomBytes(2000);
    const appended = await store.append(await store.startUpload(`host-${randomBytes(4).toString('hex')}`), 0, bytesOf(content));
    const location = await store.commit(appended.state, sha256(content), appended.size);
    aws.s3Calls.reset();
    // Act
    const read = await store.read(location, { start: 0, end: 9 });
    // Assess
    expect(aws.s3Calls.total()).toBe(0);
    if (read.kind !== 'redirect') throw new Error('expected a redirect');
    expect(new URL(read.url).hostname).toBe('localhost');
    expect(new URL(read.url).searchParams.get('X-Amz-Expires')).toBe('60');
    expect(Buffer.from(await fetchRedirect(read.url, 'bytes=0-9'))).toEqual(content.subarray(0, 10));
    presignClient.destroy();
  });

  it('stores a single-request blob with three S3 requests and no multipart upload', async () => {
    const content = randomBytes(300_000);
    aws.s3Calls.reset();
    const store = blobStore();
    const appended = await store.append(await store.startUpload(`small-${randomBytes(4).toString('hex')}`), 0, bytesOf(content));
    const location = await blobStore().commit(persisted(appended.state), sha256(content), appended.size);
    expect(aws.s3Calls.snapshot()).toEqual({ CopyObject: 1, DeleteObject: 1, PutObject: 1 });
    expectSameBytes(await readBack(blobStore(), location), content);
  });

  it('coalesces 1 MiB appends into parts of at least 5 MiB that strict S3 accepts', async () => {
    // Prepare
    const content = randomBytes(12 * MiB + 123);
    const state = await blobStore().startUpload(`coalesce-${randomBytes(4).toString('hex')}`);
    aws.s3Calls.reset();
    // Act
    const appended = await appendChunks(state, split(content, MiB));
    const location = await blobStore().commit(appended.state, sha256(content), appended.size);
    // Assess: parts at 5 and 10 MiB, the last 2 MiB + 123 bytes at commit
    expect(aws.s3Calls.count('UploadPart')).toBe(3);
    expect(aws.s3Calls.count('CompleteMultipartUpload')).toBe(1);
    expect(aws.s3Calls.count('PutObject')).toBe(13 - 2);
    expectSameBytes(await readBack(blobStore(), location), content);
    expect(await keysUnder(uploadBufferPrefix(uploadIdOf(state)))).toEqual([]);
  });

  it('uploads 64 MiB in 4 MiB appends, one store instance per append, and serves it bit-identical', async () => {
    // Prepare
    const content = randomBytes(64 * MiB);
    const state = await blobStore().startUpload(`big-${randomBytes(4).toString('hex')}`);
    aws.s3Calls.reset();
    const started = performance.now();
    // Act
    const appended = await appendChunks(state, split(content, 4 * MiB));
    const appendedAt = performance.now();
    const location = await blobStore().commit(appended.state, sha256(content), appended.size);
    const committedAt = performance.now();
    // Assess
    expect(appended.size).toBe(64 * MiB);
    expect(JSON.stringify(appended.state).length).toBeLessThan(1000);
    const calls = aws.s3Calls.snapshot();
    expect(calls.UploadPart).toBe(8);
    expectSameBytes(await readBack(blobStore(), location), content);
    console.info(
      `64 MiB in 16 appends of 4 MiB: appends ${Math.round(appendedAt - started)} ms, commit ${Math.round(committedAt - appendedAt)} ms, ` +
        `S3 calls ${JSON.stringify(calls)}, state ${JSON.stringify(appended.state).length} bytes`,
    );
  });

  it('resumes the SHA-256 from the persisted state only: a fresh instance verifies and refuses by it', async () => {
    const content = randomBytes(3 * MiB);
    const chunks = split(content, 700_000);
    const good = await appendChunks(await blobStore().startUpload(`resume-a-${randomBytes(4).toString('hex')}`), chunks);
    await expect(blobStore().commit(good.state, sha256(content), good.size)).resolves.toMatch(/^blobs\//);
    // The same bytes with one chunk altered in flight: only the saved hash state can tell.
    const altered = [...chunks];
    altered[2] = randomBytes(altered[2]!.byteLength);
    const bad = await appendChunks(await blobStore().startUpload(`resume-b-${randomBytes(4).toString('hex')}`), altered);
    const error = await blobStore().commit(bad.state, sha256(content), bad.size).catch((e: unknown) => e);
    expect(isOciError(error, 'DIGEST_INVALID')).toBe(true);
  });

  it('refuses an upload beyond 10,000 parts of 5 MiB before calling S3', async () => {
    // Prepare: states as they would be near the limit (a real one would take 48.8 GiB)
    const start = (await blobStore().startUpload(`limit-${randomBytes(4).toString('hex')}`)) as Record<string, Json>;
    const nearTheEnd = { ...start, size: MAX_BLOB_SIZE - 100 };
    const etag = packEtag(`"${'ab'.repeat(16)}"`);
    const fullOfParts = { ...start, size: MAX_PARTS * MIN_PART_SIZE - 2 * MiB, etags: Array.from({ length: MAX_PARTS }, () => etag).join(','), buffer: [['uploads/x/1-00', 4 * MiB]] };
    aws.s3Calls.reset();
    // Act
    const tooBig = await blobStore().append(nearTheEnd, MAX_BLOB_SIZE - 100, bytesOf(randomBytes(101))).catch((e: unknown) => e);
    const part10001 = await blobStore().append(fullOfParts, fullOfParts.size, bytesOf(randomBytes(MiB))).catch((e: unknown) => e);
    // Assess
    expect(MAX_BLOB_SIZE).toBe(52_428_800_000);
    expect(isOciError(tooBig, 'PAYLOAD_TOO_LARGE')).toBe(true);
    expect((tooBig as Error).message).toMatch(/10000 parts/);
    expect(isOciError(part10001, 'PAYLOAD_TOO_LARGE')).toBe(true);
    expect(aws.s3Calls.total()).toBe(0);
    // 10,000 parts still fit in an upload session item (400 KB).
    expect(JSON.stringify(fullOfParts).length).toBeLessThan(250_000);
  });

  it('keeps the winner intact when two appends race from one state and the loser only buffered', async () => {
    // Prepare: 4 MiB buffered; A flushes a part with them, B (the winner) only buffers its chunk
    const prefix = randomBytes(4 * MiB);
    const base = await appendChunks(await blobStore().startUpload(`race-a-${randomBytes(4).toString('hex')}`), [prefix]);
    const [a, b] = [randomBytes(2 * MiB), randomBytes(100_000)];
    // Act
    await Promise.all([blobStore().append(base.state, base.size, bytesOf(a)), blobStore().append(base.state, base.size, bytesOf(b))]).then(async ([, winner]) => {
      const location = await blobStore().commit(persisted(winner.state), sha256(Buffer.concat([prefix, b])), winner.size);
      // Assess
      expectSameBytes(await readBack(blobStore(), location), Buffer.concat([prefix, b]));
    });
  });

  it('keeps the winner intact when both racing appends flush the first part (each opens its own multipart upload)', async () => {
    const prefix = randomBytes(4 * MiB);
    const base = await appendChunks(await blobStore().startUpload(`race-b-${randomBytes(4).toString('hex')}`), [prefix]);
    const [a, b] = [randomBytes(2 * MiB), randomBytes(2 * MiB)];
    const winner = await blobStore().append(base.state, base.size, bytesOf(a));
    await blobStore().append(base.state, base.size, bytesOf(b));
    const location = await blobStore().commit(persisted(winner.state), sha256(Buffer.concat([prefix, a])), winner.size);
    expectSameBytes(await readBack(blobStore(), location), Buffer.concat([prefix, a]));
  });

  it('never commits the wrong bytes when a losing append overwrote the winner part', async () => {
    // Prepare: part 1 flushed, 4 MiB buffered; A and B both flush part 2, and the loser B's UploadPart lands last
    const head = [randomBytes(4 * MiB), randomBytes(2 * MiB), randomBytes(4 * MiB)];
    const base = await appendChunks(await blobStore().startUpload(`race-c-${randomBytes(4).toString('hex')}`), head);
    const [a, b] = [randomBytes(2 * MiB), randomBytes(2 * MiB)];
    const winner = await blobStore().append(base.state, base.size, bytesOf(a));
    await blobStore().append(base.state, base.size, bytesOf(b));
    // Act
    const error = await blobStore().commit(persisted(winner.state), sha256(Buffer.concat([...head, a])), winner.size).catch((e: unknown) => e);
    // Assess
    expect(isOciError(error, 'BLOB_UPLOAD_INVALID')).toBe(true);
    expect(await objectExists(`blobs/${uploadIdOf(base.state)}`)).toBe(false);
  });

  it('leaves no object when the digest does not match, for a multipart upload and a small one', async () => {
    for (const size of [6 * MiB, 1000]) {
      // Prepare
      const content = randomBytes(size);
      const state = await blobStore().startUpload(`mismatch-${randomBytes(4).toString('hex')}`);
      const appended = await appendChunks(state, split(content, 4 * MiB));
      // Act
      const error = await blobStore().commit(appended.state, sha256(randomBytes(10)), appended.size).catch((e: unknown) => e);
      await blobStore().abort(appended.state);
      // Assess
      expect(isOciError(error, 'DIGEST_INVALID')).toBe(true);
      expect(await objectExists(`blobs/${uploadIdOf(state)}`)).toBe(false);
      expect(await keysUnder(uploadBufferPrefix(uploadIdOf(state)))).toEqual([]);
      const multipartId = (appended.state as { multipartId?: string }).multipartId;
      expect(multipartId !== undefined).toBe(size > MIN_PART_SIZE);
      if (multipartId) {
        const late = await aws.s3
          .send(new UploadPartCommand({ Bucket: names.bucket, Key: `blobs/${uploadIdOf(state)}`, UploadId: multipartId, PartNumber: 9, Body: 'x' }))
          .catch((e: unknown) => e);
        expect((late as Error).name).toBe('NoSuchUpload');
      }
    }
  });

  it('answers a retried commit with the object the first attempt completed', async () => {
    const content = randomBytes(7 * MiB);
    const appended = await appendChunks(await blobStore().startUpload(`retry-${randomBytes(4).toString('hex')}`), split(content, 4 * MiB));
    const first = await blobStore().commit(appended.state, sha256(content), appended.size);
    const second = await blobStore().commit(appended.state, sha256(content), appended.size);
    expect(second).toBe(first);
    expectSameBytes(await readBack(blobStore(), second), content);
  });

  it('merges many tiny appends so the state stays small', async () => {
    const content = randomBytes(200 * 10);
    const appended = await appendChunks(await blobStore().startUpload(`tiny-${randomBytes(4).toString('hex')}`), split(content, 10));
    expect((appended.state as { buffer: unknown[] }).buffer.length).toBeLessThanOrEqual(64);
    const location = await blobStore().commit(appended.state, sha256(content), appended.size);
    expectSameBytes(await readBack(blobStore(), location), content);
  });

  it('verifies sha512 digests of blobs under 5 MiB and refuses larger ones as UNSUPPORTED', async () => {
    const small = randomBytes(3 * MiB);
    const a = await appendChunks(await blobStore().startUpload(`s512-a-${randomBytes(4).toString('hex')}`), split(small, 2 * MiB));
    const location = await blobStore().commit(a.state, parseDigest(digestOf(small, 'sha512')), a.size);
    expectSameBytes(await readBack(blobStore(), location), small);
    const large = randomBytes(6 * MiB);
    const b = await appendChunks(await blobStore().startUpload(`s512-b-${randomBytes(4).toString('hex')}`), split(large, 4 * MiB));
    const error = await blobStore().commit(b.state, parseDigest(digestOf(large, 'sha512')), b.size).catch((e: unknown) => e);
    expect(isOciError(error, 'UNSUPPORTED')).toBe(true);
    await blobStore().abort(b.state);
  });
});

describe('DynamoDbMetadataStore specifics', () => {
  const repo = (label: string) => `aws-${randomBytes(4).toString('hex')}/${label}`;
  const rawItem = async (itemKey: { pk: string; sk: string }) =>
    (await aws.dynamo.send(new GetItemCommand({ TableName: names.table, Key: { pk: { S: itemKey.pk }, sk: { S: itemKey.sk } }, ConsistentRead: true }))).Item;

  /** A store whose DynamoDB requests are counted. */
  function countedStore(): { store: DynamoDbMetadataStore; calls: S3CallCounter; dynamo: DynamoDBClient } {
    const calls = new S3CallCounter();
    const dynamo = calls.attach(createDynamoDbClient({ endpoint: aws.endpoints.dynamo, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }));
    return { store: metadataStore(dynamo), calls, dynamo };
  }

  it('answers each pull with one DynamoDB read', async () => {
    // Prepare
    const { store, calls, dynamo } = countedStore();
    const name = repo('pull');
    const manifest = storedManifest();
    const blob = { digest: digestOf(randomBytes(8)), size: 5, location: 'blobs/x' };
    await store.putBlob(blob);
    await store.linkBlob(name, blob);
    await store.putManifest(name, manifest, ['v1']);
    const pushCalls = calls.snapshot();
    calls.reset();
    // Act + Assess
    expect(await store.getLinkedBlob(name, blob.digest)).toEqual(blob);
    expect(calls.snapshot()).toEqual({ GetItem: 1 });
    calls.reset();
    expect((await store.resolveTag(name, 'v1'))?.digest).toBe(manifest.digest);
    expect(calls.snapshot()).toEqual({ GetItem: 1 });
    calls.reset();
    expect((await store.getManifest(name, manifest.digest))?.digest).toBe(manifest.digest);
    expect(calls.snapshot()).toEqual({ GetItem: 1 });
    // putBlob and the catalog entry; linkBlob (record stamp + link) and the manifest with its tag.
    expect(pushCalls).toEqual({ PutItem: 2, TransactWriteItems: 2 });
    dynamo.destroy();
  });

  it('keeps a manifest over ~350 KB in the body store (S3 here), inline below', async () => {
    // Prepare
    const name = repo('large');
    const large = storedManifest({ padding: randomBytes(450_000).toString('base64') });
    const small = storedManifest();
    const store = metadataStore();
    // Act
    await store.putManifest(name, large, ['large']);
    await store.putManifest(name, small, ['small']);
    aws.s3Calls.reset();
    const byTag = await store.resolveTag(name, 'large');
    // Assess
    expect(aws.s3Calls.snapshot()).toEqual({ GetObject: 1 });
    expect(Buffer.from(byTag!.content)).toEqual(Buffer.from(large.content));
    for (const itemKey of [manifestItemKey(name, large.digest), tagKey(name, 'large')]) {
      const item = await rawItem(itemKey);
      expect(item?.content).toBeUndefined();
      expect(item?.bodyStored?.BOOL).toBe(true);
    }
    const stored = await aws.s3.send(new GetObjectCommand({ Bucket: names.bucket, Key: manifestKey(large.digest) }));
    expect(createHash('sha256').update(await stored.Body!.transformToByteArray()).digest('hex')).toBe(large.digest.slice('sha256:'.length));
    expect((await rawItem(tagKey(name, 'small')))?.content?.B).toBeDefined();
    aws.s3Calls.reset();
    await store.resolveTag(name, 'small');
    expect(aws.s3Calls.total()).toBe(0);
  });

  it('reads a large manifest whose item was written before the body store, naming its S3 key', async () => {
    // Prepare: the item layout of earlier releases (contentKey), the body where they put it
    const name = repo('legacy');
    const large = storedManifest({ padding: randomBytes(400_000).toString('base64') });
    await aws.s3.send(new PutObjectCommand({ Bucket: names.bucket, Key: manifestKey(large.digest), Body: large.content }));
    const fields = { digest: { S: large.digest }, mediaType: { S: large.mediaType }, size: { N: String(large.content.byteLength) }, contentKey: { S: manifestKey(large.digest) } };
    await aws.dynamo.send(new PutItemCommand({ TableName: names.table, Item: { pk: { S: tagKey(name, 'old').pk }, sk: { S: tagKey(name, 'old').sk }, ...fields } }));
    // Act
    const read = await metadataStore().resolveTag(name, 'old');
    // Assess
    expect(read?.digest).toBe(large.digest);
    expect(Buffer.from(read!.content).equals(Buffer.from(large.content))).toBe(true);
  });

  it('checks the references of a manifest push with one BatchGetItem per 100 keys', async () => {
    // Prepare
    const { store, calls, dynamo } = countedStore();
    const name = repo('refs');
    const blobs = Array.from({ length: 230 }, () => ({ digest: digestOf(randomBytes(8)), size: 1, location: 'blobs/x' }));
    await Promise.all(blobs.map(async (blob) => {
      await store.putBlob(blob);
      await store.linkBlob(name, blob);
    }));
    const child = storedManifest();
    await store.putManifest(name, child, []);
    calls.reset();
    // Act
    const fewMissing = await store.missingReferences(name, { blobs: blobs.slice(0, 6).map((blob) => blob.digest), manifests: [child.digest] });
    const fewCalls = calls.snapshot();
    calls.reset();
    const manyMissing = await store.missingReferences(name, { blobs: [...blobs.map((blob) => blob.digest), 'sha256:' + '0'.repeat(64)], manifests: [] });
    const manyCalls = calls.snapshot();
    // Assess
    expect(fewMissing).toEqual([]);
    expect(fewCalls).toEqual({ BatchGetItem: 1 });
    expect(manyMissing).toEqual(['sha256:' + '0'.repeat(64)]);
    expect(manyCalls).toEqual({ BatchGetItem: 3 });
    dynamo.destroy();
  });

  it('stores no manifest body whose bytes do not hash to its digest: S3 checks the sha256 it is sent (BadDigest)', async () => {
    const bodies = manifestBodyStore();
    const manifest = storedManifest({ padding: randomBytes(1000).toString('base64') });
    const other = storedManifest();
    const error = await bodies.put(manifest.digest, other.content, manifest.mediaType).catch((e: unknown) => e);
    expect((error as Error).name).toBe('BadDigest');
    expect(await bodies.get(manifest.digest)).toBeUndefined();
  });

  it('refuses a manifest too large for an item with 413 when it has no body store, and writes nothing', async () => {
    const name = repo('no-bodies');
    const store = new DynamoDbMetadataStore({ dynamo: aws.dynamo, table: names.table });
    const large = storedManifest({ padding: randomBytes(400_000).toString('base64') });
    const error = await store.putManifest(name, large, ['t']).catch((e: unknown) => e);
    expect(isOciError(error, 'PAYLOAD_TOO_LARGE')).toBe(true);
    expect(await rawItem(tagKey(name, 't'))).toBeUndefined();
    expect(await rawItem(manifestItemKey(name, large.digest))).toBeUndefined();
  });

  it('keeps the first blob record when many writers race, by a conditional put', async () => {
    const store = metadataStore();
    const digest = digestOf(randomBytes(8));
    const records = Array.from({ length: 8 }, (_, index) => ({ digest, size: 3, location: `blobs/${index}` }));
    const results = await Promise.all(records.map((record) => store.putBlob(record)));
    const winner = await store.getBlob(digest);
    expect(records).toContainEqual(winner);
    for (const result of results) expect(result).toEqual(winner);
  });

  it('never leaves a tag on a deleted manifest when a push and a delete race', async () => {
    const store = metadataStore();
    for (let round = 0; round < 5; round++) {
      // Prepare
      const name = repo(`race-${round}`);
      const manifest = storedManifest();
      await store.putManifest(name, manifest, ['old']);
      // Act
      await Promise.all([store.putManifest(name, manifest, ['new']), store.deleteManifest(name, manifest.digest)]);
      // Assess
      const exists = (await store.getManifest(name, manifest.digest)) !== undefined;
      const tags = (await store.listTags(name, {}))?.items ?? [];
      if (!exists) expect(tags).toEqual([]);
      else expect(tags).toContain('new');
    }
  });

  it('retries a manifest push that a concurrent transaction cancelled (DynamoDB Local never conflicts; real DynamoDB does)', async () => {
    // Prepare: the first two TransactWriteItems are cancelled as real DynamoDB cancels a conflicting transaction
    const { store, calls, dynamo } = countedStore();
    let conflicts = 2;
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'TransactWriteItemsCommand' && conflicts-- > 0) {
          throw new TransactionCanceledException({
            message: 'Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]',
            $metadata: { httpStatusCode: 400 },
            CancellationReasons: [{ Code: 'None' }, { Code: 'TransactionConflict' }],
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'inject-transaction-conflict' },
    );
    const name = repo('conflict');
    const manifest = storedManifest();
    // Act
    await store.putManifest(name, manifest, ['t']);
    // Assess
    expect((await store.resolveTag(name, 't'))?.digest).toBe(manifest.digest);
    expect(calls.count('TransactWriteItems')).toBe(1);
    expect(conflicts).toBe(-1);
    dynamo.destroy();
  });

  it('pushes and deletes a manifest with more tags than one transaction holds', async () => {
    const store = metadataStore();
    const name = repo('many-tags');
    const manifest = storedManifest();
    const tags = Array.from({ length: 150 }, (_, index) => `t${String(index).padStart(3, '0')}`);
    await store.putManifest(name, manifest, tags);
    expect((await store.listTags(name, {}))?.items).toEqual(tags);
    expect(await store.listTags(name, { limit: 100, last: 't049' })).toEqual({ items: tags.slice(50, 150), hasMore: false });
    expect(await store.deleteManifest(name, manifest.digest)).toBe(true);
    expect(await store.listTags(name, {})).toBeUndefined();
  });

  it('gives upload sessions a TTL on a table with TTL enabled, and refuses a duplicate session', async () => {
    const store = metadataStore();
    const session = { name: repo('ttl'), uploadId: `u-${randomBytes(6).toString('hex')}`, offset: 0, version: 0, createdAt: Date.now(), storage: { a: 1 } };
    await store.createUpload(session);
    const item = await rawItem(uploadKey(session.uploadId));
    expect(Number(item?.[METADATA_TABLE.timeToLiveAttribute]?.N)).toBe(Math.ceil(session.createdAt / 1000) + UPLOAD_SESSION_TTL_SECONDS);
    const ttl = await aws.dynamo.send(new DescribeTimeToLiveCommand({ TableName: names.table }));
    expect(ttl.TimeToLiveDescription).toMatchObject({ TimeToLiveStatus: 'ENABLED', AttributeName: METADATA_TABLE.timeToLiveAttribute });
    await expect(store.createUpload(session)).rejects.toThrow();
  });
});

describe('a blob pushed in one request', () => {
  const registry = () => new Registry({ blobs: blobStore(), metadata: metadataStore() });
  const repo = (label: string) => `one-request-${randomBytes(4).toString('hex')}/${label}`;
  const blobKeys = async () => new Set(await keysUnder('blobs/'));

  it('costs one PutObject straight to a blob key of its own, carrying the digest for S3 to verify', async () => {
    // Prepare
    const content = randomBytes(300_000);
    const sent: Record<string, string>[] = [];
    const s3 = aws.s3Client();
    s3.middlewareStack.add(
      (next) => async (args) => {
        sent.push({ ...(args.request as { headers: Record<string, string> }).headers });
        return next(args);
      },
      { step: 'finalizeRequest', name: 'capture-put-headers-test', priority: 'low' },
    );
    const calls = new S3CallCounter();
    const store = new S3BlobStore({ s3: calls.attach(s3), bucket: names.bucket });
    // Act
    const { location, size } = await store.commitWhole(sha256(content), bytesOf(content));
    // Assess
    expect(calls.snapshot()).toEqual({ PutObject: 1 });
    expect(size).toBe(content.length);
    expect(location).toMatch(/^blobs\/[0-9a-f-]{36}$/);
    expect(sent[0]?.['x-amz-checksum-sha256']).toBe(createHash('sha256').update(content).digest('base64'));
    expectSameBytes(await readBack(store, location), content);
    s3.destroy();
  });

  it('refuses a wrong digest before writing anything', async () => {
    // Prepare
    const calls = new S3CallCounter();
    const s3 = calls.attach(aws.s3Client());
    const store = new S3BlobStore({ s3, bucket: names.bucket });
    // Act
    const error = await store.commitWhole(sha256(randomBytes(10)), bytesOf(randomBytes(1000))).catch((e: unknown) => e);
    // Assess
    expect(isOciError(error, 'DIGEST_INVALID')).toBe(true);
    expect(calls.total()).toBe(0);
    s3.destroy();
  });

  it('closes a containerd-style upload (POST, then one PUT with the body) without the upload id as its key, and without a session write', async () => {
    // Prepare
    const name = repo('containerd');
    const content = randomBytes(200_000);
    const session = await registry().uploads.start(name);
    aws.s3Calls.reset();
    // Act
    const record = await registry().uploads.complete(name, session.uploadId, sha256(content).digest, bytesOf(content), { length: content.length });
    // Assess
    expect(aws.s3Calls.snapshot()).toEqual({ PutObject: 1 });
    expect(record.location).not.toBe(`blobs/${session.uploadId}`);
    expect(record.size).toBe(content.length);
    expectSameBytes(await readBack(blobStore(), record.location), content);
    await expect(registry().uploads.get(name, session.uploadId)).rejects.toThrow();
  });

  it('keeps one record and one object when two pushes of the same digest commit at once', async () => {
    // Prepare
    const name = repo('race');
    const content = randomBytes(100_000);
    const before = await blobKeys();
    // Act
    const [first, second] = await Promise.all([
      registry().uploads.monolithic(name, sha256(content).digest, bytesOf(content), content.length),
      registry().uploads.monolithic(name, sha256(content).digest, bytesOf(content), content.length),
    ]);
    // Assess: both answered with the record in force; the loser's object is gone
    const added = [...(await blobKeys())].filter((key) => !before.has(key));
    expect(second.location).toBe(first.location);
    expect(added).toEqual([first.location]);
    expectSameBytes(await readBack(blobStore(), first.location), content);
  });
});
