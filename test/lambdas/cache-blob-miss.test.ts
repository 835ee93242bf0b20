import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsRegistryApp } from '../../lambdas/registry-api.ts';
import { createBlobCopyHandler } from '../../lambdas/cache-blob-copy.ts';
import type { HttpHandler } from '../../lib/http/types.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startAwsLocal, type AwsLocal } from '../../lib/dev/aws-local.ts';
import { startLambdaLocal, type LambdaLocal } from '../../lib/dev/lambda-local.ts';
import { startSecretsManagerLocal, type SecretsManagerLocal } from '../../lib/dev/secrets-manager-local.ts';
import { listen } from '../../lib/server/listen.ts';
import { createLambdaClient, createSecretsManagerClient } from '../../lib/storage/aws-clients.ts';
import { createLocalResources, resourceNames } from '../../lib/storage/aws-resources.ts';
import { DynamoDbCacheRuleStore } from '../../lib/storage/dynamodb/dynamodb-cache-rule-store.ts';
import { DynamoDbMetadataStore } from '../../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { cacheFillKey } from '../../lib/storage/dynamodb/keys.ts';
import { DynamoDbTable } from '../../lib/storage/dynamodb/dynamodb-table.ts';
import { call } from '../support/app-client.ts';

/**
 * A pull-through blob miss in the registry function, over DynamoDB Local, the strict s3rver, the local Secrets
 * Manager and the local Lambda (which records invocations and runs nothing: the copy handler is run by the test).
 * Blobs up to 8 MiB (the copy-in-request limit here) are copied within the GET; larger ones are redirected to a URL
 * the upstream offers without our credentials, or answered 503, while the copy function is invoked (Event) once.
 */

const MiB = 1024 * 1024;
const LIMIT = 8 * MiB;
const COPY_FUNCTION = 'cache-copy';
const names = resourceNames('ocireg-cache-miss');
const silent = new Logger({ logLevel: 'SILENT' });

let aws: AwsLocal;
let secretsManager: SecretsManagerLocal;
let secrets: SecretsManagerClient;
let lambda: LambdaLocal;
let lambdaClient: LambdaClient;
let upstream: LoopbackUpstream;
let app: HttpHandler;

const small = randomBytes(3 * MiB);
const large = randomBytes(LIMIT + 3 * MiB);
const sha = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

beforeAll(async () => {
  aws = await startAwsLocal();
  await createLocalResources(aws.dynamo, aws.s3, names);
  secretsManager = await startSecretsManagerLocal({ region: LOCAL_REGION });
  secrets = createSecretsManagerClient({ endpoint: secretsManager.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  lambda = await startLambdaLocal({ [COPY_FUNCTION]: async () => undefined });
  lambdaClient = createLambdaClient({ endpoint: lambda.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  upstream = await startLoopbackUpstream({ [sha(small)]: small, [sha(large)]: large });
  const rules = new DynamoDbCacheRuleStore({ dynamo: aws.dynamo, table: names.table });
  await rules.put({ prefix: 'hub', upstream: upstream.url });
  app = await createAwsRegistryApp(
    { table: names.table, bucket: names.bucket, cacheCopyFunction: COPY_FUNCTION, cacheCopyInRequestMaxBytes: LIMIT },
    { clients: { dynamo: aws.dynamo, s3: aws.s3, secrets, lambda: lambdaClient }, logger: silent },
  );
}, 120_000);

afterAll(async () => {
  lambdaClient?.destroy();
  secrets?.destroy();
  await lambda?.close();
  await upstream?.close();
  await secretsManager?.close();
  await aws?.stop();
});

const copyHandler = () => createBlobCopyHandler({ table: names.table, bucket: names.bucket }, { dynamo: aws.dynamo, s3: aws.s3, secrets }, silent);
const metadata = () => new DynamoDbMetadataStore({ dynamo: aws.dynamo, table: names.table });
const s3Host = () => new URL(aws.endpoints.s3).host;
/** A blob over the limit that the upstream holds and no pull has asked for yet. */
function newLargeBlob(): Buffer {
  const content = randomBytes(LIMIT + MiB);
  upstream.blobs[sha(content)] = content;
  return content;
}
/** Payloads of the copy function's invocations after the first `before`. */
const invokedSince = (before: number) => lambda.invocations.slice(before).map((invocation) => invocation.payload);

async function fetchBytes(url: string): Promise<Buffer> {
  return Buffer.from(await (await fetch(url)).arrayBuffer());
}

describe('pull-through blob miss in the registry function', () => {
  it('copies a blob under the limit within the GET, then redirects to S3; no background copy', async () => {
    // Act
    const response = await call(app, 'GET', `/v2/hub/direct/small/blobs/${sha(small)}`);

    // Assess
    expect(response.status).toBe(307);
    expect(new URL(response.headers.location!).host).toBe(s3Host());
    expect(sha(await fetchBytes(response.headers.location!))).toBe(sha(small));
    expect((await metadata().getLinkedBlob('hub/direct/small', sha(small)))?.size).toBe(small.length);
    expect(lambda.invocations).toEqual([]);
  });

  it('redirects a larger blob to the upstream blob URL of an anonymous upstream and invokes the copy function once, however many pull it meanwhile', async () => {
    const digest = sha(large);
    const before = lambda.invocations.length;

    // Act
    const first = await call(app, 'GET', `/v2/hub/direct/large/blobs/${digest}`);
    const second = await call(app, 'GET', `/v2/hub/direct/large/blobs/${digest}`);

    // Assess
    expect([first.status, second.status]).toEqual([307, 307]);
    expect(first.headers.location).toBe(`${upstream.url}/v2/direct/large/blobs/${digest}`);
    expect(sha(await fetchBytes(first.headers.location!))).toBe(digest);
    expect(lambda.invocations.slice(before)).toEqual([{ functionName: COPY_FUNCTION, invocationType: 'Event', payload: { name: 'hub/direct/large', digest } }]);
    expect(await metadata().getBlob(digest)).toBeUndefined();
  });

  it('the copy handler stores the blob (multipart, verified) and clears its marker; the next pull is served from S3', async () => {
    const digest = sha(large);
    const event = lambda.invocations.find((invocation) => (invocation.payload as { digest: string }).digest === digest)!.payload as { name: string; digest: string };
    const calls = aws.s3Calls;
    calls.reset();

    // Act
    const copied = await copyHandler()(event);
    const marker = await new DynamoDbTable(aws.dynamo, names.table).get(cacheFillKey(digest));
    const after = await call(app, 'GET', `/v2/hub/direct/large/blobs/${digest}`);

    // Assess
    expect(copied).toEqual({ digest, size: large.length });
    expect(calls.snapshot()).toMatchObject({ CreateMultipartUpload: 1, UploadPart: 2, CompleteMultipartUpload: 1 });
    expect(marker).toBeUndefined();
    expect(after.status).toBe(307);
    expect(new URL(after.headers.location!).host).toBe(s3Host());
    expect(sha(await fetchBytes(after.headers.location!))).toBe(digest);
  });

  it("redirects to the upstream's own redirect target (a CDN) when the upstream answers the blob GET with one", async () => {
    const content = newLargeBlob();
    const response = await call(app, 'GET', `/v2/hub/cdn/large/blobs/${sha(content)}`);
    expect(response.status).toBe(307);
    expect(response.headers.location).toBe(`${upstream.url}/cdn/${sha(content).slice(7)}?signature=ok`);
    expect(sha(await fetchBytes(response.headers.location!))).toBe(sha(content));
  });

  it('answers 503 UNAVAILABLE when the upstream serves the blob only behind its token, and still starts the copy', async () => {
    // Prepare: another blob, so that no copy of it is running
    const content = newLargeBlob();
    const before = lambda.invocations.length;

    const response = await call(app, 'GET', `/v2/hub/token/large/blobs/${sha(content)}`);

    expect(response.status).toBe(503);
    expect(response.json().errors[0]).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('being copied into the cache') });
    expect(invokedSince(before)).toEqual([{ name: 'hub/token/large', digest: sha(content) }]);
  });

  it('answers a HEAD of a larger blob 200 with the upstream\'s size and digest, and starts its copy once however many HEADs come', async () => {
    // Prepare
    const content = newLargeBlob();
    const before = lambda.invocations.length;

    // Act
    const first = await call(app, 'HEAD', `/v2/hub/direct/headed/blobs/${sha(content)}`);
    const second = await call(app, 'HEAD', `/v2/hub/direct/headed/blobs/${sha(content)}`);

    // Assess
    for (const response of [first, second]) {
      expect(response.status).toBe(200);
      expect(response.headers['content-length']).toBe(String(content.length));
      expect(response.headers['docker-content-digest']).toBe(sha(content));
    }
    expect(invokedSince(before)).toEqual([{ name: 'hub/direct/headed', digest: sha(content) }]);
    expect(await metadata().getBlob(sha(content))).toBeUndefined();
  });

  it('answers a HEAD 200 also when the upstream serves the blob only behind its token (the size is known), and starts the copy', async () => {
    const content = newLargeBlob();
    const before = lambda.invocations.length;

    const response = await call(app, 'HEAD', `/v2/hub/token/headed/blobs/${sha(content)}`);

    expect(response.status).toBe(200);
    expect(response.headers['content-length']).toBe(String(content.length));
    expect(invokedSince(before)).toEqual([{ name: 'hub/token/headed', digest: sha(content) }]);
  });

  it('redirects a Range GET of a larger blob to the upstream like a whole GET; 416 past its end; 503 when only the token gets it', async () => {
    const content = newLargeBlob();

    const direct = await call(app, 'GET', `/v2/hub/direct/ranged/blobs/${sha(content)}`, { headers: { range: 'bytes=100-199' } });
    const cdn = await call(app, 'GET', `/v2/hub/cdn/ranged/blobs/${sha(content)}`, { headers: { range: 'bytes=100-199' } });
    const past = await call(app, 'GET', `/v2/hub/direct/ranged/blobs/${sha(content)}`, { headers: { range: `bytes=${content.length}-` } });
    const token = await call(app, 'GET', `/v2/hub/token/ranged/blobs/${sha(content)}`, { headers: { range: 'bytes=100-199' } });

    expect(direct.status).toBe(307);
    expect(direct.headers.location).toBe(`${upstream.url}/v2/direct/ranged/blobs/${sha(content)}`);
    expect(direct.headers['docker-content-digest']).toBe(sha(content));
    expect(cdn.status).toBe(307);
    expect(cdn.headers.location).toBe(`${upstream.url}/cdn/${sha(content).slice(7)}?signature=ok`);
    expect(past.status).toBe(416);
    expect(token.status).toBe(503);
    expect(token.json().errors[0]).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('being copied into the cache') });
  });

  it('answers 404 BLOB_UNKNOWN to a HEAD, a GET and a Range GET of a blob the upstream does not have, and starts no copy', async () => {
    const absent = sha(randomBytes(16));
    const before = lambda.invocations.length;

    const answers = [
      await call(app, 'HEAD', `/v2/hub/direct/absent/blobs/${absent}`),
      await call(app, 'GET', `/v2/hub/direct/absent/blobs/${absent}`),
      await call(app, 'GET', `/v2/hub/direct/absent/blobs/${absent}`, { headers: { range: 'bytes=0-9' } }),
    ];

    expect(answers.map((answer) => answer.status)).toEqual([404, 404, 404]);
    expect(lambda.invocations.length).toBe(before);
  });

  it('the copy handler refuses bytes that do not match the digest: nothing recorded, marker cleared for a later pull', async () => {
    const content = randomBytes(LIMIT + MiB);
    const digest = sha(content);
    const corrupt = Buffer.from(content);
    corrupt[100] = corrupt[100]! ^ 0xff;
    upstream.blobs[digest] = corrupt;

    const first = await call(app, 'GET', `/v2/hub/direct/corrupt/blobs/${digest}`);
    const error = await copyHandler()({ name: 'hub/direct/corrupt', digest }).catch((e: unknown) => e);

    expect(first.status, first.body.toString()).toBe(307);
    expect(error).toMatchObject({ code: 'DIGEST_INVALID' });
    expect(await metadata().getBlob(digest)).toBeUndefined();
    expect(await new DynamoDbTable(aws.dynamo, names.table).get(cacheFillKey(digest))).toBeUndefined();
  });
});

interface LoopbackUpstream {
  url: string;
  blobs: Record<string, Buffer>;
  close(): Promise<void>;
}

/**
 * A registry upstream on loopback: `/v2/direct/…` serves blobs to anyone, `/v2/cdn/…` redirects to a signed `/cdn/`
 * URL, `/v2/token/…` wants a Bearer token (from its `/token` realm) and then serves the bytes itself.
 */
async function startLoopbackUpstream(blobs: Record<string, Buffer>): Promise<LoopbackUpstream> {
  let base = '';
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    const serve = (digest: string) => {
      const bytes = blobs[digest];
      if (!bytes) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length), 'docker-content-digest': digest });
      if (req.method === 'HEAD') return res.end();
      res.end(bytes);
    };
    if (url.pathname === '/token') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ token: 'upstream-token' }));
    }
    const cdn = /^\/cdn\/([a-f0-9]{64})$/.exec(url.pathname);
    if (cdn) return url.searchParams.get('signature') === 'ok' ? serve(`sha256:${cdn[1]}`) : res.writeHead(403).end();
    const blob = /^\/v2\/(direct|cdn|token)\/.+\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url.pathname);
    if (!blob) return res.writeHead(404).end();
    const [, mode, digest] = blob as unknown as [string, string, string];
    if (mode === 'cdn') return res.writeHead(307, { location: `${base}/cdn/${digest.slice(7)}?signature=ok` }).end();
    if (mode === 'token' && req.headers.authorization !== 'Bearer upstream-token') {
      return res.writeHead(401, { 'www-authenticate': `Bearer realm="${base}/token",service="upstream"` }).end();
    }
    serve(digest);
  });
  const listening = await listen(server, 0, '127.0.0.1');
  base = listening.url;
  return {
    url: base,
    blobs,
    close: () => {
      const closed = listening.close();
      server.closeAllConnections();
      return closed;
    },
  };
}
