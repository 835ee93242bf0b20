import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newTokenSecret } from '../../lib/auth/access-token-secret.ts';
import { AuthService } from '../../lib/auth/auth-service.ts';
import { TokenSigner } from '../../lib/auth/token-signer.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startAwsLocal, type AwsLocal } from '../../lib/dev/aws-local.ts';
import { S3CallCounter } from '../../lib/dev/sdk-call-counter.ts';
import { parseScopes } from '../../lib/auth/scope.ts';
import { createLocalResources, resourceNames } from '../../lib/storage/aws-resources.ts';
import { DynamoDbIdentityStore } from '../../lib/storage/dynamodb/dynamodb-identity-store.ts';
import { startOidcIssuer } from '../support/oidc-issuer.ts';

/**
 * What one token request costs on DynamoDB, counted on the wire (DynamoDB Local): teams add one BatchGetItem for a
 * member of any team, and nothing for anyone else.
 */

let aws: AwsLocal;
let store: DynamoDbIdentityStore;
const calls = new S3CallCounter();
let auth: AuthService;

beforeAll(async () => {
  aws = await startAwsLocal();
  const names = resourceNames('token-cost');
  await createLocalResources(aws.dynamo, aws.s3, names);
  const dynamo = calls.attach(new DynamoDBClient({ endpoint: aws.endpoints.dynamo, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }));
  store = new DynamoDbIdentityStore({ dynamo, table: names.table });
  auth = new AuthService({ identities: store, signer: await TokenSigner.fromPem(await TokenSigner.generatePem(), 'ocireg', 'ocireg') });
}, 120_000);
afterAll(async () => {
  await aws?.stop();
});

async function login(name: string): Promise<string> {
  await store.createUser({ name, admin: false, createdAt: Date.now() });
  const secret = newTokenSecret();
  await store.createToken({ id: secret.id, user: name, secretHash: secret.secretHash, createdAt: Date.now() });
  return secret.token;
}

async function countedTokenRequest(name: string, password: string) {
  calls.reset();
  const response = await auth.issueToken({ username: name, password, scopes: parseScopes(['repository:acme/app:pull,push']), offline: false, sourceIp: '192.0.2.1' });
  return { calls: calls.snapshot(), access: JSON.parse(Buffer.from(response.token.split('.')[1]!, 'base64url').toString()).access };
}

describe('token request cost on DynamoDB', () => {
  it('is 5 GetItem and 2 Query (and the first-use PutItem) for a user in no team', async () => {
    const password = await login('solo');
    await store.setGrant({ user: 'solo', glob: 'acme/*', level: 'pull' });
    const { calls: counted, access } = await countedTokenRequest('solo', password);
    expect(access[0].actions).toEqual(['pull']);
    expect(counted).toEqual({ GetItem: 5, PutItem: 1, Query: 2 });
  });

  it('adds one BatchGetItem for a member of two teams, whatever the number of teams', async () => {
    const password = await login('member');
    for (const team of ['red', 'blue']) {
      await store.createTeam({ name: team, createdAt: 1 });
      await store.addTeamMember(team, 'member');
    }
    await store.setTeamGrant('blue', { glob: 'acme/*', level: 'push' });
    const { calls: counted, access } = await countedTokenRequest('member', password);
    expect(access[0].actions).toEqual(['pull', 'push']);
    expect(counted).toEqual({ BatchGetItem: 1, GetItem: 5, PutItem: 1, Query: 2 });
  });

  it('is 2 Query for a CI job with an OIDC ID token (trusts and public globs), plus one key fetch per instance', async () => {
    const issuer = await startOidcIssuer();
    try {
      await store.createTrust({ name: 'ci', issuer: issuer.url, audience: 'reg', claims: [{ claim: 'repository', glob: 'acme/*' }], grants: [{ glob: 'acme/*', level: 'push' }], createdAt: 1 });
      const first = await countedTokenRequest('oidc', await issuer.sign({ aud: 'reg', sub: 'job', repository: 'acme/app' }));
      expect(first.access[0].actions).toEqual(['pull', 'push']);
      expect(first.calls).toEqual({ Query: 2 });
      await countedTokenRequest('oidc', await issuer.sign({ aud: 'reg', sub: 'job', repository: 'acme/app' }));
      expect(issuer.requests('/jwks')).toBe(1);
    } finally {
      await issuer.stop();
    }
  });
});
