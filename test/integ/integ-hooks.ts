#!/usr/bin/env node
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { AbortMultipartUploadCommand, DeleteObjectsCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { STACK_OUTPUTS } from '../../lib/infra/registry-stack.ts';
import { createCloudFormationClient, createS3Client } from '../../lib/storage/aws-clients.ts';
import { INTEG_STACK_NAME } from './integ.registry.ts';

/**
 * integ-runner's hooks for test/integ/integ.registry.ts, run with the caller's AWS credentials from test/integ:
 * - `doctor` (postDeploy): makes an admin and a token with the admin CLI (`--stack`), runs `ocireg doctor --json`
 *   against the deployed URL, writes the report to test/integ/doctor-report.json and fails when a row failed;
 * - `empty-bucket` (preDestroy): deletes every object and aborts every multipart upload, so CloudFormation can
 *   delete the bucket.
 */

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const CLI = join(ROOT, 'bin/ocireg.ts');

/** The stack's outputs; empty when the stack does not exist (its deploy failed before creating it). */
async function outputs(): Promise<Record<string, string>> {
  const cloudFormation = createCloudFormationClient();
  try {
    const described = await cloudFormation.send(new DescribeStacksCommand({ StackName: INTEG_STACK_NAME }));
    return Object.fromEntries((described.Stacks?.[0]?.Outputs ?? []).map((output) => [output.OutputKey ?? '', output.OutputValue ?? '']));
  } catch (error) {
    if ((error as Error).name === 'ValidationError' && /does not exist/.test((error as Error).message)) return {};
    throw error;
  } finally {
    cloudFormation.destroy();
  }
}

async function ocireg(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, ...args], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

async function doctor(): Promise<void> {
  const url = (await outputs())[STACK_OUTPUTS.url];
  if (!url) throw new Error(`stack ${INTEG_STACK_NAME} has no ${STACK_OUTPUTS.url} output: was it deployed?`);
  const user = `integ-${Date.now()}`;
  await ocireg(['users', 'add', user, '--admin', '--stack', INTEG_STACK_NAME]);
  const token = (await ocireg(['tokens', 'create', user, '--expires', '1d', '--stack', INTEG_STACK_NAME])).trim();
  const report = join(import.meta.dirname, 'doctor-report.json');
  const result = await run(process.execPath, [CLI, 'doctor', url, '--creds', `${user}:${token}`, '--json'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 }).then(
    ({ stdout }) => ({ ok: true, stdout }),
    (error: { stdout?: string; stderr?: string; code?: number }) => ({ ok: false, stdout: error.stdout ?? '', stderr: error.stderr ?? '', code: error.code }),
  );
  await writeFile(report, result.stdout);
  process.stderr.write(`ocireg doctor ${url}: ${result.ok ? 'every check passed' : 'FAILED'}; report: ${report}\n`);
  if (!result.ok) {
    process.stderr.write(result.stdout);
    throw new Error(`ocireg doctor failed against ${url}`);
  }
}

async function emptyBucket(): Promise<void> {
  const bucket = (await outputs())[STACK_OUTPUTS.bucket];
  if (!bucket) return;
  const s3 = createS3Client();
  try {
    await deleteAll(s3, bucket);
  } finally {
    s3.destroy();
  }
}

async function deleteAll(s3: S3Client, bucket: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ...(token ? { ContinuationToken: token } : {}) }));
    const keys = (page.Contents ?? []).flatMap((object) => (object.Key ? [{ Key: object.Key }] : []));
    if (keys.length > 0) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  for (const upload of uploads.Uploads ?? []) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key!, UploadId: upload.UploadId! }));
  }
}

const commands: Record<string, () => Promise<void>> = { doctor, 'empty-bucket': emptyBucket };
const command = commands[process.argv[2] ?? ''];
if (!command) {
  process.stderr.write(`usage: node integ-hooks.ts doctor|empty-bucket, got ${JSON.stringify(process.argv[2])}\n`);
  process.exit(2);
}
command().catch((error: unknown) => {
  process.stderr.write(`integ hook ${process.argv[2]}: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
