import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { Registry } from '../../lib/registry/registry.ts';
import { DynamoDbMetadataStore } from '../../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { DynamoDbPolicyStore } from '../../lib/storage/dynamodb/dynamodb-policy-store.ts';
import { DynamoDbTagHistoryStore } from '../../lib/storage/dynamodb/dynamodb-tag-history-store.ts';
import { FsPolicyStore } from '../../lib/storage/fs/fs-policy-store.ts';
import { openFsStorage } from '../../lib/storage/fs/open-fs-storage.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { MemoryPolicyStore } from '../../lib/storage/memory/memory-policy-store.ts';
import { MemoryTagHistoryStore } from '../../lib/storage/memory/memory-tag-history-store.ts';
import { S3BlobStore } from '../../lib/storage/s3/s3-blob-store.ts';
import { S3ManifestBodyStore } from '../../lib/storage/s3/s3-manifest-body-store.ts';
import { S3ObjectScan } from '../../lib/storage/s3/s3-object-scan.ts';
import { retentionGcContract } from '../registry/retention-gc.contract.ts';
import { useLocalBackends } from '../support/local-backends.ts';

/** Retention applied by garbage collection on memory, fs and DynamoDB Local + s3rver (real pushes through the registry). */

const local = useLocalBackends('retention-gc');

retentionGcContract('memory', async () => {
  const blobs = new MemoryBlobStore();
  const metadata = new MemoryMetadataStore();
  const history = new MemoryTagHistoryStore(metadata);
  return { registry: new Registry({ blobs, metadata, history }), metadata, blobs, history, policies: new MemoryPolicyStore(), bytesExist: (location) => blobs.read(location).then(() => true, () => false) };
});

retentionGcContract('fs', async () => {
  const storage = await openFsStorage(join(local.dir, Math.random().toString(36).slice(2)));
  return {
    registry: new Registry({ blobs: storage.blobs, metadata: storage.metadata, history: storage.history }),
    metadata: storage.metadata,
    blobs: storage.blobs,
    history: storage.history,
    policies: new FsPolicyStore(storage.keys),
    bytesExist: (location) => access(storage.keys.blobPath(location)).then(() => true, () => false),
  };
});

retentionGcContract('DynamoDB Local + s3rver', async () => {
  const { s3, dynamo } = local.aws;
  const { table, bucket } = local.names;
  // One machine, one clock: a few ms of tolerance still exercise `since`.
  const metadata = new DynamoDbMetadataStore({ dynamo, table, bodies: new S3ManifestBodyStore({ s3, bucket }), objects: new S3ObjectScan({ s3, bucket }), clockToleranceMs: 5 });
  const blobs = new S3BlobStore({ s3, bucket });
  const history = new DynamoDbTagHistoryStore({ dynamo, table });
  return {
    registry: new Registry({ blobs, metadata, history }),
    metadata,
    blobs,
    history,
    policies: new DynamoDbPolicyStore({ dynamo, table }),
    bytesExist: (location) => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: location })).then(() => true, (error: unknown) => ((error as Error).name === 'NotFound' ? false : Promise.reject(error))),
  };
});
