import { fileURLToPath } from 'node:url';
import { Arn, ArnFormat, Duration, RemovalPolicy, Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket, CfnBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { SERVICE_NAME } from '../auth/service-name.ts';
import { BLOB_COPY_TIMEOUT_SECONDS } from '../storage/lambda/background-blob-copies.ts';
import { cacheSecretPrefix } from '../storage/secrets/cache-credential-secrets.ts';
import { FUNCTION_BUNDLING } from './function-bundling.ts';

export interface RegistryCacheProps {
  /** The registry's table: cache rules are items in it, and it names the rules' secrets. */
  readonly table: Table;
  readonly bucket: Bucket;
  /** The role of the registry function. */
  readonly role: Role;
  /** The registry function's environment: gains `CACHE_COPY_FUNCTION`. */
  readonly environment: Record<string, string>;
  readonly logRetention: RetentionDays;
}

/**
 * The pull-through cache's AWS side.
 *
 * - Credentials: one Secrets Manager secret per rule under `ocireg-cache/<table>/`. Both functions may read them and
 *   nothing else of Secrets Manager; neither can create or delete them: `ocireg cache add|rm --stack` does, with the
 *   administrator's credentials.
 * - The copy function (lambdas/cache-blob-copy.ts): blobs too large to copy within a pull are copied by it, invoked
 *   asynchronously by the registry function (`lambda:InvokeFunction` on it alone), with Lambda's 15 minutes and a
 *   role of its own: the table's item actions, PutObject (and multipart) on the bucket, the cache secrets.
 */
export class RegistryCache extends Construct {
  /** ARN pattern of the rules' secrets (Secrets Manager appends `-` and 6 random characters to a secret's ARN). */
  readonly secretArns: string;
  readonly copyFunction: NodejsFunction;

  constructor(scope: Construct, id: string, props: RegistryCacheProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.secretArns = Arn.format(
      { service: 'secretsmanager', resource: 'secret', resourceName: `${cacheSecretPrefix(props.table.tableName)}*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME },
      stack,
    );
    const readSecrets = () => new PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [this.secretArns] });
    const secretsAck = {
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:ocireg-cache/<${stack.getLogicalId(props.table.node.defaultChild as CfnElement)}>/*]`,
      reason: "One secret per cache rule, created by the admin CLI after deployment: their names share the registry's prefix, and Secrets Manager appends a random suffix to every secret ARN.",
    };
    props.role.addToPolicy(readSecrets());
    Validations.of(props.role).acknowledge(secretsAck);

    const logs = new LogGroup(this, 'CopyLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY });
    const role = new Role(this, 'CopyRole', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: 'ocireg pull-through cache copy: upstream blobs into the bucket, their records into the table',
    });
    role.addToPolicy(new PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logs.logGroupArn] }));
    // Query reads the rules; GetItem/PutItem/UpdateItem record and link the blob; DeleteItem clears the copy's marker.
    role.addToPolicy(
      new PolicyStatement({ actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query'], resources: [props.table.tableArn] }),
    );
    // Multipart calls are authorised as PutObject (create, upload part, complete) and AbortMultipartUpload.
    role.addToPolicy(new PolicyStatement({ actions: ['s3:PutObject', 's3:AbortMultipartUpload'], resources: [props.bucket.arnForObjects('blobs/*')] }));
    role.addToPolicy(readSecrets());
    Validations.of(role).acknowledge(secretsAck);
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(props.bucket.node.defaultChild as CfnBucket)}.Arn>/blobs/*]`,
      reason: 'A copied blob is written under a new random key below blobs/: the copy function writes there and nowhere else.',
    });

    this.copyFunction = new NodejsFunction(this, 'CopyFunction', {
      entry: fileURLToPath(new URL('../../lambdas/cache-blob-copy.ts', import.meta.url)),
      handler: 'handler',
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      // CPU share grows with memory (hashing); two 8 MiB parts are all the blob it holds.
      memorySize: 1024,
      timeout: Duration.seconds(BLOB_COPY_TIMEOUT_SECONDS),
      role,
      logGroup: logs,
      environment: { TABLE_NAME: props.table.tableName, BUCKET_NAME: props.bucket.bucketName, POWERTOOLS_SERVICE_NAME: SERVICE_NAME, POWERTOOLS_LOG_LEVEL: 'INFO' },
      description: 'ocireg: pull-through cache copy of a large blob',
      bundling: FUNCTION_BUNDLING,
    });
    // A failed copy has cleared its marker: the next pull starts another; one retry covers a passing upstream error.
    this.copyFunction.configureAsyncInvoke({ retryAttempts: 1, maxEventAge: Duration.hours(1) });
    props.role.addToPolicy(new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.copyFunction.functionArn] }));
    props.environment.CACHE_COPY_FUNCTION = this.copyFunction.functionName;
  }
}
