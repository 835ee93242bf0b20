import { Logger } from '@aws-lambda-powertools/logger';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SERVICE_NAME } from '../lib/auth/service-name.ts';
import { parseDigest } from '../lib/registry/digest.ts';
import { isValidName } from '../lib/registry/names.ts';
import { createDynamoDbClient, createS3Client, createSecretsManagerClient } from '../lib/storage/aws-clients.ts';
import { DynamoDbMetadataStore } from '../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { BlobCopyMarkers, type BlobCopyEvent } from '../lib/storage/lambda/background-blob-copies.ts';
import { S3BlobStore } from '../lib/storage/s3/s3-blob-store.ts';
import { S3ManifestBodyStore } from '../lib/storage/s3/s3-manifest-body-store.ts';
import { createAwsPullThroughCache } from './aws-pull-through-cache.ts';

/**
 * The pull-through cache's copy function: invoked asynchronously by the registry function (lib/storage/lambda/
 * background-blob-copies.ts) for a blob too large to copy within a pull, it copies the blob upstream → S3 with up to
 * Lambda's 15 minutes: the same PullThroughCache as the registry's, without a miss policy, so the copy is the one a
 * pull makes (streamed multipart, digest verified before the blob is recorded and linked). Holds two 8 MiB parts
 * at a time whatever the blob's size. Then it clears the copy's marker, stored or not, so a failed copy is started
 * again by the next pull.
 *
 * Environment: `TABLE_NAME`, `BUCKET_NAME` (as the registry function), set by lib/infra/registry-cache.ts.
 */

export interface BlobCopyConfig {
  table: string;
  bucket: string;
}

export interface BlobCopyClients {
  dynamo?: DynamoDBClient;
  s3?: S3Client;
  secrets?: SecretsManagerClient;
}

export type BlobCopyHandler = (event: BlobCopyEvent) => Promise<{ digest: string; size: number }>;

/** The copy handler over the given (or default) clients. */
export function createBlobCopyHandler(config: BlobCopyConfig, clients: BlobCopyClients = {}, log: Logger = logger): BlobCopyHandler {
  const dynamo = clients.dynamo ?? createDynamoDbClient();
  const s3 = clients.s3 ?? createS3Client();
  const blobs = new S3BlobStore({ s3, bucket: config.bucket });
  const cache = createAwsPullThroughCache({
    dynamo,
    table: config.table,
    secrets: clients.secrets ?? createSecretsManagerClient(),
    blobs,
    metadata: new DynamoDbMetadataStore({ dynamo, table: config.table, bodies: new S3ManifestBodyStore({ s3, bucket: config.bucket }) }),
    log: (entry) => log.warn({ message: String(entry.msg ?? 'pull-through cache'), ...entry }),
  });
  const markers = new BlobCopyMarkers({ dynamo, table: config.table });
  return async (event) => {
    if (typeof event?.name !== 'string' || !isValidName(event.name) || typeof event.digest !== 'string') {
      throw new Error(`a blob copy event is {"name","digest"}, got ${JSON.stringify(event)}`);
    }
    parseDigest(event.digest);
    const started = Date.now();
    try {
      const record = await cache.getBlob(event.name, event.digest);
      if (!record) throw new Error(`${event.name} is under no cache rule (removed since the pull?)`);
      log.info({ message: 'cache blob copied', name: event.name, digest: event.digest, size: record.size, ms: Date.now() - started });
      return { digest: record.digest, size: record.size };
    } finally {
      await markers.clear(event.digest);
    }
  };
}

/** One logger per execution environment. */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME });

let deployed: BlobCopyHandler | undefined;

/** The deployed handler, built from the environment at the first invocation. */
export const handler = async (event: BlobCopyEvent): Promise<{ digest: string; size: number }> => {
  if (!deployed) {
    const table = process.env.TABLE_NAME;
    const bucket = process.env.BUCKET_NAME;
    if (!table || !bucket) throw new Error(`TABLE_NAME and BUCKET_NAME are required, got ${JSON.stringify({ table, bucket })}`);
    deployed = createBlobCopyHandler({ table, bucket });
  }
  return deployed(event);
};
