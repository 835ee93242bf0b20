import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { countAwsCalls, renderCountsTable, type CountedRequest } from './aws-counts.ts';
import { measureLambdaBundle, type BundleReport } from './lambda-bundle.ts';

/**
 * `npm run bench -- --aws`: the AWS path, counted (deterministic, no timing but the bundle's import): SDK calls and
 * DynamoDB capacity per request type (bench/aws-counts.ts), the Lambda bundle's size and import time
 * (bench/lambda-bundle.ts). Writes bench/aws-report.json and bench/aws-report.md; docs/cost.md turns them into dollars.
 */
export async function runAwsBench(outDir: string, workDir: string): Promise<void> {
  process.stdout.write('counting SDK calls per request on the emulated AWS path (DynamoDB Local, s3rver)…\n');
  const counts = await countAwsCalls();
  process.stdout.write('bundling the Lambda handler as the CDK stack does and timing its import (10 fresh processes)…\n');
  const bundle = await measureLambdaBundle('lambdas/registry-api.ts', join(workDir, 'lambda'));
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'aws-report.json'), `${JSON.stringify({ counts, bundles: [bundle] }, null, 2)}\n`);
  const markdown = renderAwsReport(counts, [bundle], new Date().toISOString().slice(0, 10));
  await writeFile(join(outDir, 'aws-report.md'), markdown);
  process.stdout.write(`\n${markdown}\nwrote ${join(outDir, 'aws-report.json')}, aws-report.md\n`);
}

export function renderAwsReport(counts: CountedRequest[], bundles: BundleReport[], date: string): string {
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
  const ms = (value: number) => value.toFixed(0);
  const lines = [
    '# ocireg on AWS: calls per request and the Lambda bundle',
    '',
    `${date} · \`npm run bench -- --aws\` · emulated HTTP API → production handler → DynamoDB Local + s3rver`,
    '',
    'Each request sent once, alone; its SDK commands counted by a middleware on both clients (retries not counted);',
    'DynamoDB capacity as DynamoDB Local reports it (`ReturnConsumedCapacity: TOTAL`). Every row is also one API',
    'Gateway request and one Lambda invocation. A blob GET adds one S3 GET by the client on the presigned URL (not',
    'an SDK call of the function; presigning is local).',
    '',
    renderCountsTable(counts),
    '',
    '| Lambda bundle | minified | deflated (≈ zip) | import, median (min–max) | process start → ready, median |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...bundles.map(
      (b) =>
        `| ${b.entry} | ${kib(b.bytes)} | ${kib(b.deflatedBytes)} | ${ms(b.importMs.median)} ms (${ms(b.importMs.min)}–${ms(b.importMs.max)}) | ${ms(b.processToReadyMs.median)} ms |`,
    ),
    '',
    `Largest contributors to ${bundles[0]?.entry ?? 'the bundle'}: ${bundles[0]?.largestInputs.map((input) => `${input.path} ${kib(input.bytes)}`).join(', ') ?? ''}.`,
    '',
    `Import time measured with node ${process.versions.node} on ${process.arch} (the function runs Node 24 on arm64); ${bundles[0]?.importMs.n ?? 0} fresh processes.`,
    '',
  ];
  return lines.join('\n');
}
