import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { createLocalResources, resourceNames } from '../../lib/storage/aws-resources.ts';
import { DynamoDbIdentityStore } from '../../lib/storage/dynamodb/dynamodb-identity-store.ts';
import { FsIdentityStore } from '../../lib/storage/fs/fs-identity-store.ts';
import { FsKeys } from '../../lib/storage/fs/keys.ts';
import { MemoryIdentityStore } from '../../lib/storage/memory/memory-identity-store.ts';
import { startAwsLocal, type AwsLocal } from '../../lib/dev/aws-local.ts';
import { identityStoreContract } from './identity-store.contract.ts';

let dir: string;
let aws: AwsLocal;
let dynamoStore: DynamoDbIdentityStore;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ocireg-identities-'));
  aws = await startAwsLocal();
  const names = resourceNames('identities');
  await createLocalResources(aws.dynamo, aws.s3, names);
  dynamoStore = new DynamoDbIdentityStore({ dynamo: aws.dynamo, table: names.table });
});

afterAll(async () => {
  await aws?.stop();
  await rm(dir, { recursive: true, force: true });
});

identityStoreContract('memory', async () => new MemoryIdentityStore());
identityStoreContract('fs', async () => new FsIdentityStore(new FsKeys(dir)));
identityStoreContract('DynamoDB Local', async () => dynamoStore);
