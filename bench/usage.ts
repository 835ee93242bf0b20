import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { startAwsLocal } from '../lib/dev/aws-local.ts';
import { MediaType } from '../lib/registry/manifest.ts';
import { UsageReports } from '../lib/registry/usage-reports.ts';
import { createLocalResources, resourceNames } from '../lib/storage/aws-resources.ts';
import { DynamoDbMetadataStore } from '../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { DynamoDbUsageStore } from '../lib/storage/dynamodb/dynamodb-usage-store.ts';

/**
 * `npm run bench:usage -- --repositories N --layers L`: on DynamoDB Local, side by side, what the usage features cost:
 * computing the registry-wide summary (`ocireg usage --table`, the gc function), answering `GET /v2/_ocireg/usage`
 * from the stored summary (what the HTTP API does per request), and one quota check (a Query of one repository's
 * links). Metadata only (no blob bytes: usage never reads them). Every repository shares one base layer.
 */
const { values } = parseArgs({ options: { repositories: { type: 'string', default: '200' }, layers: { type: 'string', default: '5' }, runs: { type: 'string', default: '5' } } });
const repositories = Number(values.repositories);
const layers = Number(values.layers);
const runs = Number(values.runs);

const digest = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const aws = await startAwsLocal();
try {
  const names = resourceNames(`bench-usage-${randomBytes(3).toString('hex')}`);
  await createLocalResources(aws.dynamo, aws.s3, names);
  const metadata = new DynamoDbMetadataStore({ dynamo: aws.dynamo, table: names.table });
  const usage = new DynamoDbUsageStore({ dynamo: aws.dynamo, table: names.table });
  const reports = new UsageReports({ metadata, usage, policies: async () => [] });

  const base = { digest: digest(Buffer.from('base')), size: 30_000_000, location: 'blobs/base' };
  await metadata.putBlob(base);
  const filled = performance.now();
  let next = 0;
  const fill = async () => {
    while (next < repositories) {
      const name = `bench/repo-${String(next++).padStart(5, '0')}`;
      const own = Array.from({ length: layers - 1 }, () => {
        const bytes = randomBytes(16);
        return { digest: digest(bytes), size: 1_000_000 + bytes[0]!, location: `blobs/${bytes.toString('hex')}` };
      });
      const config = { digest: digest(randomBytes(16)), size: 1500, location: 'blobs/config' };
      for (const record of [config, ...own]) await metadata.putBlob(record);
      for (const record of [base, config, ...own]) await metadata.linkBlob(name, record);
      const content = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
          layers: [base, ...own].map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size })),
        }),
      );
      await metadata.putManifest(name, { digest: digest(content), mediaType: MediaType.ociManifest, content }, ['v1', 'latest'], {
        references: { blobs: [base.digest, config.digest, ...own.map((layer) => layer.digest)], manifests: [] },
      });
    }
  };
  await Promise.all(Array.from({ length: 8 }, fill));
  process.stdout.write(`filled ${repositories} repositories × ${layers} layers in ${((performance.now() - filled) / 1000).toFixed(1)} s\n`);

  const median = (samples: number[]) => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;
  const time = async (run: () => Promise<unknown>) => {
    const samples: number[] = [];
    for (let at = 0; at < runs; at++) {
      const started = performance.now();
      await run();
      samples.push(performance.now() - started);
    }
    return median(samples);
  };
  const compute = await time(() => reports.compute());
  const served = await time(() => reports.report());
  const quota = await time(() => usage.repositoryBlobs('bench/repo-00000'));
  const report = await reports.report();
  process.stdout.write(
    [
      `DynamoDB Local, ${repositories} repositories, ${layers} layers each, median of ${runs}:`,
      `  compute and store the summary (ocireg usage --table, gc function): ${compute.toFixed(0)} ms`,
      `  GET /v2/_ocireg/usage from the stored summary:                     ${served.toFixed(1)} ms  (${(compute / served).toFixed(0)}× less)`,
      `  one quota check (Query of one repository's ${layers} links):           ${quota.toFixed(1)} ms`,
      `  report: ${report.repositories.length} repositories, totalBytes ${report.totalBytes}`,
      '',
    ].join('\n'),
  );
} finally {
  await aws.stop();
}
