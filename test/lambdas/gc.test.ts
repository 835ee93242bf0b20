import { Logger } from '@aws-lambda-powertools/logger';
import { describe, expect, it } from 'vitest';
import { createGcHandler, DEADLINE_MARGIN_MS, gcConfigFromEnv } from '../../lambdas/gc.ts';
import type { GcRemoval } from '../../lib/registry/gc/gc-report.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { DynamoDbTagHistoryStore } from '../../lib/storage/dynamodb/dynamodb-tag-history-store.ts';
import { DynamoDbPolicyStore } from '../../lib/storage/dynamodb/dynamodb-policy-store.ts';
import { awsGcStorage } from '../../lib/storage/aws-gc-storage.ts';
import { useLocalBackends } from '../support/local-backends.ts';
import { expectPullsIdentical, image, push, settle } from '../registry/gc.contract.ts';

const local = useLocalBackends('ocireg-gc-fn');
const TOLERANCE_MS = 5;
const silent = new Logger({ logLevel: 'SILENT' });

/** A deleted image and a kept one, pushed through the registry over the same table and bucket. */
async function deletedAndKept(label: string) {
  const { metadata, blobs } = awsGcStorage({ dynamo: local.aws.dynamo, s3: local.aws.s3, ...local.names, clockToleranceMs: TOLERANCE_MS });
  const registry = new Registry({ metadata, blobs });
  const [gone, kept] = [image(`${label}/gone`), image(`${label}/kept`)];
  await push(registry, gone);
  await push(registry, kept);
  await registry.deleteManifest(gone.name, gone.manifest.digest);
  await settle(metadata);
  return { registry, metadata, gone, kept };
}

function handlerWith(lines: string[], removals: GcRemoval[] = []) {
  return createGcHandler(
    { ...local.names, graceMs: 0 },
    { clients: local.aws, logger: silent, clockToleranceMs: TOLERANCE_MS, writeMetrics: (line) => lines.push(line), onRemoved: (removal) => removals.push(removal) },
  );
}

describe('scheduled garbage-collection function', () => {
  it("collects a deleted image's blobs, reports each removal, returns the summary and writes one EMF metric line", async () => {
    // Prepare
    const { registry, metadata, gone, kept } = await deletedAndKept('fn');
    const lines: string[] = [];
    const removals: GcRemoval[] = [];
    // Act
    const summary = await handlerWith(lines, removals)({}, { getRemainingTimeInMillis: () => 900_000 });
    // Assess
    expect(summary).toMatchObject({ msg: 'gc', complete: true, dryRun: false });
    expect(removals).toEqual(expect.arrayContaining(gone.blobs.map((blob) => ({ kind: 'blob', digest: blob.digest, bytes: blob.size }))));
    expect(await metadata.getBlob(gone.blobs[0]!.digest)).toBeUndefined();
    expect(lines).toHaveLength(1);
    const metrics = JSON.parse(lines[0]!);
    expect(metrics._aws.CloudWatchMetrics[0].Metrics.map((metric: { Name: string }) => metric.Name)).toEqual(['GcBytesFreed', 'GcObjectsDeleted', 'GcDuration', 'GcIncomplete']);
    expect(metrics.GcBytesFreed).toBe(summary.bytesFreed);
    expect(metrics.GcObjectsDeleted).toBe(removals.length);
    expect(metrics.GcIncomplete).toBe(0);
    await expectPullsIdentical(registry, kept);
  });

  it('sweeps nothing and reports an incomplete run when the deadline comes before the scan ends', async () => {
    const { metadata, gone } = await deletedAndKept('late');
    const lines: string[] = [];
    const summary = await handlerWith(lines)({}, { getRemainingTimeInMillis: () => DEADLINE_MARGIN_MS - 1 });
    expect(summary).toMatchObject({ complete: false, objectsDeleted: 0 });
    expect(JSON.parse(lines[0]!).GcIncomplete).toBe(1);
    expect(await metadata.getBlob(gone.blobs[0]!.digest)).toBeDefined();
  });

  it("applies the table's retention rules before the sweep: keep-last 1 expires the older tag, and its blobs go", async () => {
    // Prepare: a policy on its own repository glob, two images pushed one after the other
    const { metadata, blobs } = awsGcStorage({ dynamo: local.aws.dynamo, s3: local.aws.s3, ...local.names, clockToleranceMs: TOLERANCE_MS });
    // The tag history is where push times come from, as on the deployed function.
    const registry = new Registry({ metadata, blobs, history: new DynamoDbTagHistoryStore({ dynamo: local.aws.dynamo, table: local.names.table }) });
    await new DynamoDbPolicyStore({ dynamo: local.aws.dynamo, table: local.names.table }).putPolicy({ glob: 'kept-one/**', keepLast: 1, protect: [], immutable: false, mutableTags: [], updatedAt: Date.now() });
    const [older, newer] = [image('kept-one/app'), image('kept-one/app')];
    await push(registry, older, 'v1');
    await push(registry, newer, 'v2');
    await settle(metadata);
    const removals: GcRemoval[] = [];
    // Act
    await handlerWith([], removals)({}, { getRemainingTimeInMillis: () => 900_000 });
    // Assess
    expect(removals).toContainEqual(expect.objectContaining({ kind: 'tag', name: 'kept-one/app', tag: 'v1' }));
    expect(removals).toContainEqual({ kind: 'blob', digest: older.blobs[1]!.digest, bytes: older.blobs[1]!.size });
    await expect(registry.getManifest('kept-one/app', 'v1')).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    await expectPullsIdentical(registry, newer, 'v2');
  });

  it('names the missing or wrong variable in its configuration error', () => {
    expect(() => gcConfigFromEnv({ BUCKET_NAME: 'b' })).toThrow(/TABLE_NAME is not set/);
    expect(() => gcConfigFromEnv({ TABLE_NAME: 't', BUCKET_NAME: 'b', GC_GRACE_MS: '1d' })).toThrow(/GC_GRACE_MS must be a whole number/);
    expect(gcConfigFromEnv({ TABLE_NAME: 't', BUCKET_NAME: 'b' })).toEqual({ table: 't', bucket: 'b', graceMs: 24 * 60 * 60 * 1000 });
  });
});
