import { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { ColdStart } from '../../lambdas/cold-start.ts';
import { configFromEnv, createAwsRegistryApp, createHandler, requestLogger } from '../../lambdas/registry-api.ts';
import { startSecretsManagerLocal } from '../../lib/dev/secrets-manager-local.ts';
import { startAwsJsonFront } from '../support/aws-json-front.ts';
import { TokenSigner } from '../../lib/auth/token-signer.ts';
import { createRegistryApp } from '../../lib/http/app.ts';
import type { HttpHandler, HttpRequest } from '../../lib/http/types.ts';
import { readAll } from '../../lib/registry/bytes.ts';
import type { BlobRead } from '../../lib/registry/ports.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { createDynamoDbClient, createS3Client, createSecretsManagerClient } from '../../lib/storage/aws-clients.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { imageManifest, randomBlob } from '../support/builders.ts';

// ---- builders ----------------------------------------------------------------------------------------------------

interface EventOptions {
  headers?: Record<string, string>;
  cookies?: string[];
  /** Sent base64 with isBase64Encoded, as the gateway passes binary bodies. */
  body?: Uint8Array;
  text?: string;
}

/** An HTTP API payload 2.0 event as API Gateway builds it for `ANY /v2/{proxy+}`. */
function apiEvent(method: string, url: string, options: EventOptions = {}): APIGatewayProxyEventV2 {
  const parsed = new URL(url, 'https://abc123.execute-api.eu-west-1.amazonaws.com');
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey: 'ANY /v2/{proxy+}',
    rawPath: parsed.pathname,
    rawQueryString: parsed.search.slice(1),
    headers: { host: parsed.host, 'x-forwarded-proto': 'https', 'user-agent': 'test', ...options.headers },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: parsed.host,
      domainPrefix: 'abc123',
      http: { method, path: parsed.pathname, protocol: 'HTTP/1.1', sourceIp: '198.51.100.7', userAgent: 'test' },
      requestId: 'gateway-request-1',
      routeKey: 'ANY /v2/{proxy+}',
      stage: '$default',
      time: '01/Jan/2026:00:00:00 +0000',
      timeEpoch: 1767225600000,
    },
    isBase64Encoded: false,
  };
  if (options.cookies) event.cookies = options.cookies;
  if (options.body !== undefined) {
    event.body = Buffer.from(options.body).toString('base64');
    event.isBase64Encoded = true;
  } else if (options.text !== undefined) {
    event.body = options.text;
  }
  return event;
}

function lambdaContext(): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'registry-api',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:registry-api',
    memoryLimitInMB: '1024',
    awsRequestId: 'lambda-request-1',
    logGroupName: '/aws/lambda/registry-api',
    logStreamName: 'stream',
    getRemainingTimeInMillis: () => 29_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

function silentLogger() {
  const logger = new Logger({ serviceName: 'ocireg-test', logLevel: 'SILENT' });
  return { logger, info: vi.spyOn(logger, 'info'), error: vi.spyOn(logger, 'error') };
}

function memoryHandler(options: { maxChunkLength?: number; blobs?: MemoryBlobStore } = {}) {
  const { logger, info, error } = silentLogger();
  const blobs = options.blobs ?? new MemoryBlobStore(options.maxChunkLength === undefined ? {} : { maxChunkLength: options.maxChunkLength });
  const registry = new Registry({ blobs, metadata: new MemoryMetadataStore() });
  const app = createRegistryApp({ registry, log: requestLogger(logger) });
  const handler = createHandler(app, { logger });
  const invoke = async (event: APIGatewayProxyEventV2) => (await handler(event, lambdaContext())) as APIGatewayProxyStructuredResultV2;
  return { invoke, info, error };
}

function bodyBytes(result: APIGatewayProxyStructuredResultV2): Buffer {
  return Buffer.from(result.body ?? '', result.isBase64Encoded ? 'base64' : 'utf8');
}

function bodyJson(result: APIGatewayProxyStructuredResultV2): any {
  return JSON.parse(bodyBytes(result).toString('utf8'));
}

// ---- tests -------------------------------------------------------------------------------------------------------

describe('registry-api handler', () => {
  it('answers GET /v2/ with 200, the API version header and a JSON body sent as text', async () => {
    const { invoke, info } = memoryHandler();

    const result = await invoke(apiEvent('GET', '/v2/'));

    expect(result.statusCode).toBe(200);
    expect(result.headers?.['docker-distribution-api-version']).toBe('registry/2.0');
    expect(result.headers?.['content-type']).toBe('application/json');
    expect(result.isBase64Encoded).toBe(false);
    expect(JSON.parse(result.body!)).toEqual({});
    expect(info).toHaveBeenCalledWith(expect.objectContaining({ message: 'request', method: 'GET', path: '/v2/', status: 200, operation: 'base.get' }));
  });

  it('stores a monolithic upload from a base64 body, even without Content-Length, and serves it back base64', async () => {
    const { invoke } = memoryHandler();
    const blob = randomBlob(3000);

    // A chunked client request reaches Lambda without Content-Length: the handler takes the body's real length.
    const put = await invoke(apiEvent('POST', `/v2/team/app/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes, headers: { 'content-type': 'application/octet-stream' } }));
    const get = await invoke(apiEvent('GET', `/v2/team/app/blobs/${blob.digest}`));

    expect(put.statusCode).toBe(201);
    expect(put.headers?.['docker-content-digest']).toBe(blob.digest);
    expect(get.statusCode).toBe(200);
    expect(get.isBase64Encoded).toBe(true);
    expect(bodyBytes(get).equals(blob.bytes)).toBe(true);
    expect(get.headers?.['content-length']).toBe('3000');
  });

  it('returns manifests byte for byte, base64, and HEAD without a body', async () => {
    const { invoke } = memoryHandler();
    const config = randomBlob(100);
    const layer = randomBlob(200);
    for (const blob of [config, layer]) {
      await invoke(apiEvent('POST', `/v2/team/app/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes }));
    }
    const manifest = imageManifest(config, [layer]);

    const put = await invoke(apiEvent('PUT', '/v2/team/app/manifests/1.0', { body: manifest.bytes, headers: { 'content-type': manifest.mediaType } }));
    const get = await invoke(apiEvent('GET', '/v2/team/app/manifests/1.0', { headers: { accept: manifest.mediaType } }));
    const head = await invoke(apiEvent('HEAD', '/v2/team/app/manifests/1.0'));

    expect(put.statusCode).toBe(201);
    expect(get.isBase64Encoded).toBe(true);
    expect(bodyBytes(get).equals(manifest.bytes)).toBe(true);
    expect(head.statusCode).toBe(200);
    expect(head.body ?? '').toBe('');
    expect(head.headers?.['content-length']).toBe(String(manifest.bytes.byteLength));
  });

  it('takes a body in either gateway encoding: a manifest as JSON text and its blobs base64, each byte for byte', async () => {
    const { invoke } = memoryHandler();
    const config = randomBlob(100);
    const layer = randomBlob(200);
    // Non-ASCII text: a decoder that took the string as Latin-1, or a length taken from the string, changes the digest.
    const manifest = imageManifest(config, [layer], { annotations: { 'org.opencontainers.image.title': 'café 🐳' } });
    const uploads = [config, layer].map((blob) => invoke(apiEvent('POST', `/v2/team/app/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes, headers: { 'content-type': 'application/octet-stream' } })));

    const blobs = await Promise.all(uploads);
    const put = await invoke(apiEvent('PUT', '/v2/team/app/manifests/1.0', { text: manifest.bytes.toString('utf8'), headers: { 'content-type': 'application/json', 'content-length': String(manifest.bytes.byteLength) } }));
    const get = await invoke(apiEvent('GET', `/v2/team/app/manifests/${manifest.digest}`, { headers: { accept: manifest.mediaType } }));

    expect(blobs.map((result) => result.statusCode)).toEqual([201, 201]);
    expect(put.statusCode).toBe(201);
    expect(put.headers?.['docker-content-digest']).toBe(manifest.digest);
    expect(bodyBytes(get).equals(manifest.bytes)).toBe(true);
  });

  it('reads rawPath as the gateway delivers it, decoded: a literal % is part of the name, refused with 400, not decoded again', async () => {
    const { invoke } = memoryHandler();
    const blob = randomBlob(10);
    await invoke(apiEvent('POST', `/v2/team/app/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes }));
    const event = (path: string) => ({ ...apiEvent('HEAD', '/'), rawPath: path, requestContext: { ...apiEvent('HEAD', '/').requestContext, http: { ...apiEvent('HEAD', '/').requestContext.http, path } } });

    const plain = await invoke(event(`/v2/team/app/blobs/${blob.digest}`));
    // The client sent /v2/team/ap%2570/…: the gateway decoded it once, to a name containing "%70".
    const percent = await invoke(event(`/v2/team/ap%70/blobs/${blob.digest}`));

    expect(plain.statusCode).toBe(200);
    expect(percent.statusCode).toBe(400);
  });

  it('passes a 307 redirect through with its Location', async () => {
    class RedirectingBlobStore extends MemoryBlobStore {
      override async read(location: string): Promise<BlobRead> {
        return { kind: 'redirect', url: `https://blobs.s3.eu-west-1.amazonaws.com/${location}?X-Amz-Signature=abc` };
      }
    }
    const { invoke } = memoryHandler({ blobs: new RedirectingBlobStore() });
    const blob = randomBlob(64);
    await invoke(apiEvent('POST', `/v2/team/app/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes }));

    const result = await invoke(apiEvent('GET', `/v2/team/app/blobs/${blob.digest}`));

    expect(result.statusCode).toBe(307);
    expect(result.headers?.location).toMatch(/^https:\/\/blobs\.s3\.eu-west-1\.amazonaws\.com\/.+\?X-Amz-Signature=abc$/);
    expect(result.headers?.['docker-content-digest']).toBe(blob.digest);
    expect(result.body ?? '').toBe('');
  });

  it('hands the app duplicate headers joined by commas, cookies as one Cookie header, and the source address', async () => {
    let seen: HttpRequest | undefined;
    const echo: HttpHandler = async (request) => {
      seen = request;
      return { status: 204, headers: { 'x-one': 'a', 'set-cookie': 'session=1; Secure' } };
    };
    const { logger } = silentLogger();
    const handler = createHandler(echo, { logger });

    // API Gateway joins repeated request headers with commas and moves Cookie headers into `cookies`.
    const result = (await handler(
      apiEvent('GET', '/v2/team/app/tags/list?n=10&last=b', {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json' },
        cookies: ['a=1', 'b=2'],
      }),
      lambdaContext(),
    )) as APIGatewayProxyStructuredResultV2;

    expect(seen?.method).toBe('GET');
    expect(seen?.path).toBe('/v2/team/app/tags/list');
    expect(seen?.query.get('n')).toBe('10');
    expect(seen?.query.get('last')).toBe('b');
    expect(seen?.headers.get('Accept')?.split(',')).toEqual(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);
    expect(seen?.headers.get('cookie')).toBe('a=1; b=2');
    expect(seen?.sourceIp).toBe('198.51.100.7');
    expect(seen?.scheme).toBe('https');
    expect(await readAll(seen!.body)).toHaveLength(0);
    expect(result.statusCode).toBe(204);
    expect(result.headers).toEqual({ 'x-one': 'a' });
    expect(result.cookies).toEqual(['session=1; Secure']);
  });

  it('turns an error escaping the app into a 500 OCI body without the message, and logs the cause', async () => {
    const { logger, error } = silentLogger();
    const cause = new Error('connect ECONNREFUSED db-password=hunter2');
    const handler = createHandler(async () => {
      throw cause;
    }, { logger });

    const result = (await handler(apiEvent('GET', '/v2/team/app/tags/list'), lambdaContext())) as APIGatewayProxyStructuredResultV2;

    expect(result.statusCode).toBe(500);
    expect(result.headers?.['content-type']).toMatch(/^application\/json/);
    expect(bodyJson(result)).toEqual({ errors: [{ code: 'UNKNOWN', message: 'internal server error', detail: null }] });
    expect(result.body).not.toContain('hunter2');
    expect(error).toHaveBeenCalledWith(expect.objectContaining({ message: 'unhandled error', path: '/v2/team/app/tags/list' }), cause);
  });

  it('answers a failure inside the registry with a generic 500 and logs the cause with the request line', async () => {
    class FailingBlobStore extends MemoryBlobStore {
      override async startUpload(): Promise<never> {
        throw new Error('S3 said: AccessDenied for arn:aws:iam::123456789012:role/secret');
      }
    }
    const { invoke, error } = memoryHandler({ blobs: new FailingBlobStore() });

    const result = await invoke(apiEvent('POST', '/v2/team/app/blobs/uploads/'));

    expect(result.statusCode).toBe(500);
    expect(bodyJson(result).errors[0].code).toBe('UNKNOWN');
    expect(result.body).not.toContain('AccessDenied');
    expect(error).toHaveBeenCalledWith(expect.objectContaining({ message: 'request failed', status: 500, name: 'team/app' }), expect.objectContaining({ message: expect.stringContaining('AccessDenied') }));
  });

  it('answers a failed initialisation with 500 on every request', async () => {
    const { logger, error } = silentLogger();
    const handler = createHandler(Promise.reject(new Error('secret not found')), { logger });

    const result = (await handler(apiEvent('GET', '/v2/'), lambdaContext())) as APIGatewayProxyStructuredResultV2;

    expect(result.statusCode).toBe(500);
    expect(bodyJson(result).errors[0].code).toBe('UNKNOWN');
    expect(error).toHaveBeenCalledTimes(1);
  });

  it.each([
    ['refused once (AccessDeniedException, as while a new grant propagates)', 1, 'AccessDeniedException'],
    ['throttled through all of the SDK client\'s attempts (ThrottlingException)', 3, 'ThrottlingException'],
  ])('retries an initialisation that failed on Secrets Manager %s, and keeps the app once it succeeds', async (_, failures, errorName) => {
    const secrets = await startSecretsManagerLocal();
    const secretId = secrets.createSecret('ocireg-signing-key', 'RandomPlaceholder0123456789abcdef');
    const front = await startAwsJsonFront(secrets.listener, (_call, index) => (index < failures ? { error: errorName, status: 400 } : undefined));
    const secretsClient = createSecretsManagerClient({ endpoint: front.endpoint, region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    // Clients pointing nowhere: the challenge needs no storage call.
    const nowhere = { endpoint: 'http://127.0.0.1:9', region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } };
    const { logger, error } = silentLogger();
    const clients = { dynamo: createDynamoDbClient(nowhere), s3: createS3Client(nowhere), secrets: secretsClient };
    const handler = createHandler(new ColdStart(() => createAwsRegistryApp({ table: 'table', bucket: 'bucket', signingKeySecret: secretId }, { clients, logger })), { logger });
    try {
      const first = (await handler(apiEvent('GET', '/v2/'), lambdaContext())) as APIGatewayProxyStructuredResultV2;
      const second = (await handler(apiEvent('GET', '/v2/'), lambdaContext())) as APIGatewayProxyStructuredResultV2;
      const callsAfterSecond = front.calls.length;
      const third = (await handler(apiEvent('GET', '/v2/'), lambdaContext())) as APIGatewayProxyStructuredResultV2;

      expect(first.statusCode).toBe(500);
      expect(error).toHaveBeenCalledWith(expect.objectContaining({ message: 'unhandled error' }), expect.objectContaining({ name: errorName }));
      expect(second.statusCode).toBe(401);
      expect(second.headers?.['www-authenticate']).toMatch(/^Bearer realm=/);
      expect(third.statusCode).toBe(401);
      expect(front.calls.length).toBe(callsAfterSecond);
      expect(front.calls.slice(failures).map((call) => call.operation)).toEqual(['GetSecretValue', 'PutSecretValue', 'GetSecretValue']);
    } finally {
      secretsClient.destroy();
      await front.close();
      await secrets.close();
    }
  });

  it('refuses a PATCH over the maximum chunk length with the 413 OCI error', async () => {
    const { invoke } = memoryHandler({ maxChunkLength: 1024 });
    const started = await invoke(apiEvent('POST', '/v2/team/app/blobs/uploads/'));
    const location = String(started.headers!.location);

    const result = await invoke(apiEvent('PATCH', location, { body: randomBlob(1025).bytes, headers: { 'content-type': 'application/octet-stream', 'content-length': '1025' } }));
    // Nothing of the refused body was kept: the next chunk still starts at 0.
    const next = await invoke(apiEvent('PATCH', location, { body: randomBlob(10).bytes, headers: { 'content-range': '0-9' } }));

    expect(started.headers?.['oci-chunk-max-length']).toBe('1024');
    expect(result.statusCode).toBe(413);
    expect(bodyJson(result).errors[0].code).toBe('PAYLOAD_TOO_LARGE');
    expect(next.statusCode).toBe(202);
    expect(next.headers?.range).toBe('0-9');
  });

  it('accepts a PATCH of exactly the maximum chunk length', async () => {
    const { invoke } = memoryHandler({ maxChunkLength: 1024 });
    const started = await invoke(apiEvent('POST', '/v2/team/app/blobs/uploads/'));

    const result = await invoke(apiEvent('PATCH', String(started.headers!.location), { body: randomBlob(1024).bytes }));

    expect(result.statusCode).toBe(202);
    expect(result.headers?.range).toBe('0-1023');
  });
});

describe('registry-api configuration', () => {
  it('reads table, bucket, limits, the public S3 endpoint and the signing key secret from the environment', () => {
    const config = configFromEnv({
      TABLE_NAME: 'table',
      BUCKET_NAME: 'bucket',
      PRESIGN_EXPIRES_IN: '300',
      MAX_CHUNK_LENGTH: '1048576',
      S3_PUBLIC_ENDPOINT: 'http://localhost:4568',
      SIGNING_KEY_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:key',
      BLOB_HEAD_REDIRECT: 'true',
    });

    expect(config).toEqual({
      table: 'table',
      bucket: 'bucket',
      presignExpiresIn: 300,
      maxChunkLength: 1048576,
      s3PublicEndpoint: 'http://localhost:4568',
      signingKeySecret: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:key',
      blobHeadRedirect: true,
    });
    expect(configFromEnv({ TABLE_NAME: 't', BUCKET_NAME: 'b' }).blobHeadRedirect).toBeUndefined();
    expect(() => configFromEnv({ TABLE_NAME: 't', BUCKET_NAME: 'b', BLOB_HEAD_REDIRECT: 'yes' })).toThrow(/BLOB_HEAD_REDIRECT must be "true" or "false", got "yes"/);
  });

  it('names the variable that is missing or malformed', () => {
    expect(() => configFromEnv({ BUCKET_NAME: 'b' })).toThrow(/TABLE_NAME is required/);
    expect(() => configFromEnv({ TABLE_NAME: 't', BUCKET_NAME: 'b', MAX_CHUNK_LENGTH: '4MB' })).toThrow(/MAX_CHUNK_LENGTH must be a positive integer, got "4MB"/);
  });

  it('with a signing key, challenges an anonymous GET /v2/ with a Bearer realm on the host and scheme the client used', async () => {
    // Clients pointing nowhere: the challenge needs no storage call.
    const nowhere = { endpoint: 'http://127.0.0.1:9', region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } };
    const { logger } = silentLogger();
    const app = createAwsRegistryApp(
      { table: 'table', bucket: 'bucket' },
      { clients: { dynamo: createDynamoDbClient(nowhere), s3: createS3Client(nowhere) }, logger, signingKey: () => TokenSigner.generatePem() },
    );
    const handler = createHandler(app, { logger });

    const result = (await handler(apiEvent('GET', '/v2/'), lambdaContext())) as APIGatewayProxyStructuredResultV2;

    expect(result.statusCode).toBe(401);
    expect(result.headers?.['www-authenticate']).toBe('Bearer realm="https://abc123.execute-api.eu-west-1.amazonaws.com/token",service="ocireg"');
    expect(bodyJson(result).errors[0].code).toBe('UNAUTHORIZED');
  });
});
