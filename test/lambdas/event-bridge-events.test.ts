import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsRegistryApp } from '../../lambdas/registry-api.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startAwsLocal, type AwsLocal } from '../../lib/dev/aws-local.ts';
import { MediaType } from '../../lib/registry/manifest.ts';
import { createEventBridgeClient } from '../../lib/storage/aws-clients.ts';
import { createLocalResources, resourceNames } from '../../lib/storage/aws-resources.ts';
import { call } from '../support/app-client.ts';
import { imageManifest, randomBlob } from '../support/builders.ts';

/**
 * The AWS event path without an EventBridge emulator: the production app's EventBridge client points at a loopback
 * endpoint that records each AWS JSON request (X-Amz-Target) and answers as PutEvents does. Only the endpoint differs.
 */
interface Recorded {
  target: string;
  body: { Entries: Array<{ EventBusName: string; Source: string; DetailType: string; Detail: string }> };
}

let aws: AwsLocal;
let recorder: Server;
let endpoint: string;
const recorded: Recorded[] = [];
const names = resourceNames('ocireg-events');

beforeAll(async () => {
  aws = await startAwsLocal();
  await createLocalResources(aws.dynamo, aws.s3, names);
  recorder = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Recorded['body'];
      recorded.push({ target: String(request.headers['x-amz-target']), body });
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify({ FailedEntryCount: 0, Entries: body.Entries.map((_, index) => ({ EventId: `e${index}` })) }));
    });
  });
  await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(recorder.address() as { port: number }).port}`;
}, 120_000);

afterAll(async () => {
  await new Promise<void>((resolve) => recorder?.close(() => resolve()));
  await aws?.stop();
});

describe('registry events on AWS', () => {
  it('sends one PutEvents per change to the configured bus, with the documented detail', async () => {
    // Prepare
    const events = createEventBridgeClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const app = await createAwsRegistryApp({ table: names.table, bucket: names.bucket, eventBus: 'ocireg-bus' }, { clients: { dynamo: aws.dynamo, s3: aws.s3, events } });
    const [config, layer] = [randomBlob(32), randomBlob(256)];
    for (const blob of [config, layer]) expect((await call(app, 'POST', `/v2/team/evt/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes })).status).toBe(201);
    expect(recorded).toHaveLength(0);
    const manifest = imageManifest(config, [layer]);
    // Act
    expect((await call(app, 'PUT', '/v2/team/evt/manifests/v1', { body: manifest.bytes, headers: { 'content-type': MediaType.ociManifest } })).status).toBe(201);
    expect((await call(app, 'POST', '/v2/team/evt/_ocireg/tag', { body: JSON.stringify({ reference: 'v1', tags: ['prod', 'stable'] }) })).status).toBe(200);
    expect((await call(app, 'DELETE', '/v2/team/evt/manifests/prod')).status).toBe(202);
    // Assess: three changes, three PutEvents, one entry each
    expect(recorded.map((request) => request.target)).toEqual(['AWSEvents.PutEvents', 'AWSEvents.PutEvents', 'AWSEvents.PutEvents']);
    expect(recorded.map((request) => request.body.Entries.length)).toEqual([1, 1, 1]);
    const [push, tag, remove] = recorded.map((request) => request.body.Entries[0]!);
    for (const entry of [push!, tag!, remove!]) expect(entry).toMatchObject({ EventBusName: 'ocireg-bus', Source: 'ocireg', DetailType: 'Ocireg Image Action' });
    expect(JSON.parse(push!.Detail)).toMatchObject({ 'action-type': 'PUSH', result: 'SUCCESS', 'repository-name': 'team/evt', 'image-digest': manifest.digest, 'image-tag': 'v1' });
    expect(JSON.parse(tag!.Detail)).toMatchObject({ 'action-type': 'TAG', 'image-digest': manifest.digest, 'image-tags': ['prod', 'stable'] });
    expect(JSON.parse(remove!.Detail)).toMatchObject({ 'action-type': 'DELETE', 'image-tag': 'prod', 'artifact-type': 'tag', 'image-digest': manifest.digest });
  }, 60_000);
});
