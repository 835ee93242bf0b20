import { Logger } from '@aws-lambda-powertools/logger';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import middy, { type MiddyfiedHandler } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { AuthService } from '../lib/auth/auth-service.ts';
import { SERVICE_NAME } from '../lib/auth/service-name.ts';
import { TokenSigner } from '../lib/auth/token-signer.ts';
import { createRegistryApp } from '../lib/http/app.ts';
import { renderError } from '../lib/http/error-response.ts';
import { asError, errorMessage } from '../lib/registry/errors.ts';
import type { HttpHandler, RequestLog } from '../lib/http/types.ts';
import { PolicyCache } from '../lib/registry/policy-cache.ts';
import { Registry } from '../lib/registry/registry.ts';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { createDynamoDbClient, createEventBridgeClient, createLambdaClient, createS3Client, createSecretsManagerClient } from '../lib/storage/aws-clients.ts';
import { EventBridgeEventSink } from '../lib/storage/eventbridge/eventbridge-event-sink.ts';
import { DynamoDbIdentityStore } from '../lib/storage/dynamodb/dynamodb-identity-store.ts';
import { DynamoDbTagHistoryStore } from '../lib/storage/dynamodb/dynamodb-tag-history-store.ts';
import { DynamoDbUsageStore } from '../lib/storage/dynamodb/dynamodb-usage-store.ts';
import { S3_STANDARD_USD_PER_GB_MONTH } from '../lib/registry/usage-cost.ts';
import { DynamoDbPolicyStore } from '../lib/storage/dynamodb/dynamodb-policy-store.ts';
import { DynamoDbMetadataStore } from '../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { S3ManifestBodyStore } from '../lib/storage/s3/s3-manifest-body-store.ts';
import { S3BlobStore } from '../lib/storage/s3/s3-blob-store.ts';
import { loadOrCreateSecretSigningKey } from '../lib/storage/secrets/secrets-manager-signing-key.ts';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { BackgroundBlobCopies } from '../lib/storage/lambda/background-blob-copies.ts';
import { toApiGatewayResult, toHttpRequest } from './api-gateway-v2.ts';
import { createAwsPullThroughCache } from './aws-pull-through-cache.ts';
import { AwsBlobMissPolicy } from './cache-blob-miss-policy.ts';
import { ColdStart } from './cold-start.ts';

/**
 * The registry's Lambda function: `ANY /v2/{proxy+}`, `ANY /v2` and `ANY /token` of an HTTP API (payload format
 * 2.0). SDK clients, stores and the app are built once per execution environment, at init; each invocation only
 * converts the event, calls the app and converts the response.
 *
 * Environment (set by lib/infra/oci-registry.ts):
 * | variable                   | meaning                                                                  |
 * | -------------------------- | ------------------------------------------------------------------------ |
 * | `TABLE_NAME`               | the metadata table (required)                                            |
 * | `BUCKET_NAME`              | the blob bucket (required)                                               |
 * | `PRESIGN_EXPIRES_IN`       | lifetime of presigned blob GET URLs, seconds (default 900)               |
 * | `MAX_CHUNK_LENGTH`         | largest request body one upload request may carry, bytes (default 4 MiB) |
 * | `S3_PUBLIC_ENDPOINT`       | presign blob URLs for this S3 endpoint instead of the SDK's (emulation)  |
 * | `SIGNING_KEY_SECRET_ARN`   | token signing key secret; when set, Docker token auth is on              |
 * | `BLOB_HEAD_REDIRECT`       | `true`: blob HEADs are 307s to presigned S3 HEAD URLs (default `false`)  |
 * | `EVENT_BUS_NAME`           | registry events go to this EventBridge bus (`default`); none when unset  |
 * | `CACHE_REVALIDATE_SECONDS` | pull-through cache: a cached tag is re-checked upstream after (def. 300) |
 * | `PRICE_PER_GB_MONTH_USD`   | storage price for the usage report's cost estimate (default S3 Standard) |
 * | `CACHE_COPY_FUNCTION`      | pull-through cache: the copy function large blobs are copied by (async)  |
 * | `CACHE_COPY_IN_REQUEST_MAX_BYTES` | larger blobs are not copied within the pull (default 64 MiB)      |
 */
export interface RegistryApiConfig {
  table: string;
  bucket: string;
  presignExpiresIn?: number;
  maxChunkLength?: number;
  s3PublicEndpoint?: string;
  signingKeySecret?: string;
  /** Blob HEADs redirect to presigned S3 HEAD URLs. @default false */
  blobHeadRedirect?: boolean;
  /** Registry events go to this EventBridge bus (`default` for the account's default bus); none when absent. */
  eventBus?: string;
  /** Pull-through cache: how long a cached tag is served before the upstream is asked again (HEAD), seconds. @default 300 */
  cacheRevalidateSeconds?: number;
  /** USD per GB-month for the usage report's cost estimate. @default S3_STANDARD_USD_PER_GB_MONTH */
  pricePerGbMonthUsd?: number;
  /** Pull-through cache: the function that copies blobs too large for a request (lambdas/cache-blob-copy.ts). */
  cacheCopyFunction?: string;
  /** Pull-through cache: the largest blob copied within the pull that missed it. @default 64 MiB */
  cacheCopyInRequestMaxBytes?: number;
}

/** Reads {@link RegistryApiConfig} from the environment; throws naming the variable that is missing or wrong. */
export function configFromEnv(env: Record<string, string | undefined> = process.env): RegistryApiConfig {
  const required = (name: string): string => {
    const value = env[name];
    if (!value) throw new Error(`environment variable ${name} is required, got ${JSON.stringify(value)}`);
    return value;
  };
  const positiveInteger = (name: string): number | undefined => {
    const value = env[name];
    if (value === undefined || value === '') return undefined;
    const number = Number(value);
    if (!Number.isSafeInteger(number) || number < 1) throw new Error(`environment variable ${name} must be a positive integer, got "${value}"`);
    return number;
  };
  const config: RegistryApiConfig = { table: required('TABLE_NAME'), bucket: required('BUCKET_NAME') };
  const presignExpiresIn = positiveInteger('PRESIGN_EXPIRES_IN');
  if (presignExpiresIn !== undefined) config.presignExpiresIn = presignExpiresIn;
  const maxChunkLength = positiveInteger('MAX_CHUNK_LENGTH');
  if (maxChunkLength !== undefined) config.maxChunkLength = maxChunkLength;
  if (env.S3_PUBLIC_ENDPOINT) config.s3PublicEndpoint = env.S3_PUBLIC_ENDPOINT;
  if (env.SIGNING_KEY_SECRET_ARN) config.signingKeySecret = env.SIGNING_KEY_SECRET_ARN;
  if (env.EVENT_BUS_NAME) config.eventBus = env.EVENT_BUS_NAME;
  const cacheRevalidateSeconds = positiveInteger('CACHE_REVALIDATE_SECONDS');
  if (cacheRevalidateSeconds !== undefined) config.cacheRevalidateSeconds = cacheRevalidateSeconds;
  if (env.PRICE_PER_GB_MONTH_USD) {
    const price = Number(env.PRICE_PER_GB_MONTH_USD);
    if (!Number.isFinite(price) || price < 0) throw new Error(`environment variable PRICE_PER_GB_MONTH_USD must be a price in USD, got "${env.PRICE_PER_GB_MONTH_USD}"`);
    config.pricePerGbMonthUsd = price;
  }
  if (env.CACHE_COPY_FUNCTION) config.cacheCopyFunction = env.CACHE_COPY_FUNCTION;
  const copyInRequest = positiveInteger('CACHE_COPY_IN_REQUEST_MAX_BYTES');
  if (copyInRequest !== undefined) config.cacheCopyInRequestMaxBytes = copyInRequest;
  const headRedirect = env.BLOB_HEAD_REDIRECT;
  if (headRedirect !== undefined && headRedirect !== '') {
    if (headRedirect !== 'true' && headRedirect !== 'false') throw new Error(`environment variable BLOB_HEAD_REDIRECT must be "true" or "false", got "${headRedirect}"`);
    config.blobHeadRedirect = headRedirect === 'true';
  }
  return config;
}

/**
 * The SDK clients the registry uses; absent ones come from lib/storage/aws-clients.ts with the environment's
 * region and credentials. Pass clients from the same factory (tests and `dev:aws` do): only endpoints and
 * credentials may differ from production.
 */
export interface RegistryApiClients {
  dynamo?: DynamoDBClient;
  s3?: S3Client;
  /** Signs presigned GET URLs (another endpoint than `s3`'s). Default: from `s3PublicEndpoint`, else `s3`. */
  presignS3?: S3Client;
  secrets?: SecretsManagerClient;
  events?: EventBridgeClient;
  /** Starts background cache copies (`cacheCopyFunction`). */
  lambda?: LambdaClient;
}

export interface AwsRegistryAppOptions {
  clients?: RegistryApiClients;
  logger?: Logger;
  /** The token signing key (PKCS#8 PEM) when auth is on. Default: from the Secrets Manager secret. */
  signingKey?: () => Promise<string>;
}

/**
 * The registry app over DynamoDB and S3, as configured. Async only for auth (the signing key is read, or created,
 * once); without auth it resolves at once.
 */
export async function createAwsRegistryApp(config: RegistryApiConfig, options: AwsRegistryAppOptions = {}): Promise<HttpHandler> {
  const clients = options.clients ?? {};
  const dynamo = clients.dynamo ?? createDynamoDbClient();
  const s3 = clients.s3 ?? createS3Client();
  const presignS3 = clients.presignS3 ?? (config.s3PublicEndpoint ? createS3Client({ endpoint: config.s3PublicEndpoint }) : s3);
  const blobs = new S3BlobStore({
    s3,
    bucket: config.bucket,
    presignClient: presignS3,
    ...(config.presignExpiresIn !== undefined ? { presignExpiresIn: config.presignExpiresIn } : {}),
    ...(config.maxChunkLength !== undefined ? { maxChunkLength: config.maxChunkLength } : {}),
    ...(config.blobHeadRedirect !== undefined ? { headRedirect: config.blobHeadRedirect } : {}),
  });
  const metadata = new DynamoDbMetadataStore({ dynamo, table: config.table, bodies: new S3ManifestBodyStore({ s3, bucket: config.bucket }) });
  const history = new DynamoDbTagHistoryStore({ dynamo, table: config.table });
  const log = options.logger ?? logger;
  const events =
    config.eventBus !== undefined ? new EventBridgeEventSink({ client: clients.events ?? createEventBridgeClient(), bus: config.eventBus }) : undefined;
  const secrets = clients.secrets ?? createSecretsManagerClient();
  const cacheLog = (entry: Record<string, unknown>) => log[entry.level === 'info' ? 'info' : 'warn']({ message: String(entry.msg ?? 'pull-through cache'), ...entry });
  const copies =
    config.cacheCopyFunction !== undefined
      ? new BackgroundBlobCopies({ dynamo, table: config.table, lambda: clients.lambda ?? createLambdaClient(), functionName: config.cacheCopyFunction })
      : undefined;
  const cache = createAwsPullThroughCache({
    dynamo,
    table: config.table,
    secrets,
    blobs,
    metadata,
    revalidateSeconds: config.cacheRevalidateSeconds,
    missPolicy: new AwsBlobMissPolicy({ copies, ...(config.cacheCopyInRequestMaxBytes !== undefined ? { copyInRequestMaxBytes: config.cacheCopyInRequestMaxBytes } : {}), log: cacheLog }),
    log: cacheLog,
  });
  const registry = new Registry({
    cache,
    blobs,
    metadata,
    ...(events ? { events, onEventFailure: (error: unknown) => log.error('event not sent', { error: errorMessage(error) }) } : {}),
    history,
    policies: new PolicyCache(new DynamoDbPolicyStore({ dynamo, table: config.table })),
    // The pull was answered; the next one records it (throttling, a transaction on the item).
    onPullNotRecorded: (error: unknown, pull) => log.warn({ message: 'pull not recorded', ...pull }, asError(error)),
    usage: new DynamoDbUsageStore({ dynamo, table: config.table }),
    pricePerGbMonthUsd: config.pricePerGbMonthUsd ?? S3_STANDARD_USD_PER_GB_MONTH,
  });

  let auth: AuthService | undefined;
  if (config.signingKeySecret !== undefined || options.signingKey) {
    const secretId = config.signingKeySecret;
    const loadKey =
      options.signingKey ??
      (() => loadOrCreateSecretSigningKey(secrets, secretId!));
    const signer = await TokenSigner.fromPem(await loadKey(), SERVICE_NAME, SERVICE_NAME);
    auth = new AuthService({ identities: new DynamoDbIdentityStore({ dynamo, table: config.table }), signer });
  }
  return createRegistryApp({ registry, ...(auth ? { auth } : {}), log: requestLogger(options.logger ?? logger) });
}

/**
 * The app's per-request log line as a Powertools log entry: operation, repository, status and latency at info,
 * and for an unexpected failure the cause at error (the client only saw a generic 500).
 */
export function requestLogger(target: Logger): (line: RequestLog, cause?: unknown) => void {
  return (line, cause) => {
    if (cause !== undefined) target.error({ message: 'request failed', ...line }, asError(cause));
    else target.info({ message: 'request', ...line });
  };
}

export interface HandlerOptions {
  logger?: Logger;
}

export type RegistryApiHandler = MiddyfiedHandler<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, Context>;

/**
 * The Lambda handler around an app: event → request, app, response → result. Anything escaping (a bug in an
 * adapter, a failed init, middy's early timeout) becomes a 500 OCI error whose cause is logged, never sent. A
 * {@link ColdStart} is asked for the app on every invocation, so a failed initialisation is tried again; a
 * promise, once rejected, stays rejected (tests, dev:aws).
 */
export function createHandler(app: HttpHandler | Promise<HttpHandler> | ColdStart<HttpHandler>, options: HandlerOptions = {}): RegistryApiHandler {
  const log = options.logger ?? logger;
  let ready: () => Promise<HttpHandler>;
  if (app instanceof ColdStart) {
    ready = () => app.get();
  } else {
    const settled = Promise.resolve(app);
    // An init failure is reported by each invocation that awaits it, not as an unhandled rejection.
    settled.catch(() => undefined);
    ready = () => settled;
  }

  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, Context>(async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const request = toHttpRequest(event);
    const response = await (await ready())(request);
    return toApiGatewayResult(response, request.method);
  }).use({
    before: (request) => {
      log.addContext(request.context);
      log.appendKeys({ apiRequestId: request.event.requestContext?.requestId });
    },
    after: () => {
      log.resetKeys();
    },
    onError: async (request) => {
      log.error({ message: 'unhandled error', path: request.event.rawPath, method: request.event.requestContext?.http?.method }, asError(request.error));
      log.resetKeys();
      request.response = await toApiGatewayResult(renderError(request.error).response, request.event.requestContext?.http?.method ?? 'GET');
    },
  });
}

/** One logger per execution environment; POWERTOOLS_SERVICE_NAME and POWERTOOLS_LOG_LEVEL configure it. */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME });

/**
 * The deployed handler, built from the environment: the first attempt starts at init, and a failed one (the
 * signing key could not be read) is retried by the next invocation instead of failing every request of this
 * execution environment (lambdas/cold-start.ts). Outside Lambda (tests, the emulator importing the factories)
 * `TABLE_NAME` is unset and every invocation answers 500, with the configuration error logged.
 */
export const handler: RegistryApiHandler = createHandler(deployedApp());

function deployedApp(): ColdStart<HttpHandler> {
  const app = new ColdStart(appFromEnvironment);
  // Importing this module elsewhere (dev:aws, tests) starts nothing.
  if (process.env.TABLE_NAME !== undefined) {
    app.start((error) => logger.error({ message: 'initialisation failed; the next invocation retries' }, asError(error)));
  }
  return app;
}

async function appFromEnvironment(): Promise<HttpHandler> {
  if (process.env.TABLE_NAME === undefined) {
    throw new Error('TABLE_NAME is not set: outside Lambda, build the handler with createHandler(app)');
  }
  return createAwsRegistryApp(configFromEnv());
}
