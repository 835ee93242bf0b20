import { access, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger, type LogItem } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll } from 'vitest';
import { startDevAws, type DevAws } from '../../bin/dev-aws.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../lib/dev/aws-local.ts';
import { DynamoDbMetadataStore } from '../../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { distributionRegistry, type DistributionRegistry } from './distribution-registry.ts';
import type { LayoutImage } from './images.ts';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from './registry-server.ts';
import { runOk, type RunResult } from './tools.ts';
import { upstreamFront, type UpstreamFront } from './upstream-front.ts';

/**
 * The registry a pull-through cache suite pulls through, on either backend, so one suite runs on both:
 * - `serve`: `ocireg serve` as a child process over a data dir (`--cache-revalidate`, rules with `--data-dir`);
 * - `dev:aws`: the emulated AWS deployment in this process (bin/dev-aws.ts: the production handler behind the
 *   emulated HTTP API, DynamoDB Local, the strict s3rver, Secrets Manager and the local Lambda running the copy
 *   function), rules and users administered with `--table` as against a deployed stack.
 * Rules are added with the real `ocireg cache add` before the first request, so no rule cache has to expire.
 */

export type PullCacheTargetKind = 'serve' | 'dev:aws';
export const PULL_CACHE_TARGETS: readonly PullCacheTargetKind[] = ['serve', 'dev:aws'];

export interface CacheRuleSpec {
  prefix: string;
  upstream: string;
  /** Stored with `--username U --password-stdin`. */
  credentials?: { username: string; password: string };
}

export interface PullCacheTargetOptions {
  /** `--cache-revalidate` / `cacheRevalidateSeconds`. */
  revalidateSeconds: number;
  /** dev:aws: blobs the upstream declares larger than this take the redirect + copy function path. @default 64 MiB */
  copyInRequestMaxBytes?: number;
  /** Docker token auth on the cache itself (`--auth`; dev:aws: identities in the table). */
  auth?: boolean;
  rules?: CacheRuleSpec[];
}

export interface PullCacheTarget {
  kind: PullCacheTargetKind;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** `127.0.0.1:PORT`, as image references spell it. */
  host: string;
  /** `ocireg …args` against this target's backend (`--data-dir D`, or `--table T` with the emulators' endpoints); fails the test on a non-zero exit. */
  ocireg(args: string[], input?: string): Promise<RunResult>;
  /** `ocireg cache add`; a running registry sees it within CACHE_RULES_TTL_MS. */
  addRule(rule: CacheRuleSpec): Promise<void>;
  /** The registry's log entries so far, each with `msg` (serve's JSON lines; the functions' Powertools entries). */
  lines(): Array<Record<string, unknown>>;
  /** Resolves once background work started so far has ended (dev:aws: the copy function's invocations). */
  settled(): Promise<void>;
  /** Whether a verified copy of the blob is stored (serve: its file in the data dir; dev:aws: its blob record). */
  hasBlob(digest: string): Promise<boolean>;
  /** The copy function's invocations so far (dev:aws); always empty on serve, which streams misses. */
  copyInvocations(): unknown[];
  stop(): Promise<void>;
}

export async function startPullCacheTarget(kind: PullCacheTargetKind, options: PullCacheTargetOptions): Promise<PullCacheTarget> {
  return kind === 'serve' ? startServeTarget(options) : startDevAwsTarget(options);
}

function ruleArgs(rule: CacheRuleSpec): { args: string[]; input?: string } {
  const args = ['cache', 'add', rule.prefix, rule.upstream];
  if (!rule.credentials) return { args };
  return { args: [...args, '--username', rule.credentials.username, '--password-stdin'], input: `${rule.credentials.password}\n` };
}

async function startServeTarget(options: PullCacheTargetOptions): Promise<PullCacheTarget> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ocireg-cache-target-'));
  const ocireg = (args: string[], input?: string) => runOk(process.execPath, [OCIREG_CLI, ...args, '--data-dir', dataDir], input === undefined ? {} : { input });
  const addRule = async (rule: CacheRuleSpec) => {
    const { args, input } = ruleArgs(rule);
    await ocireg(args, input);
  };
  let server: RegistryServer;
  try {
    for (const rule of options.rules ?? []) await addRule(rule);
    server = await startRegistryServer({ dataDir, serveArgs: ['--cache-revalidate', `${options.revalidateSeconds}s`, ...(options.auth ? ['--auth'] : [])] });
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    kind: 'serve',
    url: server.url,
    host: server.host,
    ocireg,
    addRule,
    lines: () => server.lines(),
    settled: async () => undefined,
    async hasBlob(digest) {
      // blobs/<alg>/<xx>/<hex>.<uploadId>: written under its final name only once verified.
      const [algorithm, hex] = digest.split(':') as [string, string];
      const dir = join(dataDir, 'blobs', algorithm, hex.slice(0, 2));
      const files = await access(dir).then(() => readdir(dir), () => [] as string[]);
      return files.some((file) => file.startsWith(`${hex}.`));
    },
    copyInvocations: () => [],
    async stop() {
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A Powertools Logger that keeps its entries instead of printing them (its documented extension point, printLog). */
class CapturingLogger extends Logger {
  readonly entries: Array<Record<string, unknown>> = [];

  protected override printLog(_logLevel: number, log: LogItem): void {
    const attributes = log.getAttributes() as Record<string, unknown>;
    this.entries.push({ msg: attributes.message, ...attributes });
  }
}

async function startDevAwsTarget(options: PullCacheTargetOptions): Promise<PullCacheTarget> {
  const logger = new CapturingLogger({ serviceName: 'ocireg-test', logLevel: 'INFO' });
  const dev: DevAws = await startDevAws({
    logger,
    cacheRevalidateSeconds: options.revalidateSeconds,
    ...(options.copyInRequestMaxBytes !== undefined ? { cacheCopyInRequestMaxBytes: options.copyInRequestMaxBytes } : {}),
    ...(options.auth ? { auth: true } : {}),
  });
  const env = {
    AWS_ENDPOINT_URL_DYNAMODB: dev.endpoints.dynamo,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: dev.endpoints.secretsManager,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_REGION: LOCAL_REGION,
  };
  const ocireg = (args: string[], input?: string) => runOk(process.execPath, [OCIREG_CLI, ...args, '--table', dev.names.table], { env, ...(input === undefined ? {} : { input }) });
  const addRule = async (rule: CacheRuleSpec) => {
    const { args, input } = ruleArgs(rule);
    await ocireg(args, input);
  };
  try {
    for (const rule of options.rules ?? []) await addRule(rule);
  } catch (error) {
    await dev.stop();
    throw error;
  }
  const metadata = new DynamoDbMetadataStore({ dynamo: dev.local.dynamo, table: dev.names.table });
  return {
    kind: 'dev:aws',
    url: dev.url,
    host: new URL(dev.url).host,
    ocireg,
    addRule,
    lines: () => logger.entries,
    settled: () => dev.lambda.idle(),
    hasBlob: async (digest) => (await metadata.getBlob(digest)) !== undefined,
    copyInvocations: () => dev.lambda.invocations.map((invocation) => invocation.payload),
    stop: () => dev.stop(),
  };
}

export interface HubCache {
  /** docker-registry of this describe alone (its tests may stop it, move its tags). */
  readonly upstream: DistributionRegistry;
  /** A recording loopback front for the upstream: the URL the rule names, and every request the cache sent. */
  readonly front: UpstreamFront;
  /** The target, with the rule `hub` → the front. */
  readonly cache: PullCacheTarget;
  /** `skopeo copy` of an image into the upstream as `name:tag`. */
  pushUpstream(image: LayoutImage, nameAndTag: string): Promise<void>;
}

/**
 * For one `describe`: in its beforeAll a docker-registry upstream in `dir()/upstream-<kind>` holding `image()` as
 * `library/app:1`, a recording front for it (test/support/upstream-front.ts) and a cache target of `kind` with the
 * rule `hub` → the front; all stopped in its afterAll. With the upstream stopped, the front stays and breaks off
 * every request, as an unreachable upstream does. Read the fields inside tests.
 */
export function useHubCache(
  kind: PullCacheTargetKind,
  options: { dir: () => string; image: () => LayoutImage | Promise<LayoutImage> } & Omit<PullCacheTargetOptions, 'rules'>,
): HubCache {
  const { dir, image, ...targetOptions } = options;
  const state = {
    async pushUpstream(from: LayoutImage, nameAndTag: string) {
      await runOk('skopeo', ['copy', '--dest-tls-verify=false', from.ref, `docker://${state.upstream.host}/${nameAndTag}`], { timeoutMs: 180_000 });
    },
  } as HubCache & { upstream: DistributionRegistry; front: UpstreamFront; cache: PullCacheTarget };
  beforeAll(async () => {
    state.upstream = await distributionRegistry(join(dir(), `upstream-${kind.replace(':', '-')}`));
    await state.upstream.start();
    await state.pushUpstream(await image(), 'library/app:1');
    state.front = await upstreamFront(state.upstream.host);
    state.cache = await startPullCacheTarget(kind, { ...targetOptions, rules: [{ prefix: 'hub', upstream: state.front.url }] });
  }, 240_000);
  afterAll(async () => {
    await state.cache?.stop();
    await state.front?.close();
    await state.upstream?.stop();
  }, 60_000);
  return state;
}
