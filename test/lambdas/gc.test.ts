import { Logger } from '@aws-lambda-powertools/logger';
import { describe, expect, it } from 'vitest';
import { createGcHandler, DEADLINE_MARGIN_MS, gcConfigFromEnv } from '../../lambdas/gc.ts';
import type { GcRemoval } from '../../lib/registry/gc/gc-report.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { awsGcStorage } from '../../lib/storage/aws-gc-storage.ts';
import { DynamoDbPolicyStore } from '../../lib/storage/dynamodb/dynamodb-policy-store.ts';
import { DynamoDbTagHistoryStore } from '../../lib/storage/dynamodb/dynamodb-tag-history-store.ts';
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

  it('applies the retention rules of the policies in the table before the sweep, and writes the expired tag in its history', async () => {
    // Prepare: two tags pushed in order, a policy keeping the newest one
    const { dynamo, s3 } = local.aws;
    const { metadata, blobs } = awsGcStorage({ dynamo, s3, ...local.names, clockToleranceMs: TOLERANCE_MS });
    const history = new DynamoDbTagHistoryStore({ dynamo, table: local.names.table });
    const registry = new Registry({ metadata, blobs, history });
    const [old, newest] = [image('retained/app'), image('retained/app')];
    await push(registry, old, 'old');
    await new Promise((resolve) => setTimeout(resolve, 5));
    await push(registry, newest, 'newest');
    await new DynamoDbPolicyStore({ dynamo, table: local.names.table }).putPolicy({ glob: 'retained/*', keepLast: 1, protect: [], immutable: false, mutableTags: [], updatedAt: Date.now() });
    await settle(metadata);
    const removals: GcRemoval[] = [];
    // Act
    await handlerWith([], removals)({}, { getRemainingTimeInMillis: () => 900_000 });
    // Assess: the tag and its manifest, then the blobs only it used
    expect(removals).toContainEqual({ kind: 'tag', name: 'retained/app', tag: 'old', digest: old.manifest.digest, reason: 'not among the 1 most recently pushed tags' });
    expect(removals).toContainEqual({ kind: 'manifest', name: 'retained/app', digest: old.manifest.digest, bytes: old.manifest.bytes.byteLength, reason: 'its tags expired' });
    expect(removals).toEqual(expect.arrayContaining(old.blobs.map((blob) => ({ kind: 'blob', digest: blob.digest, bytes: blob.size }))));
    expect((await history.list('retained/app', 'old'))[0]).toMatchObject({ action: 'deleted', previous: old.manifest.digest, actor: { subject: 'gc' }, reason: 'removed by retention: not among the 1 most recently pushed tags' });
    await expect(registry.getManifest('retained/app', 'old')).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    await expectPullsIdentical(registry, newest, 'newest');
  });

  it('names the missing or wrong variable in its configuration error', () => {
    expect(() => gcConfigFromEnv({ BUCKET_NAME: 'b' })).toThrow(/TABLE_NAME is not set/);
    expect(() => gcConfigFromEnv({ TABLE_NAME: 't', BUCKET_NAME: 'b', GC_GRACE_MS: '1d' })).toThrow(/GC_GRACE_MS must be a whole number/);
    expect(gcConfigFromEnv({ TABLE_NAME: 't', BUCKET_NAME: 'b' })).toEqual({ table: 't', bucket: 'b', graceMs: 24 * 60 * 60 * 1000 });
  });
});
