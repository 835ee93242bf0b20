import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, type IEventBus, type Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { SERVICE_NAME } from '../auth/service-name.ts';
import { registryFunction } from './function-bundling.ts';
import { acknowledgeBucketObjects, functionRole } from './function-role.ts';

export interface RegistryGcProps {
  readonly table: Table;
  readonly bucket: Bucket;
  /** When a run starts. */
  readonly schedule: Schedule;
  /** Nothing younger is collected. */
  readonly gracePeriod: Duration;
  readonly logRetention: RetentionDays;
  /**
   * Where the GC events go (docs/events.md: one per manifest, blob link and expired tag removed): the function gets
   * events:PutEvents on this bus and EVENT_BUS_NAME. @default none: a run publishes nothing
   */
  readonly eventBus?: IEventBus;
}

/** Lambda's longest timeout: a run stops sweeping a minute before it (lambdas/gc.ts) and the next run continues. */
const TIMEOUT = Duration.minutes(15);

/**
 * Scheduled garbage collection (lambdas/gc.ts): an EventBridge rule invokes a function of its own, with a role of
 * its own. It may scan the table and delete items, list the bucket and delete objects; the registry function's
 * role gains nothing from it.
 */
export class RegistryGc extends Construct {
  readonly function: NodejsFunction;
  readonly rule: Rule;

  constructor(scope: Construct, id: string, props: RegistryGcProps) {
    super(scope, id);
    const logs = new LogGroup(this, 'Logs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY });
    const role = functionRole(this, 'Role', logs, 'ocireg garbage collection: scans the table and bucket, deletes what nothing references');
    // Scan pages; GetItem/Query for tags, policies, history and guards; UpdateItem dooms (and creates a body's
    // guard); DeleteItem drops (also inside the transaction that deletes a manifest with its tags); PutItem writes
    // the tag-history entry of a tag retention expired.
    role.addToPolicy(
      new PolicyStatement({
        actions: ['dynamodb:Scan', 'dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
        resources: [props.table.tableArn],
      }),
    );
    // GetObject reads large manifest bodies (a manifest's references); DeleteObject deletes blob bytes, bodies and the
    // buffered appends of abandoned uploads; AbortMultipartUpload ends their multipart uploads.
    role.addToPolicy(new PolicyStatement({ actions: ['s3:GetObject', 's3:DeleteObject', 's3:AbortMultipartUpload'], resources: [props.bucket.arnForObjects('*')] }));
    role.addToPolicy(new PolicyStatement({ actions: ['s3:ListBucket'], resources: [props.bucket.bucketArn] }));
    if (props.eventBus) role.addToPolicy(new PolicyStatement({ actions: ['events:PutEvents'], resources: [props.eventBus.eventBusArn] }));
    acknowledgeBucketObjects(role, props.bucket, 'Garbage collection deletes blob objects by content address and random upload keys: every key of its own bucket, nothing else.');

    this.function = registryFunction(this, 'Function', 'gc.ts', {
      memorySize: 1024,
      timeout: TIMEOUT,
      role,
      logGroup: logs,
      environment: {
        TABLE_NAME: props.table.tableName,
        BUCKET_NAME: props.bucket.bucketName,
        GC_GRACE_MS: String(props.gracePeriod.toMilliseconds()),
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        ...(props.eventBus ? { EVENT_BUS_NAME: props.eventBus.eventBusName } : {}),
      },
      description: 'ocireg: scheduled garbage collection',
    });
    // A failed run is not retried by EventBridge's async invocation twice over: the next scheduled run continues.
    this.rule = new Rule(this, 'Schedule', { schedule: props.schedule, description: 'ocireg: garbage collection', targets: [new LambdaFunction(this.function, { retryAttempts: 0 })] });
  }
}
