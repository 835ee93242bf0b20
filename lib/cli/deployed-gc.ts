import { DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import type { GcReport } from '../registry/gc/gc-report.ts';
import { runGc } from '../registry/gc/run-gc.ts';
import { StoreRetentionPlanner } from '../registry/retention-planner.ts';
import { TagVersions } from '../registry/tag-versions.ts';
import type { GcRequest } from '../server/control-socket.ts';
import { errorMessage } from '../registry/errors.ts';
import { createCloudFormationClient, createDynamoDbClient, createEventBridgeClient, createS3Client } from '../storage/aws-clients.ts';
import { awsGcStorage } from '../storage/aws-gc-storage.ts';
import { DynamoDbPolicyStore } from '../storage/dynamodb/dynamodb-policy-store.ts';
import { DynamoDbTagHistoryStore } from '../storage/dynamodb/dynamodb-tag-history-store.ts';
import { EventBridgeEventSink } from '../storage/eventbridge/eventbridge-event-sink.ts';
import { UsageError } from './command.ts';

/** Stack outputs (lib/infra/registry-stack.ts STACK_OUTPUTS; not imported: the CLI bundle carries no CDK). */
const OUTPUTS = { table: 'TableName', bucket: 'BucketName', eventBus: 'EventBusName' } as const;

export interface DeployedGcTarget {
  stack?: string | undefined;
  table?: string | undefined;
  bucket?: string | undefined;
  region?: string | undefined;
  /** The stack's event bus (`--stack` reads it from the outputs): each removal becomes a GC event there. */
  eventBus?: string | undefined;
  /** @default AWS_CLOCK_TOLERANCE_MS: how far this machine's clock and the registry function's may be apart */
  clockToleranceMs?: number | undefined;
}

/**
 * `ocireg gc --stack/--table`: the same runGc as the scheduled function (retention rules, then the sweep), from the
 * administrator's machine with their AWS credentials, against the deployed table and bucket while the registry
 * function serves (the conditional writes keep pushes safe: lib/registry/gc/collector.ts). The S3 endpoint follows
 * `AWS_ENDPOINT_URL_S3` when set (an emulator: dev:aws), addressed path-style. With an event bus (the stack's
 * `EventBusName` output, or `--event-bus`), a real run sends the scheduled function's GC events, one PutEvents per
 * removal; a failed send is reported on stderr and does not stop the run.
 */
export async function runDeployedGc(target: DeployedGcTarget, request: GcRequest): Promise<GcReport> {
  const clientOptions = target.region ? { region: target.region } : {};
  const { table, bucket, eventBus } = await resolveResources(target, clientOptions);
  const dynamo = createDynamoDbClient(clientOptions);
  const endpoint = process.env.AWS_ENDPOINT_URL_S3;
  const s3 = createS3Client({ ...clientOptions, ...(endpoint ? { endpoint } : {}) });
  const storage = awsGcStorage({ dynamo, s3, table, bucket, ...(target.clockToleranceMs !== undefined ? { clockToleranceMs: target.clockToleranceMs } : {}) });
  const history = new DynamoDbTagHistoryStore({ dynamo, table });
  const events = eventBus !== undefined && !request.dryRun ? new EventBridgeEventSink({ client: createEventBridgeClient(clientOptions), bus: eventBus }) : undefined;
  const onEventFailure = (error: unknown) => process.stderr.write(`ocireg gc: event not sent: ${errorMessage(error)}\n`);
  const versions = new TagVersions({ metadata: storage.metadata, history, ...(events ? { events, onEventFailure } : {}) });
  const recorded: Promise<unknown>[] = [];
  const report = await runGc({
    ...storage,
    dryRun: request.dryRun,
    ...(request.graceMs !== undefined ? { graceMs: request.graceMs } : {}),
    plan: new StoreRetentionPlanner({ metadata: storage.metadata, policies: new DynamoDbPolicyStore({ dynamo, table }), history }),
    // An expired tag gets its 'removed by retention' history entry, and every removal its GC event when there is a
    // bus, as when the scheduled function removes it.
    ...(request.dryRun ? {} : { onRemoved: (removal) => void recorded.push(versions.recordCollected(removal).catch(() => undefined)) }),
  });
  await Promise.all(recorded);
  return report;
}

async function resolveResources(target: DeployedGcTarget, clientOptions: { region?: string }): Promise<{ table: string; bucket: string; eventBus?: string | undefined }> {
  if (target.stack === undefined) {
    if (target.table === undefined) throw new UsageError('give --stack <name>, or --table <name> with --bucket <name>');
    if (target.bucket === undefined) throw new UsageError(`garbage collection deletes blob bytes: give --bucket <name> with --table ${target.table} (or --stack)`);
    return { table: target.table, bucket: target.bucket, eventBus: target.eventBus };
  }
  const { Stacks } = await createCloudFormationClient(clientOptions).send(new DescribeStacksCommand({ StackName: target.stack }));
  const output = (key: string) => Stacks?.[0]?.Outputs?.find((entry) => entry.OutputKey === key)?.OutputValue;
  const table = target.table ?? output(OUTPUTS.table);
  const bucket = target.bucket ?? output(OUTPUTS.bucket);
  if (!table || !bucket) throw new Error(`stack ${target.stack} has no ${OUTPUTS.table}/${OUTPUTS.bucket} outputs; is it an ocireg stack? Pass --table and --bucket instead.`);
  return { table, bucket, eventBus: target.eventBus ?? output(OUTPUTS.eventBus) };
}
