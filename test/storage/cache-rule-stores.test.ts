import { stat } from 'node:fs/promises';
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../lib/dev/aws-local.ts';
import { startSecretsManagerLocal, type SecretsManagerLocal } from '../../lib/dev/secrets-manager-local.ts';
import { createSecretsManagerClient } from '../../lib/storage/aws-clients.ts';
import { DynamoDbCacheRuleStore } from '../../lib/storage/dynamodb/dynamodb-cache-rule-store.ts';
import { CacheCredentialSecrets, cacheSecretPrefix } from '../../lib/storage/secrets/cache-credential-secrets.ts';
import { useLocalBackends } from '../support/local-backends.ts';
import { FsCacheRuleStore } from '../../lib/storage/fs/fs-cache-rule-store.ts';
import { FsKeys } from '../../lib/storage/fs/keys.ts';
import { MemoryCacheRuleStore } from '../../lib/storage/memory/memory-cache-rule-store.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { cacheRuleStoreContract } from './cache-rule-store.contract.ts';

const dirs = tempDirs('ocireg-cache-rules-');
const local = useLocalBackends('cache-rules');
let dir: string;
let secretsManager: SecretsManagerLocal;
let secretsClient: SecretsManagerClient;

beforeAll(async () => {
  dir = await dirs.make();
  secretsManager = await startSecretsManagerLocal({ region: LOCAL_REGION });
  secretsClient = createSecretsManagerClient({ endpoint: secretsManager.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
});
afterAll(async () => {
  secretsClient?.destroy();
  await secretsManager?.close();
  await dirs.cleanUp();
});

/** The admin's store (it writes secrets) and what the function does with a listed rule: read its secret (no cache). */
const dynamoStore = async () => new DynamoDbCacheRuleStore({ dynamo: local.aws.dynamo, table: local.names.table, secrets: new CacheCredentialSecrets(secretsClient) });
const fromSecret = async (rule: { credentialsSecret?: string; credentials?: unknown }) => {
  expect(rule.credentials).toBeUndefined();
  if (rule.credentialsSecret === undefined) return undefined;
  return new CacheCredentialSecrets(secretsClient, { ttlMs: 0 }).read(rule.credentialsSecret);
};

cacheRuleStoreContract('memory', async () => new MemoryCacheRuleStore());
cacheRuleStoreContract('fs', async () => new FsCacheRuleStore(new FsKeys(dir)));
cacheRuleStoreContract('DynamoDB Local + local Secrets Manager', dynamoStore, fromSecret);

describe('FsCacheRuleStore', () => {
  it('keeps the rules (with upstream credentials) in a file only its owner can read', async () => {
    const keys = new FsKeys(dir);
    await new FsCacheRuleStore(keys).put({ prefix: 'secret', upstream: 'https://example.test', credentials: { username: 'u', password: 'p' } });
    expect((await stat(keys.cacheRules)).mode & 0o777).toBe(0o600);
  });
});

describe('DynamoDbCacheRuleStore', () => {
  it('keeps the credentials in a secret named after the table and prefix, and only its name in the table', async () => {
    // Prepare
    const store = await dynamoStore();

    // Act
    await store.put({ prefix: 'private', upstream: 'https://example.test', credentials: { username: 'robot', password: 's3cret' } });
    const [listed] = (await store.list()).filter((rule) => rule.prefix === 'private');
    const secret = await secretsClient.send(new GetSecretValueCommand({ SecretId: `${cacheSecretPrefix(local.names.table)}private` }));

    // Assess
    expect(listed).toEqual({ prefix: 'private', upstream: 'https://example.test', credentialsSecret: `${cacheSecretPrefix(local.names.table)}private` });
    expect(JSON.parse(secret.SecretString!)).toEqual({ username: 'robot', password: 's3cret' });
  });

  it('deletes the secret with the rule, and when the rule is replaced by one without credentials', async () => {
    const store = await dynamoStore();
    const secretOf = (prefix: string) => `${cacheSecretPrefix(local.names.table)}${prefix}`;
    const readable = (prefix: string) => secretsClient.send(new GetSecretValueCommand({ SecretId: secretOf(prefix) })).then(() => true, () => false);
    await store.put({ prefix: 'dropped', upstream: 'https://example.test', credentials: { username: 'u', password: 'p' } });
    await store.put({ prefix: 'replaced', upstream: 'https://example.test', credentials: { username: 'u', password: 'p' } });

    const before = [await readable('dropped'), await readable('replaced')];
    await store.remove('dropped');
    await store.put({ prefix: 'replaced', upstream: 'https://example.test' });

    expect(before).toEqual([true, true]);
    expect([await readable('dropped'), await readable('replaced')]).toEqual([false, false]);
  });

  it('lets one of two racing nested rules in, and refuses the other with UNSUPPORTED', async () => {
    const [a, b] = [await dynamoStore(), await dynamoStore()];
    const results = await Promise.allSettled([a.put({ prefix: 'race', upstream: 'https://a.test' }), b.put({ prefix: 'race/inner', upstream: 'https://b.test' })]);
    const kept = (await a.list()).filter((rule) => rule.prefix === 'race' || rule.prefix.startsWith('race/'));
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    expect(kept).toHaveLength(1);
  });

  it('reads a secret once per TTL and again after it', async () => {
    let now = 0;
    const secrets = new CacheCredentialSecrets(secretsClient, { ttlMs: 1_000, now: () => now });
    const name = `${cacheSecretPrefix(local.names.table)}ttl`;
    await secrets.write(name, { username: 'a', password: '1' });
    const first = await secrets.read(name);
    await secrets.write(name, { username: 'a', password: '2' });
    const cached = await secrets.read(name);
    now = 1_000;
    const fresh = await secrets.read(name);
    expect([first.password, cached.password, fresh.password]).toEqual(['1', '1', '2']);
  });
});
