import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { createLocalResources, resourceNames } from '../../lib/storage/aws-resources.ts';
import { DynamoDbMetadataStore } from '../../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { DynamoDbPolicyStore } from '../../lib/storage/dynamodb/dynamodb-policy-store.ts';
import { FsPolicyStore } from '../../lib/storage/fs/fs-policy-store.ts';
import { FsKeys } from '../../lib/storage/fs/keys.ts';
import { openFsStorage } from '../../lib/storage/fs/open-fs-storage.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { MemoryPolicyStore } from '../../lib/storage/memory/memory-policy-store.ts';
import { startAwsLocal, type AwsLocal } from '../../lib/dev/aws-local.ts';
import { fixedTagsContract, policyStoreContract } from './policy-store.contract.ts';

let dir: string;
let aws: AwsLocal;
const names = resourceNames('policies');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ocireg-policies-'));
  aws = await startAwsLocal();
  await createLocalResources(aws.dynamo, aws.s3, names);
});

afterAll(async () => {
  await aws?.stop();
  await rm(dir, { recursive: true, force: true });
});

policyStoreContract('memory', async () => new MemoryPolicyStore());
policyStoreContract('fs', async () => new FsPolicyStore(new FsKeys(dir)));
policyStoreContract('DynamoDB Local', async () => new DynamoDbPolicyStore({ dynamo: aws.dynamo, table: names.table }));

fixedTagsContract('memory', async () => new MemoryMetadataStore());
fixedTagsContract('fs', async () => (await openFsStorage(dir)).metadata);
fixedTagsContract('DynamoDB Local', async () => new DynamoDbMetadataStore({ dynamo: aws.dynamo, table: names.table }));
