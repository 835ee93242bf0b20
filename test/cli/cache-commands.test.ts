import { join } from 'node:path';
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../lib/dev/aws-local.ts';
import { startSecretsManagerLocal, type SecretsManagerLocal } from '../../lib/dev/secrets-manager-local.ts';
import { createSecretsManagerClient } from '../../lib/storage/aws-clients.ts';
import { cacheSecretPrefix } from '../../lib/storage/secrets/cache-credential-secrets.ts';
import { OCIREG_CLI } from '../support/registry-server.ts';
import { runTool } from '../support/tools.ts';
import { useLocalBackends } from '../support/local-backends.ts';

/**
 * `ocireg cache` as an administrator types it, against a data dir and against a table (DynamoDB Local, with the
 * credentials in the local Secrets Manager, reached through the SDK's standard endpoint variables).
 */

const local = useLocalBackends('cache-cli');
let secretsManager: SecretsManagerLocal;
let secrets: SecretsManagerClient;

beforeAll(async () => {
  secretsManager = await startSecretsManagerLocal({ region: LOCAL_REGION });
  secrets = createSecretsManagerClient({ endpoint: secretsManager.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
});
afterAll(async () => {
  secrets?.destroy();
  await secretsManager?.close();
});

const backends = {
  'fs (--data-dir)': (args: string[], input?: string) =>
    runTool(process.execPath, [OCIREG_CLI, ...args, '--data-dir', join(local.dir, 'data')], input === undefined ? {} : { input }),
  'DynamoDB (--table)': (args: string[], input?: string) =>
    runTool(process.execPath, [OCIREG_CLI, ...args, '--table', local.names.table], {
      env: {
        AWS_ENDPOINT_URL_DYNAMODB: local.aws.endpoints.dynamo,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsManager.endpoint,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        AWS_REGION: LOCAL_REGION,
      },
      ...(input === undefined ? {} : { input }),
    }),
};

for (const [backend, ocireg] of Object.entries(backends)) {
  describe(`ocireg cache on ${backend}`, () => {
    it('adds a rule with credentials from stdin, lists it without the password, and removes it once', async () => {
      // Act
      const add = await ocireg(['cache', 'add', 'hub', 'https://registry-1.docker.io', '--username', 'robot', '--password-stdin'], 's3cret\n');
      const anonymous = await ocireg(['cache', 'add', 'quay', 'https://quay.io/']);
      const list = await ocireg(['cache', 'list']);
      const removed = await ocireg(['cache', 'rm', 'hub']);
      const again = await ocireg(['cache', 'rm', 'hub']);
      const after = await ocireg(['cache', 'list']);

      // Assess
      expect(add.code, add.stderr).toBe(0);
      expect(add.stderr).toContain('cached hub/<name> from https://registry-1.docker.io/<name> as robot');
      expect(anonymous.code, anonymous.stderr).toBe(0);
      expect(list.stdout).toBe('hub\thttps://registry-1.docker.io\trobot\nquay\thttps://quay.io\tanonymous\n'.split('\n').sort().filter(Boolean).join('\n') + '\n');
      expect(list.stdout).not.toContain('s3cret');
      expect(removed.code, removed.stderr).toBe(0);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('no cache rule hub');
      expect(after.stdout).toBe('quay\thttps://quay.io\tanonymous\n');
      expect((await ocireg(['cache', 'rm', 'quay'])).code).toBe(0);
    });

    it('refuses a nested prefix with exit 2 and says which rule it nests with', async () => {
      expect((await ocireg(['cache', 'add', 'mirror', 'https://mirror.test'])).code).toBe(0);
      const nested = await ocireg(['cache', 'add', 'mirror/inner', 'https://other.test']);
      expect(nested.code).toBe(2);
      expect(nested.stderr).toContain('nests with the rule "mirror"');
      expect((await ocireg(['cache', 'rm', 'mirror'])).code).toBe(0);
    });
  });
}

describe('ocireg cache --table', () => {
  it('keeps the password in the secret ocireg-cache/<table>/<prefix> and deletes it with the rule', async () => {
    const ocireg = backends['DynamoDB (--table)'];
    const secretId = `${cacheSecretPrefix(local.names.table)}private`;
    expect((await ocireg(['cache', 'add', 'private', 'https://registry.example.com', '--username', 'ci', '--password-stdin'], 'token-1\n')).code).toBe(0);

    const stored = await secrets.send(new GetSecretValueCommand({ SecretId: secretId }));
    expect((await ocireg(['cache', 'rm', 'private'])).code).toBe(0);
    const gone = await secrets.send(new GetSecretValueCommand({ SecretId: secretId })).then(
      () => 'still there',
      (error: Error) => error.name,
    );

    expect(JSON.parse(stored.SecretString!)).toEqual({ username: 'ci', password: 'token-1' });
    expect(gone).toBe('ResourceNotFoundException');
  });

  it('refuses --stack with --table', async () => {
    const both = await runTool(process.execPath, [OCIREG_CLI, 'cache', 'list', '--stack', 's', '--table', 't']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give --stack or --table, not both');
  });
});
