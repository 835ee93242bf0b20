import { CreateTableCommand, DescribeTableCommand, ResourceInUseException, UpdateTimeToLiveCommand, type CreateTableCommandInput, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, PutBucketLifecycleConfigurationCommand, type S3Client } from '@aws-sdk/client-s3';
import { isS3Error } from './s3/s3-errors.ts';

/**
 * The registry's AWS resources, as plain data: the one definition the CDK stack (lib/infra) and the local
 * emulation (`createLocalResources`, used by tests and `dev:aws`) both build from.
 */

/** One DynamoDB table for everything (single-table design; items and keys in lib/storage/dynamodb/keys.ts). */
export const METADATA_TABLE = {
  /** Suffix of the table name when names are derived from a prefix (`<prefix>-metadata`). */
  nameSuffix: 'metadata',
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  /** Epoch seconds; upload sessions and failed-login windows expire by it. */
  timeToLiveAttribute: 'ttl',
  billingMode: 'PAY_PER_REQUEST',
  /** Every access pattern is a GetItem or a Query on the base table: no index. */
  globalSecondaryIndexes: [],
} as const;

/** CreateTable input for the metadata table, from {@link METADATA_TABLE}. */
export function createTableInput(tableName: string): CreateTableCommandInput {
  const { partitionKey, sortKey } = METADATA_TABLE;
  return {
    TableName: tableName,
    BillingMode: METADATA_TABLE.billingMode,
    AttributeDefinitions: [
      { AttributeName: partitionKey.name, AttributeType: partitionKey.type },
      { AttributeName: sortKey.name, AttributeType: sortKey.type },
    ],
    KeySchema: [
      { AttributeName: partitionKey.name, KeyType: 'HASH' },
      { AttributeName: sortKey.name, KeyType: 'RANGE' },
    ],
  };
}

/** Lifecycle rules of the blob bucket, in days. */
export const UPLOAD_RETENTION_DAYS = 3;

/** The bucket of blobs, buffered upload chunks and large manifests (keys in lib/storage/s3/keys.ts). */
export const BLOB_BUCKET = {
  /** Suffix of the bucket name when names are derived from a prefix (`<prefix>-blobs`). */
  nameSuffix: 'blobs',
  lifecycleRules: [
    /** Multipart uploads never completed nor aborted (a client gave up): their parts cost storage until then. */
    { id: 'abort-incomplete-multipart-uploads', prefix: '', abortIncompleteMultipartUploadAfterDays: UPLOAD_RETENTION_DAYS },
    /** Buffered appends orphaned by a lost race or an abandoned upload (see lib/storage/s3/s3-blob-store.ts). */
    { id: 'expire-upload-buffers', prefix: 'uploads/', expirationDays: UPLOAD_RETENTION_DAYS },
  ],
} as const;

/**
 * How long an upload session item lives in DynamoDB (its TTL), seconds. Shorter than the bucket's retention so an
 * upload's parts never disappear while its session is alive; longer than the core's 24 h upload lifetime.
 */
export const UPLOAD_SESSION_TTL_SECONDS = 2 * 24 * 60 * 60;

export interface ResourceNames {
  table: string;
  bucket: string;
}

/** Names derived from one prefix, for local and test deployments (CloudFormation names the deployed ones). */
export function resourceNames(prefix: string): ResourceNames {
  return { table: `${prefix}-${METADATA_TABLE.nameSuffix}`, bucket: `${prefix}-${BLOB_BUCKET.nameSuffix}` };
}

/**
 * Creates the table (with TTL enabled) and the bucket (with its lifecycle rules, where the S3 implementation has
 * them: s3rver answers NotImplemented and goes without). Idempotent.
 */
export async function createLocalResources(dynamo: DynamoDBClient, s3: S3Client, names: ResourceNames): Promise<void> {
  try {
    await dynamo.send(new CreateTableCommand(createTableInput(names.table)));
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  for (let attempt = 0; ; attempt++) {
    const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: names.table }));
    if (Table?.TableStatus === 'ACTIVE') break;
    if (attempt > 100) throw new Error(`table ${names.table} is still ${Table?.TableStatus}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await dynamo.send(
    new UpdateTimeToLiveCommand({ TableName: names.table, TimeToLiveSpecification: { AttributeName: METADATA_TABLE.timeToLiveAttribute, Enabled: true } }),
  ).catch((error: unknown) => {
    // Enabling TTL twice is a ValidationException ("TimeToLive is already enabled").
    if (!(error instanceof Error && /already enabled/i.test(error.message))) throw error;
  });

  try {
    await s3.send(new CreateBucketCommand({ Bucket: names.bucket }));
  } catch (error) {
    if (!isS3Error(error, 'BucketAlreadyOwnedByYou', 'BucketAlreadyExists')) throw error;
  }
  try {
    await s3.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: names.bucket,
        LifecycleConfiguration: {
          Rules: BLOB_BUCKET.lifecycleRules.map((rule) => ({
            ID: rule.id,
            Status: 'Enabled',
            Filter: { Prefix: rule.prefix },
            ...('abortIncompleteMultipartUploadAfterDays' in rule ? { AbortIncompleteMultipartUpload: { DaysAfterInitiation: rule.abortIncompleteMultipartUploadAfterDays } } : {}),
            ...('expirationDays' in rule ? { Expiration: { Days: rule.expirationDays } } : {}),
          })),
        },
      }),
    );
  } catch (error) {
    if (!isS3Error(error, 'NotImplemented')) throw error;
  }
}
