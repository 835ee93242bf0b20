import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type { HttpApi, HttpStage, ThrottleSettings } from 'aws-cdk-lib/aws-apigatewayv2';
import type { ICertificate } from 'aws-cdk-lib/aws-certificatemanager';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { Schedule, type IEventBus } from 'aws-cdk-lib/aws-events';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket, IBucket } from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { SERVICE_NAME } from '../auth/service-name.ts';
import { DEFAULT_MAX_CHUNK_LENGTH } from '../storage/s3/s3-upload-limits.ts';
import { registryFunction } from './function-bundling.ts';
import { acknowledgeBucketObjects, functionRole } from './function-role.ts';
import { RegistryCache } from './registry-cache.ts';
import { RegistryEvents, type RegistryWebhook } from './registry-events.ts';
import { RegistryGc } from './registry-gc.ts';
import { registryHttpApi } from './registry-http-api.ts';
import { blobBucket, metadataTable } from './registry-storage.ts';

export interface OciRegistryProps {
  /**
   * What happens to the bucket and table (blobs, manifests, users) when the stack is deleted or they are replaced.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Docker token authentication (users, tokens and grants in the table; the signing key in Secrets Manager).
   * Off, anyone who can reach the API may push.
   * @default true
   */
  readonly auth?: boolean;
  /**
   * The largest request body one upload request may carry, bytes, advertised as `OCI-Chunk-Max-Length`. It must
   * stay under what API Gateway passes to Lambda: a 6,291,456-byte event with the body base64-encoded.
   * @default 4 MiB (4,194,304)
   */
  readonly maxChunkLength?: number;
  /**
   * Lifetime of the presigned S3 URLs blob GETs redirect to.
   * @default Duration.minutes(15)
   */
  readonly presignExpiry?: Duration;
  /**
   * Answer blob HEADs with a 307 to a presigned S3 HEAD URL instead of from the table, as CNCF Distribution's S3
   * redirect does: the size then comes from S3 itself. For a gateway that turns a Lambda HEAD response's
   * `Content-Length` into 0 (undocumented for HTTP APIs; docker and containerd take blob sizes from HEAD and fail
   * with "Target.Size must be greater than zero"): `ocireg doctor`'s `blob-head` row says when to turn it on. Costs
   * one more round trip per blob HEAD; Go clients (docker, containerd, skopeo, crane) follow a 307 on HEAD.
   * @default false
   */
  readonly blobHeadRedirect?: boolean;
  /**
   * The storage price, USD per GB-month, at which `GET /v2/_ocireg/usage` estimates the monthly cost: S3 Standard in
   * us-east-1 by default (lib/registry/usage-cost.ts says where it comes from); set your region's or tier's.
   * @default 0.023
   */
  readonly storagePricePerGbMonthUsd?: number;
  /**
   * Pull-through cache: how long a cached tag is served before the upstream is asked again (one HEAD).
   * @default Duration.minutes(5)
   */
  readonly cacheRevalidate?: Duration;
  /**
   * Pull-through cache: the largest blob the registry function copies within the pull that missed it; larger ones
   * are redirected to the upstream while the copy function stores them (lambdas/cache-blob-miss-policy.ts).
   * @default 64 MiB
   */
  readonly cacheCopyInRequestMaxBytes?: number;
  /**
   * Memory of the function; CPU share grows with it (hashing uploads is CPU-bound).
   * @default 1024
   */
  readonly memorySize?: number;
  /**
   * Function timeout: under the HTTP API's 30 s integration timeout, so a slow request ends in the function's
   * own 500 rather than the gateway's 503.
   * @default Duration.seconds(29)
   */
  readonly timeout?: Duration;
  /**
   * Retention of the function's and the API's logs.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Steady-state requests per second and burst for the whole API.
   * @default - the account's API Gateway limits only
   */
  readonly throttle?: ThrottleSettings;
  /**
   * A custom domain for the registry (e.g. `registry.example.com`); requires `certificate`. Point a CNAME or
   * alias at the `RegionalDomainName` output.
   * @default - the execute-api endpoint only
   */
  readonly domainName?: string;
  /**
   * ACM certificate for `domainName`, in the stack's region.
   * @default - none; required with `domainName`
   */
  readonly certificate?: ICertificate;
  /**
   * Mutual TLS on `domainName`: the truststore (PEM CA certificates) at `key` (and `version`) in `bucket`; clients
   * must present a certificate signed by one of them (docker: `certs.d/<domain>/client.cert` and `client.key`).
   * Turns the execute-api endpoint off (`disableExecuteApiEndpoint`): API Gateway checks client certificates on
   * custom domains only, so the default `https://<id>.execute-api…` URL would otherwise serve the same API
   * without one.
   * @default - no client certificate required
   */
  readonly mtls?: { readonly bucket: IBucket; readonly key: string; readonly version?: string };
  /**
   * Registry events (docs/events.md) to EventBridge: `default` (the account's default bus) or `create` (a bus of the
   * registry's own). One PutEvents per change.
   * @default - no events; `default` when `webhooks` are given
   */
  readonly eventBus?: 'default' | 'create';
  /** Webhooks EventBridge delivers (a rule, an API destination and a connection each). @default none */
  readonly webhooks?: readonly RegistryWebhook[];
  /**
   * When garbage collection runs (its own function and role: lib/infra/registry-gc.ts), or `false` for never
   * (`ocireg gc --stack` still works from an administrator's machine).
   * @default Schedule.rate(Duration.days(1))
   */
  readonly gcSchedule?: Schedule | false;
  /**
   * Garbage collection keeps anything younger than this (an image being pushed has blobs and no manifest yet).
   * @default Duration.hours(24)
   */
  readonly gcGracePeriod?: Duration;
}

/**
 * Largest chunk that still fits a Lambda event once base64-encoded, with ~100 KB left for headers: the 6 MB
 * synchronous invocation payload limit (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
 */
const MAX_CHUNK_LENGTH_LIMIT = Math.floor((6_291_456 - 100_000) / 4) * 3;

/**
 * An OCI registry on AWS: an HTTP API routing `/v2/…` and `/token` to one Lambda function (lambdas/registry-api.ts),
 * blobs in S3 (clients pull them from presigned URLs), metadata and identities in one DynamoDB table, the token
 * signing key in Secrets Manager. The table and bucket are built from lib/storage/aws-resources.ts, the same
 * definitions the local emulation uses.
 *
 * ```
 * client ──HTTPS──▶ HTTP API ──▶ Lambda ──▶ DynamoDB (metadata, users, upload state)
 *    │                             └──────▶ S3 (blobs, upload buffers, multipart parts)
 *    └──── GET blob: 307 ──────────────────▶ S3 presigned URL
 * ```
 */
export class OciRegistry extends Construct {
  readonly api: HttpApi;
  readonly stage: HttpStage;
  readonly function: NodejsFunction;
  readonly bucket: Bucket;
  readonly table: Table;
  readonly signingKey: Secret | undefined;
  /** Scheduled garbage collection; undefined with `gcSchedule: false`. */
  readonly gc: RegistryGc | undefined;
  /** Where registry events go (docs/events.md); undefined without `eventBus` or `webhooks`. */
  readonly eventBus: IEventBus | undefined;
  /** The pull-through cache's copy function and secret access (lib/infra/registry-cache.ts). */
  readonly cache: RegistryCache;
  /** `https://…` without a trailing slash: the custom domain when given, else the execute-api endpoint. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: OciRegistryProps = {}) {
    super(scope, id);
    if ((props.domainName === undefined) !== (props.certificate === undefined)) {
      throw new Error(
        `OciRegistry: supply domainName and certificate together, got domainName=${props.domainName ?? 'undefined'} and ${props.certificate ? 'a certificate' : 'no certificate'}`,
      );
    }
    if (props.mtls !== undefined && props.domainName === undefined) {
      throw new Error('OciRegistry: mtls needs domainName and certificate (API Gateway checks client certificates on custom domains only)');
    }
    const maxChunkLength = props.maxChunkLength ?? DEFAULT_MAX_CHUNK_LENGTH;
    if (!Number.isSafeInteger(maxChunkLength) || maxChunkLength < 1 || maxChunkLength > MAX_CHUNK_LENGTH_LIMIT) {
      throw new Error(`OciRegistry: maxChunkLength must be an integer from 1 to ${MAX_CHUNK_LENGTH_LIMIT} (a base64 body must fit a 6 MB Lambda event), got ${props.maxChunkLength}`);
    }
    const timeout = props.timeout ?? Duration.seconds(29);
    if (timeout.toSeconds() > 30) {
      throw new Error(`OciRegistry: timeout must not exceed the HTTP API's 30 s integration timeout, got ${timeout.toSeconds()} s`);
    }
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;

    this.bucket = blobBucket(this, removalPolicy);
    this.table = metadataTable(this, removalPolicy);

    const functionLogs = new LogGroup(this, 'FunctionLogs', { retention: logRetention, removalPolicy: RemovalPolicy.DESTROY });
    const role = functionRole(this, 'FunctionRole', functionLogs, 'ocireg registry function: its log group, table and bucket only');
    // Transactions need the per-item actions they contain; BatchGetItem reads a manifest push's references and a
    // user's teams. There is no Scan (garbage collection has a role of its own) and no index.
    role.addToPolicy(
      new PolicyStatement({
        actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query'],
        resources: [this.table.tableArn],
      }),
    );
    // Multipart calls are authorised as PutObject (create, upload part, complete) and AbortMultipartUpload;
    // CopyObject as GetObject on the source and PutObject on the target; presigned GETs carry this role's GetObject.
    role.addToPolicy(
      new PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        resources: [this.bucket.arnForObjects('*')],
      }),
    );
    // Without ListBucket a HeadObject of a missing key answers 403 instead of 404.
    role.addToPolicy(new PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] }));
    acknowledgeBucketObjects(role, this.bucket, 'Blob keys are content addresses and upload keys are random: the function needs its object actions on every key of its own bucket, and on nothing else.');

    const environment: Record<string, string> = {
      TABLE_NAME: this.table.tableName,
      BUCKET_NAME: this.bucket.bucketName,
      PRESIGN_EXPIRES_IN: String((props.presignExpiry ?? Duration.minutes(15)).toSeconds()),
      MAX_CHUNK_LENGTH: String(maxChunkLength),
      POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
      POWERTOOLS_LOG_LEVEL: 'INFO',
    };
    if (props.blobHeadRedirect) environment.BLOB_HEAD_REDIRECT = 'true';
    if (props.storagePricePerGbMonthUsd !== undefined) {
      if (!(props.storagePricePerGbMonthUsd >= 0)) throw new Error(`storagePricePerGbMonthUsd is a price in USD, 0 or more, got ${props.storagePricePerGbMonthUsd}`);
      environment.PRICE_PER_GB_MONTH_USD = String(props.storagePricePerGbMonthUsd);
    }
    const eventBus = props.eventBus ?? (props.webhooks?.length ? 'default' : undefined);
    const events = eventBus === undefined ? undefined : new RegistryEvents(this, 'Events', { role, bus: eventBus, ...(props.webhooks ? { webhooks: props.webhooks } : {}) });
    if (events) environment.EVENT_BUS_NAME = events.bus.eventBusName;
    this.eventBus = events?.bus;
    // The pull-through cache: its rules' upstream credentials (lib/infra/registry-cache.ts).
    this.cache = new RegistryCache(this, 'Cache', { table: this.table, bucket: this.bucket, role, environment, logRetention });
    if (props.cacheRevalidate !== undefined) environment.CACHE_REVALIDATE_SECONDS = String(props.cacheRevalidate.toSeconds());
    if (props.cacheCopyInRequestMaxBytes !== undefined) environment.CACHE_COPY_IN_REQUEST_MAX_BYTES = String(props.cacheCopyInRequestMaxBytes);
    if (props.auth ?? true) {
      this.signingKey = new Secret(this, 'SigningKey', {
        description: 'ocireg token signing key (ES256, PKCS#8 PEM); the first function start replaces this placeholder',
        generateSecretString: { passwordLength: 32, excludePunctuation: true },
      });
      role.addToPolicy(new PolicyStatement({ actions: ['secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue'], resources: [this.signingKey.secretArn] }));
      environment.SIGNING_KEY_SECRET_ARN = this.signingKey.secretArn;
      Validations.of(this.signingKey).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason: 'A new signing key invalidates every issued token at once (clients log in again); rotate by deleting the key text from the secret, which the next cold start replaces.',
      });
    }

    this.function = registryFunction(this, 'Function', 'registry-api.ts', {
      memorySize: props.memorySize ?? 1024,
      timeout,
      role,
      logGroup: functionLogs,
      environment,
      description: 'ocireg: OCI distribution API',
    });

    const { api, stage, url } = registryHttpApi(this, this.function, {
      logRetention,
      ...(props.throttle ? { throttle: props.throttle } : {}),
      ...(props.domainName !== undefined ? { domainName: props.domainName } : {}),
      ...(props.certificate ? { certificate: props.certificate } : {}),
      ...(props.mtls ? { mtls: props.mtls } : {}),
    });
    this.api = api;
    this.stage = stage;
    this.url = url;

    const gcSchedule = props.gcSchedule ?? Schedule.rate(Duration.days(1));
    this.gc =
      gcSchedule === false
        ? undefined
        : new RegistryGc(this, 'Gc', {
            table: this.table,
            bucket: this.bucket,
            schedule: gcSchedule,
            gracePeriod: props.gcGracePeriod ?? Duration.hours(24),
            logRetention,
            ...(events ? { eventBus: events.bus } : {}),
          });
  }
}

