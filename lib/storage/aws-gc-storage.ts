import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { DynamoDbMetadataStore } from './dynamodb/dynamodb-metadata-store.ts';
import { S3BlobStore } from './s3/s3-blob-store.ts';
import { S3ManifestBodyStore } from './s3/s3-manifest-body-store.ts';
import { S3ObjectScan } from './s3/s3-object-scan.ts';

export interface AwsGcStorageOptions {
  dynamo: DynamoDBClient;
  s3: S3Client;
  table: string;
  bucket: string;
  /** @default AWS_CLOCK_TOLERANCE_MS (lib/storage/dynamodb/dynamodb-metadata-store.ts) */
  clockToleranceMs?: number;
}

/**
 * The stores garbage collection of a deployed registry runs on, one composition for the scheduled function
 * (lambdas/gc.ts) and `ocireg gc --stack/--table` (lib/cli/deployed-gc.ts): the table, whose scan continues into the
 * bucket's blobs/ and manifests/, large manifest bodies in S3, and the blob store that deletes bytes.
 */
export function awsGcStorage(options: AwsGcStorageOptions): { metadata: DynamoDbMetadataStore; blobs: S3BlobStore } {
  const { dynamo, s3, table, bucket } = options;
  const metadata = new DynamoDbMetadataStore({
    dynamo,
    table,
    bodies: new S3ManifestBodyStore({ s3, bucket }),
    objects: new S3ObjectScan({ s3, bucket }),
    ...(options.clockToleranceMs !== undefined ? { clockToleranceMs: options.clockToleranceMs } : {}),
  });
  return { metadata, blobs: new S3BlobStore({ s3, bucket }) };
}
