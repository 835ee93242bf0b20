import { startAwsLocal } from '../lib/dev/aws-local.ts';
import { bytesOf } from '../lib/registry/bytes.ts';
import { runGc } from '../lib/registry/gc/run-gc.ts';
import { Registry } from '../lib/registry/registry.ts';
import { awsGcStorage } from '../lib/storage/aws-gc-storage.ts';
import { createLocalResources, resourceNames } from '../lib/storage/aws-resources.ts';
import { imageManifest, randomBlob } from '../test/support/builders.ts';

/**
 * `npm run bench -- --gc [--images N]`: one garbage-collection run on DynamoDB Local + s3rver over N images (a config
 * and a layer each, in 10 repositories), half of them deleted: the run's time and its requests per operation, then a
 * dry run of the same (scan only). DynamoDB Local on this machine, not DynamoDB: requests are the portable figure.
 */
export async function runGcBench(images: number): Promise<void> {
  const aws = await startAwsLocal();
  try {
    const names = resourceNames('bench-gc');
    await createLocalResources(aws.dynamo, aws.s3, names);
    const dynamoCalls = new Map<string, number>();
    aws.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        dynamoCalls.set(context.commandName ?? '?', (dynamoCalls.get(context.commandName ?? '?') ?? 0) + 1);
        return next(args);
      },
      { step: 'initialize', name: 'bench-gc-count' },
    );
    // One machine, one clock: no tolerance needed.
    const { metadata, blobs } = awsGcStorage({ dynamo: aws.dynamo, s3: aws.s3, ...names, clockToleranceMs: 5 });
    const registry = new Registry({ metadata, blobs });
    for (let index = 0; index < images; index++) {
      const [config, layer] = [randomBlob(64), randomBlob(1024)];
      const name = `repo-${index % 10}`;
      for (const blob of [config, layer]) await registry.uploads.monolithic(name, blob.digest, bytesOf(blob.bytes), blob.size);
      const manifest = imageManifest(config, [layer]);
      await registry.putManifest(name, `t${index}`, bytesOf(manifest.bytes), manifest.mediaType);
      if (index % 2 === 0) await registry.deleteManifest(name, manifest.digest);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    dynamoCalls.clear();
    aws.s3Calls.reset();
    let started = performance.now();
    const report = await runGc({ metadata, blobs, graceMs: 0 });
    const runMs = Math.round(performance.now() - started);
    const calls = { dynamo: Object.fromEntries(dynamoCalls), s3: aws.s3Calls.snapshot() };
    started = performance.now();
    const dry = await runGc({ metadata, blobs, graceMs: 0, dryRun: true });
    const dryMs = Math.round(performance.now() - started);
    console.log(JSON.stringify({ images, run: { ms: runMs, scanned: report.scanned, removals: report.objectsDeleted, calls }, dryRunAfter: { ms: dryMs, scanned: dry.scanned } }, null, 2));
  } finally {
    await aws.stop();
  }
}
