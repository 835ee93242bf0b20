import { createHash } from 'node:crypto';
import { GetSecretValueCommand, PutSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { TokenSigner } from '../../auth/token-signer.ts';

const PEM = /-----BEGIN PRIVATE KEY-----/;

/**
 * The token signing key of a deployed registry, in Secrets Manager. The stack creates the secret with a random
 * placeholder; the first Lambda to start replaces it with a new ES256 key.
 *
 * Racing first starts cannot end with two keys: each writes with a ClientRequestToken derived from the
 * placeholder's version, Secrets Manager keeps the first value for that token and refuses a different one
 * (ResourceExistsException), and everyone then reads the version under that token. The token is also the new
 * version's VersionId (PutSecretValue reference), so the key is read back by id rather than by the AWSCURRENT
 * label, which a read right after the write is not promised to see moved:
 *
 * ```
 * start A: Get → placeholder v0 ─ Put(token T(v0), key A) ✓ ─────────── Get(VersionId T) → key A
 * start B: Get → placeholder v0 ───── Put(token T(v0), key B) ✗ exists ─ Get(VersionId T) → key A
 * start C (after a failed attempt whose Put did land): Get → v0 or T ─ same T ─ exists or key ─ key A
 * ```
 * Any error (throttling, a network failure, a missing grant) rejects; the caller retries on a later invocation
 * (lambdas/cold-start.ts), and the derived token makes that retry land on the same version.
 * @see https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html
 */
export async function loadOrCreateSecretSigningKey(client: SecretsManagerClient, secretId: string): Promise<string> {
  const current = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
  if (current.SecretString && PEM.test(current.SecretString)) return current.SecretString;
  const versionId = createHash('sha256').update(`ocireg-signing-key:${current.VersionId ?? ''}`).digest('hex').slice(0, 64);
  try {
    await client.send(new PutSecretValueCommand({ SecretId: secretId, SecretString: await TokenSigner.generatePem(), ClientRequestToken: versionId }));
  } catch (error) {
    if ((error as { name?: string }).name !== 'ResourceExistsException') throw error;
  }
  const created = await client.send(new GetSecretValueCommand({ SecretId: secretId, VersionId: versionId }));
  if (!created.SecretString || !PEM.test(created.SecretString)) throw new Error(`secret ${secretId} version ${versionId} holds no signing key`);
  return created.SecretString;
}
