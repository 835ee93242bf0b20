import { startAwsLocal } from '../lib/dev/aws-local.ts';
import { bytesOf } from '../lib/registry/bytes.ts';
import { DEFAULT_GC_CONCURRENCY } from '../lib/registry/gc/collector.ts';
import { runGc } from '../lib/registry/gc/run-gc.ts';
import { Registry } from '../lib/registry/registry.ts';
import { awsGcStorage } from '../lib/storage/aws-gc-storage.ts';
import { createLocalResources, resourceNames } from '../lib/storage/aws-resources.ts';
import { imageManifest, randomBlob } from '../test/support/builders.ts';

/**
 * `npm run bench -- --gc [--images N]`: garbage collection on DynamoDB Local + s3rver over N images (a config and a
 * layer each, in 10 repositories), half of them deleted, removing one item at a time and DEFAULT_GC_CONCURRENCY at a
 * time: each run's time and requests per operation, a dry run after it (scan only), and the ratio. DynamoDB Local on this machine, not DynamoDB: requests are the portable figure.
 */
export async function runGcBench(images: number): Promise<void> {
  const aws = await startAwsLocal();
  try {
    const dynamoCalls = new Map<string, number>();
    aws.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        dynamoCalls.set(context.commandName ?? '?', (dynamoCalls.get(context.commandName ?? '?') ?? 0) + 1);
        return next(args);
      },
      { step: 'initialize', name: 'bench-gc-count' },
    );
    // The same registry twice, in tables and buckets of their own: one run removes one item at a time, the other
    // DEFAULT_GC_CONCURRENCY at a time. Side by side in one process on one DynamoDB Local.
    const results: Record<string, unknown>[] = [];
    for (const concurrency of [1, DEFAULT_GC_CONCURRENCY]) {
      const names = resourceNames(`bench-gc-${concurrency}`);
      await createLocalResources(aws.dynamo, aws.s3, names);
      // One machine, one clock: no tolerance needed.
      const { metadata, blobs } = awsGcStorage({ dynamo: aws.dynamo, s3: aws.s3, ...names, clockToleranceMs: 5 });
      await fill(new Registry({ metadata, blobs }), images);
      await new Promise((resolve) => setTimeout(resolve, 20));
      dynamoCalls.clear();
      aws.s3Calls.reset();
      let started = performance.now();
      const report = await runGc({ metadata, blobs, graceMs: 0, concurrency });
      const runMs = Math.round(performance.now() - started);
      const calls = { dynamo: Object.fromEntries(dynamoCalls), s3: aws.s3Calls.snapshot() };
      started = performance.now();
      const dry = await runGc({ metadata, blobs, graceMs: 0, dryRun: true });
      const dryMs = Math.round(performance.now() - started);
      const removalsPerSecond = Math.round(report.objectsDeleted / (runMs / 1000));
      results.push({ concurrency, run: { ms: runMs, scanned: report.scanned, removals: report.objectsDeleted, removalsPerSecond, calls }, dryRunAfter: { ms: dryMs, scanned: dry.scanned } });
    }
    const [one, many] = results as Array<{ run: { ms: number } }>;
    console.log(JSON.stringify({ images, runs: results, speedup: Number((one!.run.ms / many!.run.ms).toFixed(1)) }, null, 2));
  } finally {
    await aws.stop();
  }
}

/** N images (a config and a layer each) in 10 repositories, every other one deleted. */
async function fill(registry: Registry, images: number): Promise<void> {
  for (let index = 0; index < images; index++) {
    const [config, layer] = [randomBlob(64), randomBlob(1024)];
    const name = `repo-${index % 10}`;
    for (const blob of [config, layer]) await registry.uploads.monolithic(name, blob.digest, bytesOf(blob.bytes), blob.size);
    const manifest = imageManifest(config, [layer]);
    await registry.putManifest(name, `t${index}`, bytesOf(manifest.bytes), manifest.mediaType);
    if (index % 2 === 0) await registry.deleteManifest(name, manifest.digest);
  }
}
