import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AuthService } from '../auth/auth-service.ts';
import { TokenSigner } from '../auth/token-signer.ts';
import { DynamoDbIdentityStore } from './dynamodb/dynamodb-identity-store.ts';
import { loadOrCreateSecretSigningKey } from './secrets/secrets-manager-signing-key.ts';
import { SERVICE_NAME } from '../auth/service-name.ts';


export interface AwsAuthOptions {
  dynamo: DynamoDBClient;
  table: string;
  /** Where the signing key lives: a Secrets Manager secret (deployed), or a PEM given directly (the emulated run). */
  signingKey: { secrets: SecretsManagerClient; secretId: string } | { pem: string };
}

/**
 * Token auth of the AWS deployment: identities in the metadata table, the key in Secrets Manager. Built once per
 * Lambda instance (the key is read at cold start and cached with the instance).
 */
export async function createAwsAuthService(options: AwsAuthOptions): Promise<AuthService> {
  const pem = 'pem' in options.signingKey ? options.signingKey.pem : await loadOrCreateSecretSigningKey(options.signingKey.secrets, options.signingKey.secretId);
  const signer = await TokenSigner.fromPem(pem, SERVICE_NAME, SERVICE_NAME);
  return new AuthService({ identities: new DynamoDbIdentityStore({ dynamo: options.dynamo, table: options.table }), signer });
}
