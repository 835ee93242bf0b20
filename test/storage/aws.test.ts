import { afterAll, beforeAll } from 'vitest';
import { createLocalResources, resourceNames } from '../../lib/storage/aws-resources.ts';
import { DynamoDbMetadataStore } from '../../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { S3BlobStore } from '../../lib/storage/s3/s3-blob-store.ts';
import { startAwsLocal, type AwsLocal } from '../support/aws-local.ts';
import { blobStoreContract } from './blob-store.contract.ts';
import { metadataStoreContract } from './metadata-store.contract.ts';

let aws: AwsLocal;
const names = resourceNames('ocireg-test');
beforeAll(async () => {
  aws = await startAwsLocal();
  await createLocalResources(aws.dynamo, aws.s3, names);
});
afterAll(async () => {
  await aws?.stop();
});

async function fetchRedirect(url: string, range?: string): Promise<Uint8Array> {
  const response = await fetch(url, range ? { headers: { range } } : {});
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
  return new Uint8Array(await response.arrayBuffer());
}

blobStoreContract('s3 (s3rver)', async () => ({ store: new S3BlobStore({ s3: aws.s3, bucket: names.bucket }), fetchRedirect }));
metadataStoreContract('DynamoDB Local', async () => new DynamoDbMetadataStore({ dynamo: aws.dynamo, table: names.table, s3: { client: aws.s3, bucket: names.bucket } }));
