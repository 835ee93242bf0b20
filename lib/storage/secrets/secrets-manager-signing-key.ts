import { createHash } from 'node:crypto';
import { GetSecretValueCommand, PutSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { TokenSigner } from '../../auth/token-signer.ts';

const PEM = /-----BEGIN PRIVATE KEY-----/;

/**
 * The token signing key of a deployed registry, in Secrets Manager. The stack creates the secret with a random
 * placeholder; the first Lambda to start replaces it with a new ES256 key. Racing first starts cannot end with
 * two keys: each writes with a ClientRequestToken derived from the placeholder's version, Secrets Manager keeps
 * the first value for that token and refuses a different one, and the loser reads the winner's key.
 */
export async function loadOrCreateSecretSigningKey(client: SecretsManagerClient, secretId: string): Promise<string> {
  const current = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
  if (current.SecretString && PEM.test(current.SecretString)) return current.SecretString;
  const requestToken = createHash('sha256').update(`ocireg-signing-key:${current.VersionId ?? ''}`).digest('hex').slice(0, 64);
  try {
    await client.send(new PutSecretValueCommand({ SecretId: secretId, SecretString: await TokenSigner.generatePem(), ClientRequestToken: requestToken }));
  } catch (error) {
    // Another instance won the race with the same request token and another key: use theirs.
    const name = (error as { name?: string }).name;
    if (name !== 'ResourceExistsException' && name !== 'InvalidRequestException') throw error;
  }
  const created = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
  if (!created.SecretString || !PEM.test(created.SecretString)) throw new Error(`secret ${secretId} holds no signing key after initialisation`);
  return created.SecretString;
}
