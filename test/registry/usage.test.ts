import { randomBytes } from 'node:crypto';
import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import type { UsageSummary } from '../../lib/registry/usage.ts';
import { S3_STANDARD_USD_PER_GB_MONTH } from '../../lib/registry/usage-cost.ts';
import { createLocalResources, resourceNames } from '../../lib/storage/aws-resources.ts';
import { DynamoDbMetadataStore } from '../../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { DynamoDbPolicyStore } from '../../lib/storage/dynamodb/dynamodb-policy-store.ts';
import { DynamoDbUsageStore } from '../../lib/storage/dynamodb/dynamodb-usage-store.ts';
import { FsPolicyStore } from '../../lib/storage/fs/fs-policy-store.ts';
import { FsUsageStore } from '../../lib/storage/fs/fs-usage-store.ts';
import { openFsStorage } from '../../lib/storage/fs/open-fs-storage.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { MemoryPolicyStore } from '../../lib/storage/memory/memory-policy-store.ts';
import { MemoryTagHistoryStore } from '../../lib/storage/memory/memory-tag-history-store.ts';
import { DynamoDbTagHistoryStore } from '../../lib/storage/dynamodb/dynamodb-tag-history-store.ts';
import { MemoryUsageStore } from '../../lib/storage/memory/memory-usage-store.ts';
import { S3BlobStore } from '../../lib/storage/s3/s3-blob-store.ts';
import { S3ManifestBodyStore } from '../../lib/storage/s3/s3-manifest-body-store.ts';
import { useLocalBackends } from '../support/local-backends.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { usageContract } from './usage.contract.ts';

const dirs = tempDirs('ocireg-usage-');
afterAll(() => dirs.cleanUp());
const local = useLocalBackends('usage');

usageContract('memory', async () => {
  const metadata = new MemoryMetadataStore();
  return { blobs: new MemoryBlobStore(), metadata, usage: new MemoryUsageStore(metadata), policies: new MemoryPolicyStore(), history: new MemoryTagHistoryStore(metadata) };
});

usageContract('fs', async () => {
  const storage = await openFsStorage(await dirs.make());
  return { blobs: storage.blobs, metadata: storage.metadata, usage: new FsUsageStore(storage.keys), policies: new FsPolicyStore(storage.keys), history: storage.history };
});

// A table and bucket per test: totals are exact, and the summary starts absent.
usageContract('DynamoDB Local + s3rver', async () => {
  const names = resourceNames(`usage-${randomBytes(4).toString('hex')}`);
  await createLocalResources(local.aws.dynamo, local.aws.s3, names);
  const { dynamo, s3 } = local.aws;
  return {
    blobs: new S3BlobStore({ s3, bucket: names.bucket }),
    metadata: new DynamoDbMetadataStore({ dynamo, table: names.table, bodies: new S3ManifestBodyStore({ s3, bucket: names.bucket }) }),
    usage: new DynamoDbUsageStore({ dynamo, table: names.table }),
    policies: new DynamoDbPolicyStore({ dynamo, table: names.table }),
    history: new DynamoDbTagHistoryStore({ dynamo, table: names.table }),
    pricePerGbMonthUsd: S3_STANDARD_USD_PER_GB_MONTH,
  };
});

describe('DynamoDB usage summaries', () => {
  const summary = (computedAt: number, names: string[]): UsageSummary => ({
    computedAt,
    repositories: names.map((name) => ({ name, storedBytes: computedAt, uniqueBytes: computedAt, sharedBytes: 0, manifestBytes: 0, tags: 1, manifests: 1 })),
    shared: [],
  });
  const partsOf = async (table: string) =>
    (
      await local.aws.dynamo.send(
        new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :pk AND begins_with(sk, :part)', ExpressionAttributeValues: { ':pk': { S: 'USAGE' }, ':part': { S: 'PART#' } } }),
      )
    ).Items ?? [];

  it('keeps the newest computation when an older one is written after it, and spans many parts', async () => {
    const names = resourceNames(`summaries-${randomBytes(4).toString('hex')}`);
    await createLocalResources(local.aws.dynamo, local.aws.s3, names);
    const summaries = new DynamoDbUsageStore({ dynamo: local.aws.dynamo, table: names.table }).summaries;
    // 20,000 repositories with random names: more than one 350 KB part once gzip'd.
    const many = summary(2, Array.from({ length: 20_000 }, () => `team/${randomBytes(32).toString('hex')}`));
    await summaries.write(many);
    expect((await partsOf(names.table)).length).toBeGreaterThan(1);
    await summaries.write(summary(1, ['stale/app']));
    expect(await summaries.read()).toEqual(many);
    // The older computation's parts are gone; the newer one's stay.
    expect((await partsOf(names.table)).every((item) => item.sk!.S!.startsWith(`PART#${String(2).padStart(15, '0')}-`))).toBe(true);
  });

  it('deletes generations older than the one it replaces, and keeps that one for readers mid-read', async () => {
    const names = resourceNames(`summaries-${randomBytes(4).toString('hex')}`);
    await createLocalResources(local.aws.dynamo, local.aws.s3, names);
    const summaries = new DynamoDbUsageStore({ dynamo: local.aws.dynamo, table: names.table }).summaries;
    for (const at of [1, 2, 3]) await summaries.write(summary(at, [`app-${at}`]));
    const generations = new Set((await partsOf(names.table)).map((item) => Number(item.sk!.S!.slice('PART#'.length, 'PART#'.length + 15))));
    expect([...generations].sort()).toEqual([2, 3]);
    expect((await summaries.read())?.repositories.map((repository) => repository.name)).toEqual(['app-3']);
  });
});
