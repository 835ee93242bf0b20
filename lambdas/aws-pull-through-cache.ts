import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { BlobStore, MetadataStore } from '../lib/registry/ports.ts';
import { PullThroughCache, type BlobMissPolicy } from '../lib/registry/pull-through-cache.ts';
import { DynamoDbCacheRuleStore } from '../lib/storage/dynamodb/dynamodb-cache-rule-store.ts';
import { CacheCredentialSecrets } from '../lib/storage/secrets/cache-credential-secrets.ts';
import { secretCredentialUpstreams } from './cache-upstreams.ts';

/** How long a cached tag is served before the upstream is asked again, as `ocireg serve` does. */
export const DEFAULT_CACHE_REVALIDATE_SECONDS = 300;

export interface AwsPullThroughCacheOptions {
  dynamo: DynamoDBClient;
  table: string;
  secrets: SecretsManagerClient;
  blobs: BlobStore;
  metadata: MetadataStore;
  revalidateSeconds?: number | undefined;
  /** The registry function's (lambdas/cache-blob-miss-policy.ts); the copy function has none: it copies. */
  missPolicy?: BlobMissPolicy;
  log: (entry: Record<string, unknown>) => void;
}

/**
 * The pull-through cache as both functions build it: rules from the table (read every few seconds), upstream
 * credentials from Secrets Manager (read when used), blobs and metadata in S3 and DynamoDB like any content.
 */
export function createAwsPullThroughCache(options: AwsPullThroughCacheOptions): PullThroughCache {
  return new PullThroughCache({
    rules: new DynamoDbCacheRuleStore({ dynamo: options.dynamo, table: options.table }),
    blobs: options.blobs,
    metadata: options.metadata,
    upstreamFor: secretCredentialUpstreams(new CacheCredentialSecrets(options.secrets)),
    revalidateAfterMs: (options.revalidateSeconds ?? DEFAULT_CACHE_REVALIDATE_SECONDS) * 1000,
    ...(options.missPolicy ? { missPolicy: options.missPolicy } : {}),
    log: options.log,
  });
}
