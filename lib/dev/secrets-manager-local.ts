import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { listen } from '../server/listen.ts';

/**
 * The Secrets Manager operations the registry calls (GetSecretValue, PutSecretValue; CreateSecret, DeleteSecret and
 * RestoreSecret for the cache rules' credentials), over the service's own
 * wire protocol (AWS JSON 1.1: `POST /`, `X-Amz-Target: secretsmanager.<Operation>`), so the real SDK client talks
 * to it by endpoint alone. No Secrets Manager emulator ships with the project's dependencies; this one keeps the
 * rules the registry's key initialisation relies on, each from the API reference:
 *
 * - PutSecretValue's `ClientRequestToken` becomes the new version's `VersionId`; repeating a token with the same
 *   value is a no-op, with another value `ResourceExistsException`.
 * - A new version takes the `AWSCURRENT` label; the version that had it gets `AWSPREVIOUS`.
 * - GetSecretValue reads `AWSCURRENT`, or the version named by `VersionId` / `VersionStage`; an unknown secret or
 *   version is `ResourceNotFoundException`.
 * - CreateSecret of an existing name is `ResourceExistsException`, of a name scheduled for deletion
 *   `InvalidRequestException`. DeleteSecret schedules the deletion (the secret can no longer be read, written or
 *   created again: `InvalidRequestException`) until RestoreSecret, or deletes at once with
 *   `ForceDeleteWithoutRecovery`.
 * @see https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html
 * @see https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html
 */

export interface SecretsManagerLocal {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  /** The protocol handler, for a front that wraps it (e.g. one that fails first, test/support). */
  listener: RequestListener;
  /** Creates a secret with one `AWSCURRENT` version; answers its ARN. */
  createSecret(name: string, secretString: string): string;
  close(): Promise<void>;
}

interface Version {
  value: string;
  stages: Set<string>;
  created: number;
}

interface Secret {
  arn: string;
  name: string;
  versions: Map<string, Version>;
  /** When DeleteSecret scheduled its deletion (epoch ms). */
  deletedAt?: number;
}

const SCHEDULED = 'You can’t perform this operation on the secret because it was marked for deletion.';

/** An AWS JSON 1.1 error as the SDK parses it: the type in `__type` and `X-Amzn-ErrorType`, the text in `message`. */
export function writeAwsJsonError(res: ServerResponse, status: number, type: string, message: string): void {
  const body = JSON.stringify({ __type: type, message });
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type, 'x-amzn-requestid': randomUUID(), 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

export async function startSecretsManagerLocal(options: { region?: string; account?: string } = {}): Promise<SecretsManagerLocal> {
  const region = options.region ?? 'us-east-1';
  const account = options.account ?? '000000000000';
  const secrets = new Map<string, Secret>();
  const find = (id: string) => secrets.get(id) ?? [...secrets.values()].find((secret) => secret.arn === id);
  const arnOf = (name: string) => `arn:aws:secretsmanager:${region}:${account}:secret:${name}-${randomUUID().slice(0, 6)}`;

  const operations: Record<string, (input: Record<string, unknown>) => [number, Record<string, unknown>] | [number, string, string]> = {
    GetSecretValue(input) {
      const secret = find(String(input.SecretId));
      if (!secret) return [400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret."];
      if (secret.deletedAt !== undefined) return [400, 'InvalidRequestException', SCHEDULED];
      const stage = typeof input.VersionStage === 'string' ? input.VersionStage : input.VersionId === undefined ? 'AWSCURRENT' : undefined;
      const entry =
        typeof input.VersionId === 'string'
          ? ([input.VersionId, secret.versions.get(input.VersionId)] as const)
          : [...secret.versions].find(([, version]) => version.stages.has(stage!));
      if (!entry?.[1] || (stage !== undefined && !entry[1].stages.has(stage))) {
        return [400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret value for the given version."];
      }
      const [versionId, version] = entry as readonly [string, Version];
      return [200, { ARN: secret.arn, Name: secret.name, VersionId: versionId, SecretString: version.value, VersionStages: [...version.stages], CreatedDate: version.created / 1000 }];
    },
    PutSecretValue(input) {
      const secret = find(String(input.SecretId));
      if (!secret) return [400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret."];
      if (secret.deletedAt !== undefined) return [400, 'InvalidRequestException', SCHEDULED];
      if (typeof input.SecretString !== 'string') return [400, 'InvalidParameterException', 'You must provide either SecretString or SecretBinary.'];
      const versionId = typeof input.ClientRequestToken === 'string' ? input.ClientRequestToken : randomUUID();
      if (versionId.length < 32 || versionId.length > 64) return [400, 'ValidationException', 'ClientRequestToken must be 32 to 64 characters long.'];
      const existing = secret.versions.get(versionId);
      if (existing) {
        if (existing.value !== input.SecretString) return [400, 'ResourceExistsException', 'You can’t modify an existing version, you can only create a new version.'];
        return [200, { ARN: secret.arn, Name: secret.name, VersionId: versionId, VersionStages: [...existing.stages] }];
      }
      for (const version of secret.versions.values()) {
        version.stages.delete('AWSPREVIOUS');
        if (version.stages.delete('AWSCURRENT')) version.stages.add('AWSPREVIOUS');
      }
      secret.versions.set(versionId, { value: input.SecretString, stages: new Set(['AWSCURRENT']), created: Date.now() });
      return [200, { ARN: secret.arn, Name: secret.name, VersionId: versionId, VersionStages: ['AWSCURRENT'] }];
    },
    CreateSecret(input) {
      const name = String(input.Name ?? '');
      if (!/^[A-Za-z0-9/_+=.@-]{1,512}$/.test(name)) return [400, 'ValidationException', 'Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!'];
      if (typeof input.SecretString !== 'string') return [400, 'InvalidParameterException', 'You must provide either SecretString or SecretBinary.'];
      const existing = secrets.get(name);
      if (existing?.deletedAt !== undefined) return [400, 'InvalidRequestException', `You can't create this secret because a secret with this name is already scheduled for deletion.`];
      if (existing) return [400, 'ResourceExistsException', `The operation failed because the secret ${name} already exists.`];
      const versionId = typeof input.ClientRequestToken === 'string' ? input.ClientRequestToken : randomUUID();
      const secret: Secret = { arn: arnOf(name), name, versions: new Map([[versionId, { value: input.SecretString, stages: new Set(['AWSCURRENT']), created: Date.now() }]]) };
      secrets.set(name, secret);
      return [200, { ARN: secret.arn, Name: name, VersionId: versionId }];
    },
    DeleteSecret(input) {
      const secret = find(String(input.SecretId));
      if (!secret) return [400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret."];
      if (input.ForceDeleteWithoutRecovery === true) secrets.delete(secret.name);
      else secret.deletedAt ??= Date.now();
      return [200, { ARN: secret.arn, Name: secret.name, DeletionDate: (secret.deletedAt ?? Date.now()) / 1000 }];
    },
    RestoreSecret(input) {
      const secret = find(String(input.SecretId));
      if (!secret) return [400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret."];
      delete secret.deletedAt;
      return [200, { ARN: secret.arn, Name: secret.name }];
    },
  };

  const listener: RequestListener = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = operations[target.replace(/^secretsmanager\./, '')];
      if (req.method !== 'POST' || !target.startsWith('secretsmanager.') || !operation) {
        return writeAwsJsonError(res, 400, 'UnknownOperationException', `operation ${JSON.stringify(target)} is not emulated`);
      }
      let input: Record<string, unknown>;
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      } catch {
        return writeAwsJsonError(res, 400, 'SerializationException', 'the request body is not JSON');
      }
      const answer = operation(input);
      if (answer.length === 3) return writeAwsJsonError(res, answer[0], answer[1], answer[2]);
      const body = JSON.stringify(answer[1]);
      res.writeHead(answer[0], { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID(), 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    });
  };

  const server = createServer(listener);
  const listening = await listen(server, 0, '127.0.0.1');
  return {
    endpoint: listening.url,
    listener,
    createSecret(name, secretString) {
      const arn = arnOf(name);
      secrets.set(name, { arn, name, versions: new Map([[randomUUID(), { value: secretString, stages: new Set(['AWSCURRENT']), created: Date.now() }]]) });
      return arn;
    },
    close: () => {
      const closed = listening.close();
      server.closeAllConnections();
      return closed;
    },
  };
}
