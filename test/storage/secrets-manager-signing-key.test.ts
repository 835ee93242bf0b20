import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../lib/dev/aws-local.ts';
import { startSecretsManagerLocal, type SecretsManagerLocal } from '../../lib/dev/secrets-manager-local.ts';
import { createSecretsManagerClient } from '../../lib/storage/aws-clients.ts';
import { loadOrCreateSecretSigningKey } from '../../lib/storage/secrets/secrets-manager-signing-key.ts';
import { startAwsJsonFront, type AwsJsonFront } from '../support/aws-json-front.ts';

/**
 * The real SDK client against the local Secrets Manager (lib/dev/secrets-manager-local.ts), directly or through a
 * front that answers some calls itself (test/support/aws-json-front.ts).
 */

let secrets: SecretsManagerLocal;
const fronts: AwsJsonFront[] = [];
const clients: SecretsManagerClient[] = [];

function clientFor(endpoint: string): SecretsManagerClient {
  const client = createSecretsManagerClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  secrets = await startSecretsManagerLocal();
});

afterAll(async () => {
  for (const client of clients) client.destroy();
  await Promise.all(fronts.map((front) => front.close()));
  await secrets.close();
});

let secretCount = 0;
function placeholderSecret(): string {
  return secrets.createSecret(`ocireg-signing-key-${++secretCount}`, 'RandomPlaceholder0123456789abcdef');
}

describe('loadOrCreateSecretSigningKey', () => {
  it('replaces the placeholder with a new key once, then reads that key without writing', async () => {
    const secretId = placeholderSecret();
    const client = clientFor(secrets.endpoint);

    const first = await loadOrCreateSecretSigningKey(client, secretId);
    const again = await loadOrCreateSecretSigningKey(client, secretId);
    const stored = await client.send(new GetSecretValueCommand({ SecretId: secretId }));

    expect(first).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(again).toBe(first);
    expect(stored.SecretString).toBe(first);
  });

  it('ends with one key when first starts race', async () => {
    const secretId = placeholderSecret();
    const client = clientFor(secrets.endpoint);

    const keys = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateSecretSigningKey(client, secretId)));
    const stored = await client.send(new GetSecretValueCommand({ SecretId: secretId }));

    expect(new Set(keys).size).toBe(1);
    expect(stored.SecretString).toBe(keys[0]);
  });

  it('reads the key it wrote by its VersionId, even while reads of AWSCURRENT still answer the placeholder', async () => {
    const secretId = placeholderSecret();
    const placeholder = await clientFor(secrets.endpoint).send(new GetSecretValueCommand({ SecretId: secretId }));
    // Every read by label answers the placeholder version: the label has not moved yet, as far as readers see.
    const front = await startAwsJsonFront(secrets.listener, ({ operation, input }) =>
      operation === 'GetSecretValue' && input.VersionId === undefined
        ? { body: { ARN: placeholder.ARN, Name: placeholder.Name, VersionId: placeholder.VersionId, SecretString: placeholder.SecretString, VersionStages: ['AWSCURRENT'] } }
        : undefined,
    );
    fronts.push(front);

    const key = await loadOrCreateSecretSigningKey(clientFor(front.endpoint), secretId);
    const stored = await clientFor(secrets.endpoint).send(new GetSecretValueCommand({ SecretId: secretId }));

    expect(key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(stored.SecretString).toBe(key);
    expect(front.calls.map((call) => call.operation)).toEqual(['GetSecretValue', 'PutSecretValue', 'GetSecretValue']);
    expect(front.calls[2]!.input.VersionId).toBe(front.calls[1]!.input.ClientRequestToken);
  });

  it('after a failed attempt whose write landed, a retry ends on the same key', async () => {
    const secretId = placeholderSecret();
    // The first attempt's write lands but its read-back fails; the retry still sees the placeholder by label.
    const placeholder = await clientFor(secrets.endpoint).send(new GetSecretValueCommand({ SecretId: secretId }));
    const front = await startAwsJsonFront(secrets.listener, ({ operation, input }, index) => {
      if (index === 2) return { error: 'AccessDeniedException', message: 'not authorized to perform: secretsmanager:GetSecretValue' };
      if (operation === 'GetSecretValue' && input.VersionId === undefined) {
        return { body: { ARN: placeholder.ARN, Name: placeholder.Name, VersionId: placeholder.VersionId, SecretString: placeholder.SecretString, VersionStages: ['AWSCURRENT'] } };
      }
      return undefined;
    });
    fronts.push(front);
    const client = clientFor(front.endpoint);

    const failed = await loadOrCreateSecretSigningKey(client, secretId).then(
      () => undefined,
      (error: unknown) => error,
    );
    const retried = await loadOrCreateSecretSigningKey(client, secretId);
    const stored = await clientFor(secrets.endpoint).send(new GetSecretValueCommand({ SecretId: secretId }));

    expect((failed as Error).name).toBe('AccessDeniedException');
    expect(retried).toBe(stored.SecretString);
    expect(front.calls.map((call) => call.operation)).toEqual(['GetSecretValue', 'PutSecretValue', 'GetSecretValue', 'GetSecretValue', 'PutSecretValue', 'GetSecretValue']);
  });

  it('rejects with the service error when the secret cannot be read', async () => {
    const client = clientFor(secrets.endpoint);

    await expect(loadOrCreateSecretSigningKey(client, 'no-such-secret')).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });
});
