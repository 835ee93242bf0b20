import { randomBytes, randomUUID } from 'node:crypto';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { bytesOf } from '../../lib/registry/bytes.ts';
import { GcRun } from '../../lib/registry/gc/collector.ts';
import { runGc } from '../../lib/registry/gc/run-gc.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { createLocalResources, resourceNames, type ResourceNames } from '../../lib/storage/aws-resources.ts';
import { DynamoDbMetadataStore } from '../../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { blobKey, manifestKey } from '../../lib/storage/s3/keys.ts';
import { S3BlobStore } from '../../lib/storage/s3/s3-blob-store.ts';
import { S3ManifestBodyStore } from '../../lib/storage/s3/s3-manifest-body-store.ts';
import { S3ObjectScan } from '../../lib/storage/s3/s3-object-scan.ts';
import { imageIndex, imageManifest, randomBlob } from '../support/builders.ts';
import { useLocalBackends } from '../support/local-backends.ts';
import { expectPullsIdentical, gcContract, image, push, settle, type GcBackend } from '../registry/gc.contract.ts';
import { gcStoreContract } from './gc-store.contract.ts';

/**
 * Garbage collection on DynamoDB Local + s3rver (strict layer): the GcStore contract and the collector contract
 * with its interleaving tests, then what only the AWS backend has: bytes under blobs/ without a record, large
 * manifest bodies in S3, manifests with more references than one transaction holds.
 */
const local = useLocalBackends('ocireg-gc');
/** Everything runs on this machine's one clock; a few ms keep `settle` short and still exercise `since`. */
const CLOCK_TOLERANCE_MS = 5;

function backend(names = local.names): GcBackend & { metadata: DynamoDbMetadataStore } {
  const { s3, dynamo } = local.aws;
  const bodies = new S3ManifestBodyStore({ s3, bucket: names.bucket });
  const metadata = new DynamoDbMetadataStore({ dynamo, table: names.table, bodies, objects: new S3ObjectScan({ s3, bucket: names.bucket }), clockToleranceMs: CLOCK_TOLERANCE_MS });
  const blobs = new S3BlobStore({ s3, bucket: names.bucket });
  return { registry: new Registry({ blobs, metadata }), metadata, blobs, bytesExist: (location) => objectExists(names.bucket, location) };
}

async function objectExists(bucket: string, key: string): Promise<boolean> {
  return local.aws.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
    () => true,
    (error: unknown) => ((error as Error).name === 'NotFound' ? false : Promise.reject(error)),
  );
}

/** Resources of their own (the store contract's manifests are not images; a skewed clock collects everything). */
async function freshResources(label: string): Promise<ResourceNames> {
  const names = resourceNames(`${label}-${randomBytes(3).toString('hex')}`);
  await createLocalResources(local.aws.dynamo, local.aws.s3, names);
  return names;
}

let storeNames: Promise<ResourceNames> | undefined;
gcStoreContract('DynamoDB Local', async () => backend(await (storeNames ??= freshResources('gc-store'))).metadata);
gcContract('DynamoDB Local + s3rver', async () => backend());
