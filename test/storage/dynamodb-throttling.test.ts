import { randomBytes } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAwsRegistryApp } from '../../lambdas/registry-api.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startAwsLocal, type AwsLocal } from '../../lib/dev/aws-local.ts';
import type { HttpHandler } from '../../lib/http/types.ts';
import { digestOf } from '../../lib/registry/digest.ts';
import { isOciError } from '../../lib/registry/errors.ts';
import { createDynamoDbClient } from '../../lib/storage/aws-clients.ts';
import { createLocalResources, resourceNames } from '../../lib/storage/aws-resources.ts';
import { DynamoDbMetadataStore } from '../../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { DynamoDbTagHistoryStore } from '../../lib/storage/dynamodb/dynamodb-tag-history-store.ts';
import { THROTTLED_ATTEMPTS } from '../../lib/storage/dynamodb/throttling.ts';
import { S3ManifestBodyStore } from '../../lib/storage/s3/s3-manifest-body-store.ts';
import { call } from '../support/app-client.ts';
import { startAwsJsonFront, type AwsJsonCall, type AwsJsonFront, type FrontAnswer } from '../support/aws-json-front.ts';
import { imageManifest, randomBlob } from '../support/builders.ts';
import { allUnprocessed, forwardTo, provisionedThroughputExceeded, throttledTransaction, throttlingException } from '../support/dynamodb-throttling-front.ts';
import { storedManifest } from './metadata-store.contract.ts';

/**
 * DynamoDB throttling met for real: the SDK client talks to a loopback front before DynamoDB Local that answers
 * chosen requests with DynamoDB's throttling errors (test/support/dynamodb-throttling-front.ts) and passes the
 * rest. The front counts what reached it, so each test sees the retries the SDK and the store made.
 */

/** The store's attempts of a throttled transaction or batch read. */
const STORE_ATTEMPTS = THROTTLED_ATTEMPTS;
/** The DynamoDB client's attempts per request (the SDK's default for DynamoDB: 4), read from the client. */
let SDK_ATTEMPTS: number;

let aws: AwsLocal;
let front: AwsJsonFront;
let dynamo: DynamoDBClient;
/** What the front answers itself; undefined passes the call to DynamoDB Local. Reset before each test. */
let answer: (call: AwsJsonCall) => FrontAnswer = () => undefined;
const names = resourceNames('ocireg-throttling');

beforeAll(async () => {
  aws = await startAwsLocal();
  await createLocalResources(aws.dynamo, aws.s3, names);
  front = await startAwsJsonFront(forwardTo(aws.endpoints.dynamo), (call) => answer(call));
  dynamo = createDynamoDbClient({ endpoint: front.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  SDK_ATTEMPTS = await dynamo.config.maxAttempts();
}, 120_000);
afterAll(async () => {
  dynamo?.destroy();
  await front?.close();
  await aws?.stop();
});
beforeEach(() => {
  answer = () => undefined;
  front.calls.length = 0;
});

const store = () => new DynamoDbMetadataStore({ dynamo, table: names.table });
const repo = (label: string) => `throttle-${randomBytes(4).toString('hex')}/${label}`;
const count = (operation: string) => front.calls.filter((call) => call.operation === operation).length;
/** Answers the first `times` calls of `operation` with `answer`, then passes them. */
function throttleFirst(operation: string, times: number, make: (call: AwsJsonCall) => FrontAnswer): void {
  let left = times;
  answer = (call) => (call.operation === operation && left-- > 0 ? make(call) : undefined);
}
function throttleAlways(operation: string, make: (call: AwsJsonCall) => FrontAnswer): void {
  answer = (call) => (call.operation === operation ? make(call) : undefined);
}
const transactionOf = (call: AwsJsonCall) => throttledTransaction((call.input.TransactItems as unknown[]).length);
/** The manifest push's transaction (a blob push links its blob in a transaction of its own since garbage collection). */
const isManifestTransaction = (call: AwsJsonCall) =>
  call.operation === 'TransactWriteItems' && JSON.stringify(call.input.TransactItems).includes('"MANIFEST#');

describe('DynamoDbMetadataStore under throttling', () => {
  it('reads through throttled GetItems the SDK retries, and sends no retry of its own', async () => {
    // Prepare
    const name = repo('get');
    const blob = { digest: digestOf(randomBytes(8)), size: 3, location: 'blobs/x' };
    // A link needs the blob's global record (garbage collection stamps it when linking).
    await store().putBlob(blob);
    expect(await store().linkBlob(name, blob)).toBe(true);
    throttleFirst('GetItem', 2, throttlingException);
    // Act
    const read = await store().getLinkedBlob(name, blob.digest);
    // Assess
    expect(read).toEqual(blob);
    expect(count('GetItem')).toBe(3);
  });

  it('answers TOOMANYREQUESTS with a Retry-After once the SDK has spent its attempts', async () => {
    throttleAlways('GetItem', provisionedThroughputExceeded);
    const error = await store().resolveTag(repo('get'), 'latest').catch((e: unknown) => e);
    expect(isOciError(error, 'TOOMANYREQUESTS')).toBe(true);
    expect((error as { detail: unknown }).detail).toEqual({ retryAfterSeconds: 1 });
    expect(count('GetItem')).toBe(SDK_ATTEMPTS);
  });

  it('does not multiply the SDK retries of a throttled transaction (ThrottlingException)', async () => {
    throttleAlways('TransactWriteItems', throttlingException);
    const error = await store().putManifest(repo('put'), storedManifest(), ['t']).catch((e: unknown) => e);
    expect(isOciError(error, 'TOOMANYREQUESTS')).toBe(true);
    expect(count('TransactWriteItems')).toBe(SDK_ATTEMPTS);
  });

  it('resends a transaction cancelled with a ThrottlingError reason, which the SDK does not retry', async () => {
    // Prepare
    const name = repo('cancelled');
    const manifest = storedManifest();
    throttleFirst('TransactWriteItems', 2, transactionOf);
    // Act
    await store().putManifest(name, manifest, ['t']);
    // Assess
    expect(count('TransactWriteItems')).toBe(3);
    answer = () => undefined;
    expect((await store().resolveTag(name, 't'))?.digest).toBe(manifest.digest);
  });

  it('gives up on a transaction cancelled for throughput after a bound, with TOOMANYREQUESTS and nothing written', async () => {
    const name = repo('cancelled-always');
    throttleAlways('TransactWriteItems', transactionOf);
    const error = await store().putManifest(name, storedManifest(), ['t']).catch((e: unknown) => e);
    expect(isOciError(error, 'TOOMANYREQUESTS')).toBe(true);
    expect(count('TransactWriteItems')).toBe(STORE_ATTEMPTS);
    answer = () => undefined;
    expect(await store().listTags(name, {})).toBeUndefined();
  });

  it('writes a tag and its history entry in one transaction: throttled, neither the push nor the delete leaves either', async () => {
    // Prepare
    const name = repo('history');
    const history = new DynamoDbTagHistoryStore({ dynamo, table: names.table });
    const write = { depth: 10, stamp: { at: new Date().toISOString(), actor: { subject: 'alice' } } };
    const first = storedManifest();
    await store().putManifest(name, first, ['t'], { history: write });
    front.calls.length = 0;
    throttleAlways('TransactWriteItems', transactionOf);
    // Act
    const pushed = await store().putManifest(name, storedManifest(), ['t'], { history: write }).catch((e: unknown) => e);
    const deleted = await store().deleteTag(name, 't', undefined, { history: write }).catch((e: unknown) => e);
    // Assess
    expect(isOciError(pushed, 'TOOMANYREQUESTS')).toBe(true);
    expect(isOciError(deleted, 'TOOMANYREQUESTS')).toBe(true);
    const sent = front.calls.filter((call) => call.operation === 'TransactWriteItems').map((call) => JSON.stringify(call.input.TransactItems));
    expect(sent).toHaveLength(2 * STORE_ATTEMPTS);
    for (const transaction of sent) expect([transaction.includes('"TAG#t"'), transaction.includes('"HISTORY#t"')]).toEqual([true, true]);
    answer = () => undefined;
    expect((await store().resolveTag(name, 't'))?.digest).toBe(first.digest);
    expect((await history.list(name, 't')).map((change) => [change.action, change.digest])).toEqual([['created', first.digest]]);
  });

  it('leaves only the body of a large manifest whose transaction failed, and a retried push completes it', async () => {
    // Prepare: the body goes to S3 before the transaction names it (timeline in manifest-item.ts)
    const bodies = new S3ManifestBodyStore({ s3: aws.s3, bucket: names.bucket });
    const withBodies = new DynamoDbMetadataStore({ dynamo, table: names.table, bodies });
    const name = repo('large');
    const large = storedManifest({ padding: randomBytes(400_000).toString('base64') });
    throttleAlways('TransactWriteItems', transactionOf);
    // Act: the push fails after the body was stored
    const error = await withBodies.putManifest(name, large, ['t']).catch((e: unknown) => e);
    // Assess
    expect(isOciError(error, 'TOOMANYREQUESTS')).toBe(true);
    answer = () => undefined;
    expect(await withBodies.resolveTag(name, 't')).toBeUndefined();
    expect(Buffer.from((await bodies.get(large.digest))!).equals(Buffer.from(large.content))).toBe(true);
    // Act + Assess: the client's retry rewrites the same body and writes the items
    await withBodies.putManifest(name, large, ['t']);
    expect(Buffer.from((await withBodies.resolveTag(name, 't'))!.content).equals(Buffer.from(large.content))).toBe(true);
  });

  it('asks again for the keys a BatchGetItem left unprocessed, and answers from the second read', async () => {
    // Prepare
    const name = repo('batch');
    const [linked, absent] = [digestOf(randomBytes(8)), digestOf(randomBytes(8))];
    await store().putBlob({ digest: linked, size: 1, location: 'blobs/x' });
    expect(await store().linkBlob(name, { digest: linked, size: 1, location: 'blobs/x' })).toBe(true);
    throttleFirst('BatchGetItem', 1, (call) => allUnprocessed(call.input));
    // Act
    const missing = await store().missingReferences(name, { blobs: [linked, absent], manifests: [] });
    // Assess
    expect(missing).toEqual([absent]);
    expect(count('BatchGetItem')).toBe(2);
  });

  it('answers TOOMANYREQUESTS when a BatchGetItem keeps leaving keys unprocessed', async () => {
    throttleAlways('BatchGetItem', (call) => allUnprocessed(call.input));
    const error = await store().missingReferences(repo('batch'), { blobs: [digestOf(randomBytes(8))], manifests: [] }).catch((e: unknown) => e);
    expect(isOciError(error, 'TOOMANYREQUESTS')).toBe(true);
    expect(count('BatchGetItem')).toBe(STORE_ATTEMPTS);
  });
});

describe('the AWS registry app under throttling', () => {
  let app: HttpHandler;
  beforeAll(async () => {
    app = await createAwsRegistryApp({ table: names.table, bucket: names.bucket }, { clients: { dynamo, s3: aws.s3 }, logger: new Logger({ logLevel: 'SILENT' }) });
  });

  async function pushImage(name: string): Promise<{ status: number; manifest: ReturnType<typeof imageManifest> }> {
    const [config, layer] = [randomBlob(64), randomBlob(2048)];
    for (const blob of [config, layer]) {
      const pushed = await call(app, 'POST', `/v2/${name}/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes, headers: { 'content-type': 'application/octet-stream' } });
      expect(pushed.status).toBe(201);
    }
    const manifest = imageManifest(config, [layer]);
    const put = await call(app, 'PUT', `/v2/${name}/manifests/v1`, { body: manifest.bytes, headers: { 'content-type': manifest.mediaType } });
    return { status: put.status, manifest };
  }

  it('pushes through transient throttling of the reference check and the manifest transaction', async () => {
    // Prepare: every BatchGetItem and TransactWriteItems is refused once
    const refused = new Set<string>();
    let manifestTransactions = 0;
    answer = (call) => {
      if (isManifestTransaction(call)) manifestTransactions += 1;
      if (call.operation !== 'BatchGetItem' && !isManifestTransaction(call)) return undefined;
      if (refused.has(call.operation)) return undefined;
      refused.add(call.operation);
      return call.operation === 'BatchGetItem' ? allUnprocessed(call.input) : transactionOf(call);
    };
    const name = repo('app');
    // Act
    const { status, manifest } = await pushImage(name);
    // Assess
    expect(status).toBe(201);
    expect(count('BatchGetItem')).toBe(2);
    expect(manifestTransactions).toBe(2);
    const pulled = await call(app, 'GET', `/v2/${name}/manifests/v1`, { headers: { accept: manifest.mediaType } });
    expect(pulled.status).toBe(200);
    expect(pulled.body.equals(manifest.bytes)).toBe(true);
  });

  it('answers 429 TOOMANYREQUESTS with Retry-After to a pull that DynamoDB keeps throttling', async () => {
    // Prepare
    const name = repo('app-429');
    const { manifest } = await pushImage(name);
    const readsBefore = count('GetItem');
    throttleAlways('GetItem', throttlingException);
    // Act
    const pulled = await call(app, 'GET', `/v2/${name}/manifests/v1`, { headers: { accept: manifest.mediaType } });
    const head = await call(app, 'HEAD', `/v2/${name}/manifests/${manifest.digest}`);
    // Assess
    expect(pulled.status).toBe(429);
    expect(pulled.headers['retry-after']).toBe('1');
    expect(pulled.json().errors[0]).toMatchObject({ code: 'TOOMANYREQUESTS', detail: { retryAfterSeconds: 1 } });
    expect(head.status).toBe(429);
    expect(head.headers['retry-after']).toBe('1');
    expect(count('GetItem') - readsBefore).toBe(2 * SDK_ATTEMPTS);
  });

  it('answers 429 to a manifest push whose transaction stays cancelled for throughput, and the tag is not written', async () => {
    const name = repo('app-push-429');
    answer = (call) => (isManifestTransaction(call) ? transactionOf(call) : undefined);
    const { status } = await pushImage(name);
    answer = () => undefined;
    expect(status).toBe(429);
    expect((await call(app, 'GET', `/v2/${name}/tags/list`)).status).toBe(404);
  });
});
