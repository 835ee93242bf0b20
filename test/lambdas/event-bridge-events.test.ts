import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsRegistryApp } from '../../lambdas/registry-api.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startAwsLocal, type AwsLocal } from '../../lib/dev/aws-local.ts';
import { MediaType } from '../../lib/registry/manifest.ts';
import { createEventBridgeClient } from '../../lib/storage/aws-clients.ts';
import { createLocalResources, resourceNames } from '../../lib/storage/aws-resources.ts';
import { call } from '../support/app-client.ts';
import { startEventBridgeRecorder, type EventBridgeRecorder, type RecordedPutEvents } from '../support/event-bridge-recorder.ts';
import { Logger } from '@aws-lambda-powertools/logger';
import { createGcHandler } from '../../lambdas/gc.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { awsGcStorage } from '../../lib/storage/aws-gc-storage.ts';
import { DynamoDbPolicyStore } from '../../lib/storage/dynamodb/dynamodb-policy-store.ts';
import { DynamoDbTagHistoryStore } from '../../lib/storage/dynamodb/dynamodb-tag-history-store.ts';
import { image, push, settle } from '../registry/gc.contract.ts';
import { imageManifest, randomBlob } from '../support/builders.ts';

/**
 * The AWS event path without an EventBridge emulator: the production app's EventBridge client points at a loopback
 * endpoint that records each AWS JSON request (X-Amz-Target) and answers as PutEvents does. Only the endpoint differs.
 */
let aws: AwsLocal;
let recorder: EventBridgeRecorder;
let endpoint: string;
let recorded: RecordedPutEvents[];
const names = resourceNames('ocireg-events');

beforeAll(async () => {
  aws = await startAwsLocal();
  await createLocalResources(aws.dynamo, aws.s3, names);
  recorder = await startEventBridgeRecorder();
  ({ endpoint, recorded } = recorder);
}, 120_000);

afterAll(async () => {
  await recorder?.close();
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

  it('sends one PutEvents per removal of the scheduled gc function: the expired tag, its manifest and each blob link', async () => {
    // Prepare: two tags pushed in order, a policy keeping the newest one
    recorded.length = 0;
    const events = createEventBridgeClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const { metadata, blobs } = awsGcStorage({ dynamo: aws.dynamo, s3: aws.s3, ...names, clockToleranceMs: 5 });
    const history = new DynamoDbTagHistoryStore({ dynamo: aws.dynamo, table: names.table });
    const registry = new Registry({ metadata, blobs, history });
    const [old, newest] = [image('gcevt/app'), image('gcevt/app')];
    await push(registry, old, 'old');
    await new Promise((resolve) => setTimeout(resolve, 5));
    await push(registry, newest, 'newest');
    await new DynamoDbPolicyStore({ dynamo: aws.dynamo, table: names.table }).putPolicy({ glob: 'gcevt/*', keepLast: 1, protect: [], immutable: false, mutableTags: [], updatedAt: Date.now() });
    await settle(metadata);
    const handler = createGcHandler(
      { table: names.table, bucket: names.bucket, graceMs: 0, eventBus: 'ocireg-bus' },
      { clients: { dynamo: aws.dynamo, s3: aws.s3, events }, logger: new Logger({ logLevel: 'SILENT' }), clockToleranceMs: 5, writeMetrics: () => undefined },
    );
    // Act
    await handler({}, { getRemainingTimeInMillis: () => 900_000 });
    // Assess: one PutEvents of one entry per removal in the repository, GC each; blob records (no repository) send none
    expect(recorded.every((request) => request.target === 'AWSEvents.PutEvents' && request.body.Entries.length === 1)).toBe(true);
    const details = recorded.map((request) => JSON.parse(request.body.Entries[0]!.Detail) as Record<string, unknown>);
    expect(recorded.map((request) => request.body.Entries[0]!.EventBusName).every((bus) => bus === 'ocireg-bus')).toBe(true);
    const ofApp = details.filter((detail) => detail['repository-name'] === 'gcevt/app');
    expect(ofApp.every((detail) => detail['action-type'] === 'GC')).toBe(true);
    expect(ofApp.map((detail) => `${String(detail['artifact-type'])} ${String(detail['image-digest'])}`).sort()).toEqual(
      [`tag ${old.manifest.digest}`, `manifest ${old.manifest.digest}`, ...old.blobs.map((blob) => `blob ${blob.digest}`)].sort(),
    );
    expect(ofApp.find((detail) => detail['artifact-type'] === 'tag')).toMatchObject({ 'image-tag': 'old', reason: 'not among the 1 most recently pushed tags' });
    expect(details).toHaveLength(ofApp.length);
  }, 120_000);
});
