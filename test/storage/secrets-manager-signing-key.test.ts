import { GetSecretValueCommand, PutSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { loadOrCreateSecretSigningKey } from '../../lib/storage/secrets/secrets-manager-signing-key.ts';

/**
 * A fake of the two Secrets Manager calls with its documented idempotency rule: a PutSecretValue repeating a
 * ClientRequestToken with a different value fails with ResourceExistsException. (No Secrets Manager emulator
 * runs here; this is the unit test, the CDK test checks the grants.)
 */
function fakeSecretsManager(initial: string) {
  const versions = new Map<string, string>([['v0', initial]]);
  let current = 'v0';
  let puts = 0;
  const client = {
    async send(command: unknown) {
      if (command instanceof GetSecretValueCommand) return { SecretString: versions.get(current), VersionId: current };
      if (command instanceof PutSecretValueCommand) {
        puts++;
        const token = command.input.ClientRequestToken!;
        const existing = versions.get(token);
        if (existing !== undefined) {
          if (existing === command.input.SecretString) return {};
          throw Object.assign(new Error('version exists with different value'), { name: 'ResourceExistsException' });
        }
        versions.set(token, command.input.SecretString!);
        current = token;
        return {};
      }
      throw new Error('unexpected command');
    },
  };
  return { client: client as unknown as SecretsManagerClient, puts: () => puts };
}

describe('loadOrCreateSecretSigningKey', () => {
  it('replaces the placeholder with a new key once, then reads it', async () => {
    const fake = fakeSecretsManager('{"placeholder":"random"}');
    const first = await loadOrCreateSecretSigningKey(fake.client, 'arn:secret');
    expect(first).toMatch(/BEGIN PRIVATE KEY/);
    expect(await loadOrCreateSecretSigningKey(fake.client, 'arn:secret')).toBe(first);
    expect(fake.puts()).toBe(1);
  });

  it('ends with one key when first starts race', async () => {
    const fake = fakeSecretsManager('placeholder');
    const keys = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateSecretSigningKey(fake.client, 'arn:secret')));
    expect(new Set(keys).size).toBe(1);
  });
});
