import { Logger } from '@aws-lambda-powertools/logger';
import { describe, expect, it } from 'vitest';
import { createGcHandler } from '../../lambdas/gc.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { awsGcStorage } from '../../lib/storage/aws-gc-storage.ts';
import { DynamoDbUsageStore } from '../../lib/storage/dynamodb/dynamodb-usage-store.ts';
import { image, push, settle } from '../registry/gc.contract.ts';
import { useLocalBackends } from '../support/local-backends.ts';

const local = useLocalBackends('ocireg-gc-usage');

describe('scheduled garbage collection and the usage summary', () => {
  it('stores the usage summary after a complete run, without the deleted image, for GET /v2/_ocireg/usage to serve', async () => {
    // Prepare: one image deleted, one kept; no summary yet.
    const { metadata, blobs } = awsGcStorage({ dynamo: local.aws.dynamo, s3: local.aws.s3, ...local.names, clockToleranceMs: 5 });
    const registry = new Registry({ metadata, blobs });
    const [gone, kept] = [image('usage/gone'), image('usage/kept')];
    await push(registry, gone);
    await push(registry, kept);
    await registry.deleteManifest(gone.name, gone.manifest.digest);
    await settle(metadata);
    const summaries = new DynamoDbUsageStore({ dynamo: local.aws.dynamo, table: local.names.table }).summaries;
    expect(await summaries.read()).toBeUndefined();
    const logs: string[] = [];
    const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
    logger.info = ((entry: unknown) => void logs.push(JSON.stringify(entry))) as Logger['info'];
    // Act
    await createGcHandler({ ...local.names, graceMs: 0 }, { clients: local.aws, logger, clockToleranceMs: 5, writeMetrics: () => undefined })({}, { getRemainingTimeInMillis: () => 900_000 });
    // Assess
    const summary = await summaries.read();
    const keptBytes = kept.blobs.reduce((total, blob) => total + blob.size, 0);
    expect(summary?.repositories.find((repository) => repository.name === kept.name)).toMatchObject({ storedBytes: keptBytes, uniqueBytes: keptBytes, manifests: 1 });
    // The deleted image's links went with the sweep: its repository holds nothing any more.
    expect(summary?.repositories.find((repository) => repository.name === gone.name)?.storedBytes ?? 0).toBe(0);
    expect(logs.some((line) => line.includes('"message":"usage"'))).toBe(true);
  });
});
