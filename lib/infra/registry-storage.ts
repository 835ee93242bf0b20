import { Duration, Validations, type RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table } from 'aws-cdk-lib/aws-dynamodb';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership, type LifecycleRule } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { BLOB_BUCKET, METADATA_TABLE } from '../storage/aws-resources.ts';

/**
 * The registry's bucket and table, built from lib/storage/aws-resources.ts (the definitions the local emulation
 * uses too). Construct IDs `Blobs` and `Metadata` under the OciRegistry: never renamed (they decide logical IDs).
 */

const ATTRIBUTE_TYPES = { S: AttributeType.STRING, N: AttributeType.NUMBER, B: AttributeType.BINARY } as const;

/** Blobs, upload buffers and large manifest bodies: private, encrypted, TLS only, with BLOB_BUCKET's lifecycle rules. */
export function blobBucket(scope: Construct, removalPolicy: RemovalPolicy): Bucket {
  const bucket = new Bucket(scope, 'Blobs', {
    blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
    encryption: BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
    lifecycleRules: BLOB_BUCKET.lifecycleRules.map(lifecycleRule),
    removalPolicy,
  });
  Validations.of(bucket).acknowledge({
    id: 'AwsSolutions-S1',
    reason: 'Every request reaches the bucket through the registry function or a presigned URL it issued; the function logs each request. Server access logs would need a second bucket and record presigned GETs only.',
  });
  return bucket;
}

/** Metadata and identities, one table (keys: lib/storage/dynamodb/keys.ts), with point-in-time recovery. */
export function metadataTable(scope: Construct, removalPolicy: RemovalPolicy): Table {
  return new Table(scope, 'Metadata', {
    partitionKey: { name: METADATA_TABLE.partitionKey.name, type: ATTRIBUTE_TYPES[METADATA_TABLE.partitionKey.type] },
    sortKey: { name: METADATA_TABLE.sortKey.name, type: ATTRIBUTE_TYPES[METADATA_TABLE.sortKey.type] },
    billingMode: METADATA_TABLE.billingMode === 'PAY_PER_REQUEST' ? BillingMode.PAY_PER_REQUEST : BillingMode.PROVISIONED,
    timeToLiveAttribute: METADATA_TABLE.timeToLiveAttribute,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    removalPolicy,
  });
}

function lifecycleRule(rule: (typeof BLOB_BUCKET.lifecycleRules)[number]): LifecycleRule {
  return {
    id: rule.id,
    enabled: true,
    ...(rule.prefix !== '' ? { prefix: rule.prefix } : {}),
    ...('abortIncompleteMultipartUploadAfterDays' in rule ? { abortIncompleteMultipartUploadAfter: Duration.days(rule.abortIncompleteMultipartUploadAfterDays) } : {}),
    ...('expirationDays' in rule ? { expiration: Duration.days(rule.expirationDays) } : {}),
  };
}
