import { Logger } from '@aws-lambda-powertools/logger';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { SERVICE_NAME } from '../lib/auth/service-name.ts';
import { DEFAULT_GRACE_MS } from '../lib/registry/gc/collector.ts';
import type { GcRemoval, GcReport } from '../lib/registry/gc/gc-report.ts';
import { runGc } from '../lib/registry/gc/run-gc.ts';
import { StoreRetentionPlanner } from '../lib/registry/retention-planner.ts';
import { TagVersions } from '../lib/registry/tag-versions.ts';
import { gcSummary } from '../lib/server/local-gc.ts';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { createDynamoDbClient, createEventBridgeClient, createS3Client } from '../lib/storage/aws-clients.ts';
import { EventBridgeEventSink } from '../lib/storage/eventbridge/eventbridge-event-sink.ts';
import { awsGcStorage } from '../lib/storage/aws-gc-storage.ts';
import { DynamoDbPolicyStore } from '../lib/storage/dynamodb/dynamodb-policy-store.ts';
import { DynamoDbTagHistoryStore } from '../lib/storage/dynamodb/dynamodb-tag-history-store.ts';
import { gcMetricsLine } from './gc-metrics.ts';
import { UsageReports } from '../lib/registry/usage-reports.ts';
import { DynamoDbUsageStore } from '../lib/storage/dynamodb/dynamodb-usage-store.ts';
import { errorMessage, asError } from '../lib/registry/errors.ts';

/**
 * The scheduled garbage-collection function (lib/infra/registry-gc.ts runs it daily by default): the same runGc as
 * `ocireg gc` (the storage policies' retention rules, then the sweep), over the deployed table and bucket, while
 * the registry function serves pushes and pulls (the conditional writes of lib/storage/dynamodb keep them safe:
 * lib/registry/gc/collector.ts draws the race).
 *
 * A run stops sweeping {@link DEADLINE_MARGIN_MS} before the function's timeout and reports `complete: false`; the
 * next scheduled run starts a new scan and continues with what is left. Each run logs one JSON summary line and
 * one Embedded Metric Format line (lambdas/gc-metrics.ts).
 *
 * Environment (set by lib/infra/registry-gc.ts):
 * | variable         | meaning                                                            |
 * | ---------------- | ------------------------------------------------------------------ |
 * | `TABLE_NAME`     | the metadata table (required)                                      |
 * | `BUCKET_NAME`    | the blob bucket (required)                                         |
 * | `GC_GRACE_MS`    | nothing younger is collected, ms (default 24 h)                    |
 * | `EVENT_BUS_NAME` | GC events (docs/events.md) go to this bus; none when unset         |
 */
export interface GcFunctionConfig {
  table: string;
  bucket: string;
  graceMs: number;
  /** GC events go to this EventBridge bus; none when absent. */
  eventBus?: string;
}

/** Time left for the last sweep step, the report and the log lines after the deadline. */
export const DEADLINE_MARGIN_MS = 60_000;

export function gcConfigFromEnv(env: Record<string, string | undefined> = process.env): GcFunctionConfig {
  const required = (name: string): string => {
    const value = env[name];
    if (!value) throw new Error(`${name} is not set: the garbage-collection function needs it (lib/infra/registry-gc.ts sets it)`);
    return value;
  };
  const grace = env.GC_GRACE_MS === undefined ? DEFAULT_GRACE_MS : Number(env.GC_GRACE_MS);
  if (!Number.isSafeInteger(grace) || grace < 0) throw new Error(`GC_GRACE_MS must be a whole number of milliseconds ≥ 0, got ${JSON.stringify(env.GC_GRACE_MS)}`);
  const config: GcFunctionConfig = { table: required('TABLE_NAME'), bucket: required('BUCKET_NAME'), graceMs: grace };
  if (env.EVENT_BUS_NAME) config.eventBus = env.EVENT_BUS_NAME;
  return config;
}

export interface GcHandlerOptions {
  clients?: { dynamo?: DynamoDBClient; s3?: S3Client; events?: EventBridgeClient };
  logger?: Logger;
  /** Each removal as it happens (registry events, tag history). Its failures must not stop the run. */
  onRemoved?: (removal: GcRemoval) => void;
  /** @default AWS_CLOCK_TOLERANCE_MS */
  clockToleranceMs?: number;
  /** Where the metric line goes. @default stdout, which Lambda sends to CloudWatch Logs */
  writeMetrics?: (line: string) => void;
}

/** What the scheduler gets back (and the console shows for a test invocation): the summary. */
export type GcFunctionResult = Record<string, unknown>;

/** The handler over `config`: one collection per invocation, whatever the event (the schedule sends an empty one). */
export function createGcHandler(config: GcFunctionConfig, options: GcHandlerOptions = {}): (event: unknown, context: Pick<Context, 'getRemainingTimeInMillis'>) => Promise<GcFunctionResult> {
  const log = options.logger ?? logger;
  const dynamo = options.clients?.dynamo ?? createDynamoDbClient();
  const storage = awsGcStorage({
    dynamo,
    s3: options.clients?.s3 ?? createS3Client(),
    table: config.table,
    bucket: config.bucket,
    ...(options.clockToleranceMs !== undefined ? { clockToleranceMs: options.clockToleranceMs } : {}),
  });
  // The policies' retention rules run before the sweep (lib/registry/retention-planner.ts); a tag they expire gets
  // its tag-history entry (actor `gc`), written before the function returns.
  const history = new DynamoDbTagHistoryStore({ dynamo, table: config.table });
  const policies = new DynamoDbPolicyStore({ dynamo, table: config.table });
  const plan = new StoreRetentionPlanner({ metadata: storage.metadata, policies, history });
  // Every removal of a real run becomes a GC event on the bus (one PutEvents each), when the stack has one.
  const events = config.eventBus !== undefined ? new EventBridgeEventSink({ client: options.clients?.events ?? createEventBridgeClient(), bus: config.eventBus }) : undefined;
  const versions = new TagVersions({
    metadata: storage.metadata,
    history,
    ...(events ? { events, onEventFailure: (error: unknown) => log.error({ message: 'event not sent', error: errorMessage(error) }) } : {}),
  });
  const usage = new UsageReports({ metadata: storage.metadata, usage: new DynamoDbUsageStore({ dynamo, table: config.table }), policies: () => policies.listPolicies() });
  const writeMetrics = options.writeMetrics ?? ((line: string) => process.stdout.write(`${line}\n`));
  return async (_event, context) => {
    const recorded: Promise<void>[] = [];
    const report: GcReport = await runGc({
      ...storage,
      plan,
      graceMs: config.graceMs,
      deadline: Date.now() + context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS,
      onRemoved: (removal) => {
        options.onRemoved?.(removal);
        if (removal.kind === 'tag' || events) recorded.push(versions.recordCollected(removal).catch((error: unknown) => log.warn({ message: 'gc removal not recorded', ...removal }, asError(error))));
      },
    });
    await Promise.all(recorded);
    const summary = gcSummary(report);
    log.info({ message: 'gc', ...summary });
    if (report.complete) await recordUsage(usage, log);
    writeMetrics(JSON.stringify(gcMetricsLine(report, SERVICE_NAME, Date.now())));
    return summary;
  };
}

/**
 * After a complete run, the usage summary that `GET /v2/_ocireg/usage` serves is computed again and stored
 * (lib/registry/usage-reports.ts): the HTTP API never scans the table, so its figures are as fresh as the last
 * collection (daily by default) or `ocireg usage --stack`. An incomplete run leaves its time to the next one. A
 * failure here is logged and does not fail the collection.
 */
async function recordUsage(usage: UsageReports, log: Logger): Promise<void> {
  const started = Date.now();
  try {
    const computed = await usage.compute();
    const totalBytes = usage.reportOf(computed, []).totalBytes;
    log.info({ message: 'usage', repositories: computed.repositories.length, totalBytes, durationMs: Date.now() - started });
  } catch (error) {
    log.error({ message: 'usage summary not stored', error: errorMessage(error) });
  }
}

/** One logger per execution environment; POWERTOOLS_SERVICE_NAME and POWERTOOLS_LOG_LEVEL configure it. */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME });

let deployed: ReturnType<typeof createGcHandler> | undefined;

/** The deployed handler, built from the environment at the first invocation (importing this module starts nothing). */
export async function handler(event: unknown, context: Context): Promise<GcFunctionResult> {
  deployed ??= createGcHandler(gcConfigFromEnv());
  return deployed(event, context);
}
