import { join } from 'node:path';
import { DynamoDbMetadataStore } from '../../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { DynamoDbPolicyStore } from '../../lib/storage/dynamodb/dynamodb-policy-store.ts';
import { FsPolicyStore } from '../../lib/storage/fs/fs-policy-store.ts';
import { FsKeys } from '../../lib/storage/fs/keys.ts';
import { openFsStorage } from '../../lib/storage/fs/open-fs-storage.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { MemoryPolicyStore } from '../../lib/storage/memory/memory-policy-store.ts';
import { fixedTagsContract, policyStoreContract } from './policy-store.contract.ts';
import { useLocalBackends } from '../support/local-backends.ts';

const local = useLocalBackends('policies');

policyStoreContract('memory', async () => new MemoryPolicyStore());
policyStoreContract('fs', async () => new FsPolicyStore(new FsKeys(local.dir)));
policyStoreContract('DynamoDB Local', async () => new DynamoDbPolicyStore({ dynamo: local.aws.dynamo, table: local.names.table }));

fixedTagsContract('memory', async () => new MemoryMetadataStore());
fixedTagsContract('fs', async () => (await openFsStorage(local.dir)).metadata);
fixedTagsContract('DynamoDB Local', async () => new DynamoDbMetadataStore({ dynamo: local.aws.dynamo, table: local.names.table }));
