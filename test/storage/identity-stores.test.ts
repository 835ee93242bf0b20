import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IDENTITY_PK, IdentitySk } from '../../lib/storage/dynamodb/keys.ts';
import { PK, SK } from '../../lib/storage/dynamodb/table-definition.ts';
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
let table: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ocireg-identities-'));
  aws = await startAwsLocal();
  const names = resourceNames('identities');
  await createLocalResources(aws.dynamo, aws.s3, names);
  table = names.table;
  dynamoStore = new DynamoDbIdentityStore({ dynamo: aws.dynamo, table });
});

afterAll(async () => {
  await aws?.stop();
  await rm(dir, { recursive: true, force: true });
});

identityStoreContract('memory', async () => new MemoryIdentityStore());
identityStoreContract('fs', async () => new FsIdentityStore(new FsKeys(dir)));
identityStoreContract('DynamoDB Local', async () => dynamoStore);

describe('DynamoDbIdentityStore team index', () => {
  it("grants nothing through a user item's stale team entry (a team delete interrupted after the team item went)", async () => {
    // Prepare: the state a crash between deleteTeam's two steps leaves: the user item still lists the team.
    await dynamoStore.createUser({ name: 'stale', admin: false, createdAt: 1 });
    await aws.dynamo.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { [PK]: { S: IDENTITY_PK }, [SK]: { S: IdentitySk.user('stale') } },
        UpdateExpression: 'ADD #teams :team',
        ExpressionAttributeNames: { '#teams': 'teams' },
        ExpressionAttributeValues: { ':team': { SS: ['reborn'] } },
      }),
    );
    // Act: the team is created again under that name, with a grant
    await dynamoStore.createTeam({ name: 'reborn', createdAt: 2 });
    await dynamoStore.setTeamGrant('reborn', { glob: 'prod/**', level: 'admin' });
    // Assess: the team item's members decide, not the index
    expect((await dynamoStore.getAccess('stale'))?.grants).toEqual([]);
    expect(await dynamoStore.addTeamMember('reborn', 'stale')).toBe('added');
    expect((await dynamoStore.getAccess('stale'))?.grants).toEqual([{ glob: 'prod/**', level: 'admin', team: 'reborn' }]);
  });
});
