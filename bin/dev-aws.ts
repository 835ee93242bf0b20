#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Logger } from '@aws-lambda-powertools/logger';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { ColdStart } from '../lambdas/cold-start.ts';
import { createAwsRegistryApp, createHandler } from '../lambdas/registry-api.ts';
import { SERVICE_NAME } from '../lib/auth/service-name.ts';
import { startSecretsManagerLocal, type SecretsManagerLocal } from '../lib/dev/secrets-manager-local.ts';
import { createLambdaClient, createSecretsManagerClient } from '../lib/storage/aws-clients.ts';
import { startLambdaLocal, type LambdaLocal } from '../lib/dev/lambda-local.ts';
import type { BlobCopyEvent } from '../lib/storage/lambda/background-blob-copies.ts';
import { createBlobCopyHandler } from '../lambdas/cache-blob-copy.ts';
import { startEmulatedApiGateway, type GatewayLogLine } from '../lib/server/emulated-api-gateway.ts';
import { createLocalResources, resourceNames, type ResourceNames } from '../lib/storage/aws-resources.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startAwsLocal, type AwsLocal } from '../lib/dev/aws-local.ts';
import { asError, errorMessage } from '../lib/registry/errors.ts';
import { positiveDuration } from '../lib/cli/duration.ts';
import { parseSize } from '../lib/cli/byte-size.ts';

/**
 * `npm run dev:aws -- --port N`: the AWS deployment on this machine. DynamoDB Local and s3rver stand in for
 * DynamoDB and S3 (test/support/aws-local.ts), the table and bucket come from the same definitions as the stack
 * (lib/storage/aws-resources.ts), the handler is the production one (lambdas/registry-api.ts) and an emulated
 * HTTP API (lib/server/emulated-api-gateway.ts) turns requests into events with the platform's limits.
 *
 * With `--auth`, the signing key takes the deployed path too: a secret holding a random placeholder in a local
 * Secrets Manager (lib/dev/secrets-manager-local.ts), which the first initialisation replaces with a new key
 * (lib/storage/secrets/secrets-manager-signing-key.ts), behind the same retrying cold start (lambdas/cold-start.ts).
 *
 * Blob GETs redirect to s3rver under the host name `localhost` while the registry listens on 127.0.0.1: clients
 * do not forward the registry's Authorization to another host, as on AWS (API Gateway host → S3 host).
 */

export interface DevAwsOptions {
  /** @default 0 (any free port) */
  port?: number;
  /** Largest request body of an upload request, bytes. @default the S3 store's (4 MiB) */
  maxChunkLength?: number;
  /** Presigned GET lifetime, seconds. @default 900 */
  presignExpiresIn?: number;
  /** Docker token auth: identities in DynamoDB Local, the signing key made at start in a local Secrets Manager. @default false */
  auth?: boolean;
  /** Blob HEADs answered by a 307 to a presigned s3rver HEAD URL (the construct's `blobHeadRedirect`). @default false */
  blobHeadRedirect?: boolean;
  /** Gateway integration timeout, ms. @default 30000 */
  integrationTimeoutMs?: number;
  /** Function log level (Powertools). @default 'INFO' */
  logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT';
  /** Where the functions log (both the registry's and the copy function's); `logLevel` is then the logger's. @default a Powertools Logger to stdout */
  logger?: Logger;
  /** Pull-through cache: the largest blob copied within the pull that missed it (`CACHE_COPY_IN_REQUEST_MAX_BYTES`). @default 64 MiB */
  cacheCopyInRequestMaxBytes?: number;
  /** Pull-through cache: a cached tag is re-checked upstream after this many seconds. @default 300 */
  cacheRevalidateSeconds?: number;
  /** Where the gateway's access log lines go. @default nowhere */
  accessLog?: (line: GatewayLogLine) => void;
}

export interface DevAws {
  /** The registry, `http://127.0.0.1:<port>`. */
  url: string;
  names: ResourceNames;
  /** DynamoDB Local and s3rver, with their clients (e.g. to inspect the bucket). */
  local: AwsLocal;
  endpoints: { dynamo: string; s3: string; secretsManager: string };
  /** The local Lambda that runs the cache's copy function on asynchronous invocations (counted in `invocations`). */
  lambda: LambdaLocal;
  /** With auth: the token signing key (PKCS#8 PEM) the start wrote to the secret, e.g. for tests that mint tokens. */
  signingKeyPem?: string;
  /** Stops the gateway, then the emulators. Idempotent. */
  stop(): Promise<void>;
}

export async function startDevAws(options: DevAwsOptions = {}): Promise<DevAws> {
  const local = await startAwsLocal();
  let secrets: SecretsManagerLocal | undefined;
  let lambda: LambdaLocal | undefined;
  try {
    const names = resourceNames('ocireg-dev');
    await createLocalResources(local.dynamo, local.s3, names);
    const presignS3 = local.s3Client({ hostname: 'localhost' });
    const logger = options.logger ?? new Logger({ serviceName: SERVICE_NAME, logLevel: options.logLevel ?? 'INFO' });
    let signingKeySecret: string | undefined;
    // Always: the pull-through cache's rules keep upstream credentials there (ocireg cache add --table).
    secrets = await startSecretsManagerLocal({ region: LOCAL_REGION });
    if (options.auth) {
      // As the stack creates it: random text that is not a key yet.
      signingKeySecret = secrets.createSecret(`${names.table}-signing-key`, randomBytes(16).toString('hex'));
    }
    const secretsClient = createSecretsManagerClient({ endpoint: secrets.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const config = {
      table: names.table,
      bucket: names.bucket,
      ...(options.maxChunkLength !== undefined ? { maxChunkLength: options.maxChunkLength } : {}),
      ...(options.presignExpiresIn !== undefined ? { presignExpiresIn: options.presignExpiresIn } : {}),
      ...(options.blobHeadRedirect ? { blobHeadRedirect: true } : {}),
      ...(signingKeySecret !== undefined ? { signingKeySecret } : {}),
      cacheCopyFunction: `${names.table}-cache-copy`,
      ...(options.cacheCopyInRequestMaxBytes !== undefined ? { cacheCopyInRequestMaxBytes: options.cacheCopyInRequestMaxBytes } : {}),
      ...(options.cacheRevalidateSeconds !== undefined ? { cacheRevalidateSeconds: options.cacheRevalidateSeconds } : {}),
    };
    // The copy function of the stack (lib/infra/registry-cache.ts), run in this process on each Event invocation.
    const copyFunction = `${names.table}-cache-copy`;
    const copy = createBlobCopyHandler({ table: names.table, bucket: names.bucket }, { dynamo: local.dynamo, s3: local.s3, secrets: secretsClient }, logger);
    lambda = await startLambdaLocal(
      { [copyFunction]: (payload) => copy(payload as BlobCopyEvent) },
      { onError: (name, error) => logger.error({ message: 'function failed', name }, asError(error)) },
    );
    const lambdaClient = createLambdaClient({ endpoint: lambda.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const clients = { dynamo: local.dynamo, s3: local.s3, presignS3, secrets: secretsClient, lambda: lambdaClient };
    const app = new ColdStart(() => createAwsRegistryApp(config, { clients, logger }));
    // A start that cannot initialise fails here, not at the first request.
    await app.get();
    const signingKeyPem =
      signingKeySecret !== undefined ? (await secretsClient.send(new GetSecretValueCommand({ SecretId: signingKeySecret }))).SecretString : undefined;
    const gateway = await startEmulatedApiGateway({
      handler: createHandler(app, { logger }),
      port: options.port ?? 0,
      ...(options.integrationTimeoutMs !== undefined ? { integrationTimeoutMs: options.integrationTimeoutMs } : {}),
      ...(options.accessLog ? { log: options.accessLog } : {}),
    });
    let stopped: Promise<void> | undefined;
    return {
      url: gateway.url,
      names,
      local,
      endpoints: { ...local.endpoints, secretsManager: secrets.endpoint },
      lambda,
      ...(signingKeyPem !== undefined ? { signingKeyPem } : {}),
      stop: () =>
        (stopped ??= (async () => {
          await gateway.close();
          await lambda?.close();
          lambdaClient.destroy();
          presignS3.destroy();
          secretsClient.destroy();
          await secrets?.close();
          await local.stop();
        })()),
    };
  } catch (error) {
    await lambda?.close();
    await secrets?.close();
    await local.stop();
    throw error;
  }
}

async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: '5000' },
      'max-chunk-length': { type: 'string' },
      auth: { type: 'boolean', default: false },
      'blob-head-redirect': { type: 'boolean', default: false },
      'cache-revalidate': { type: 'string' },
      'cache-copy-in-request-max': { type: 'string' },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be an integer from 0 to 65535, got "${values.port}"`);
  const maxChunkLength = values['max-chunk-length'] === undefined ? undefined : Number(values['max-chunk-length']);
  if (maxChunkLength !== undefined && (!Number.isSafeInteger(maxChunkLength) || maxChunkLength < 1)) {
    throw new Error(`--max-chunk-length must be a positive integer of bytes, got "${values['max-chunk-length']}"`);
  }

  // As `ocireg serve --cache-revalidate 30s`; the stack's props are `cacheRevalidate` and `cacheCopyInRequestMaxBytes`.
  const cacheRevalidateMs = values['cache-revalidate'] === undefined ? undefined : positiveDuration('--cache-revalidate', values['cache-revalidate']);
  const cacheCopyInRequestMaxBytes = values['cache-copy-in-request-max'] === undefined ? undefined : parseSize(values['cache-copy-in-request-max']);
  const dev = await startDevAws({
    port,
    auth: values.auth,
    blobHeadRedirect: values['blob-head-redirect'],
    ...(maxChunkLength !== undefined ? { maxChunkLength } : {}),
    ...(cacheRevalidateMs !== undefined ? { cacheRevalidateSeconds: Math.max(1, Math.round(cacheRevalidateMs / 1000)) } : {}),
    ...(cacheCopyInRequestMaxBytes !== undefined ? { cacheCopyInRequestMaxBytes } : {}),
    accessLog: (line) => process.stdout.write(`${JSON.stringify({ msg: 'gateway', ...line })}\n`),
  });
  const adminEnv = `AWS_ENDPOINT_URL_DYNAMODB=${dev.endpoints.dynamo} AWS_ENDPOINT_URL_SECRETS_MANAGER=${dev.endpoints.secretsManager} AWS_ACCESS_KEY_ID=${LOCAL_CREDENTIALS.accessKeyId} AWS_SECRET_ACCESS_KEY=${LOCAL_CREDENTIALS.secretAccessKey} AWS_REGION=${LOCAL_REGION}`;
  process.stdout.write(
    [
      `registry: ${dev.url}`,
      `  DynamoDB Local ${dev.endpoints.dynamo} (table ${dev.names.table}), s3rver ${dev.endpoints.s3} (bucket ${dev.names.bucket}); blobs redirect to http://localhost:${new URL(dev.endpoints.s3).port}`,
      ...(values.auth ? [`  admin: ${adminEnv} npm exec ocireg -- users add alice --admin --table ${dev.names.table}`] : []),
      `  cache: ${adminEnv} npm exec ocireg -- cache add hub https://registry-1.docker.io --table ${dev.names.table}`,
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stdout.write(`${signal}: stopping\n`);
      dev.stop().then(resolve, (error: unknown) => {
        process.stderr.write(`stop failed: ${String(error)}\n`);
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

const invokedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`dev:aws: ${errorMessage(error)}\n`);
      process.exit(1);
    },
  );
}
