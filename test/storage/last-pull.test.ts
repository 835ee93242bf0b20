import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../lib/dev/aws-local.ts';
import { createDynamoDbClient } from '../../lib/storage/aws-clients.ts';
import { DynamoDbMetadataStore } from '../../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { DynamoDbTagHistoryStore } from '../../lib/storage/dynamodb/dynamodb-tag-history-store.ts';
import { openFsStorage } from '../../lib/storage/fs/open-fs-storage.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { MemoryTagHistoryStore } from '../../lib/storage/memory/memory-tag-history-store.ts';
import { lastPullContract } from '../registry/last-pull.contract.ts';
import { startAwsJsonFront, type AwsJsonFront } from '../support/aws-json-front.ts';
import { countedPulls } from '../support/counted-pulls.ts';
import { forwardTo, throttlingException } from '../support/dynamodb-throttling-front.ts';
import { useLocalBackends } from '../support/local-backends.ts';

/**
 * The last-pull contract on memory, fs and DynamoDB Local. On DynamoDB the real client talks to a loopback front
 * before DynamoDB Local, which counts the UpdateItem requests (the pull records) and, when asked, throttles them.
 */

const local = useLocalBackends('last-pull');
let front: AwsJsonFront;
let dynamo: DynamoDBClient;
let throttled = false;

beforeAll(async () => {
  front = await startAwsJsonFront(forwardTo(local.aws.endpoints.dynamo), (call) => (throttled && call.operation === 'UpdateItem' ? throttlingException() : undefined));
  dynamo = createDynamoDbClient({ endpoint: front.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
}, 120_000);
afterAll(async () => {
  dynamo?.destroy();
  await front?.close();
});

lastPullContract('memory', async () => {
  const metadata = new MemoryMetadataStore();
  return { ...countedPulls(metadata), history: new MemoryTagHistoryStore(metadata) };
});

lastPullContract('fs', async () => {
  const storage = await openFsStorage(join(local.dir, Math.random().toString(36).slice(2)));
  return { ...countedPulls(storage.metadata), history: storage.history };
});

lastPullContract('DynamoDB Local', async () => ({
  metadata: new DynamoDbMetadataStore({ dynamo, table: local.names.table }),
  history: new DynamoDbTagHistoryStore({ dynamo, table: local.names.table }),
  pullWrites: () => front.calls.filter((call) => call.operation === 'UpdateItem').length,
  failPullWrites: (on) => void (throttled = on),
}));
