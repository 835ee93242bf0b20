import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { key, n, s } from '../dynamodb/attribute-values.ts';
import { DynamoDbTable } from '../dynamodb/dynamodb-table.ts';
import { cacheFillKey } from '../dynamodb/keys.ts';
import { PK, TTL } from '../dynamodb/table-definition.ts';

/** What the copy function is invoked with (lambdas/cache-blob-copy.ts). */
export interface BlobCopyEvent {
  /** The cached repository the blob is linked into once stored (its rule names the upstream). */
  name: string;
  digest: string;
}

/** How long a copy may run: the copy function's timeout (Lambda's maximum), and the marker's life past it. */
export const BLOB_COPY_TIMEOUT_SECONDS = 15 * 60;
const MARKER_GRACE_SECONDS = 60;

export interface BackgroundBlobCopiesOptions {
  dynamo: DynamoDBClient;
  table: string;
  lambda: LambdaClient;
  /** The copy function's name or ARN. */
  functionName: string;
  now?: () => number;
}

/**
 * Starts pull-through copies of large blobs outside the request that missed them: an asynchronous invocation
 * (InvocationType `Event`, answered 202 at once) of the copy function, which has Lambda's 15 minutes.
 *
 * One copy per digest at a time: a conditional PutItem of `CACHEFILL#<digest>` decides who invokes, and the copy
 * function deletes it when done (stored, or failed so the next pull starts another). A marker whose copy died
 * without deleting it expires with the copy function's timeout (its `ttl`, also checked in the condition, since
 * DynamoDB deletes expired items only eventually).
 * ```
 * pull A (miss, large)                pull B (miss, same blob)            copy function
 * PutItem marker if absent ✓          .                                   .
 * Invoke(Event) → 202                 PutItem marker if absent ✗: runs    start: upstream → S3 (multipart)
 * 307 to the upstream's URL           307 to the upstream's URL           putBlob, linkBlob; DeleteItem marker
 * pull C: the stored blob (307 to S3)
 * ```
 * A HEAD, or a GET with Range, takes A's or B's place: it claims the marker (and invokes) or finds it taken like any
 * pull, then answers 200 with the upstream's declared size (HEAD) or the same 307 (Range), never waiting for the copy.
 * A copy that fails after such a HEAD leaves nothing: the client's GET misses again and starts the next copy.
 */
export class BackgroundBlobCopies {
  readonly #markers: BlobCopyMarkers;
  readonly #lambda: LambdaClient;
  readonly #functionName: string;

  constructor(options: BackgroundBlobCopiesOptions) {
    this.#markers = new BlobCopyMarkers(options);
    this.#lambda = options.lambda;
    this.#functionName = options.functionName;
  }

  /** Starts the copy of `digest` into `name` unless one is running; true when this call started it. */
  async start(event: BlobCopyEvent): Promise<boolean> {
    if (!(await this.#markers.claim(event))) return false;
    try {
      await this.#lambda.send(new InvokeCommand({ FunctionName: this.#functionName, InvocationType: 'Event', Payload: Buffer.from(JSON.stringify(event)) }));
    } catch (error) {
      // Not started: let the next pull try.
      await this.#markers.clear(event.digest).catch(() => undefined);
      throw error;
    }
    return true;
  }
}

/** The `CACHEFILL#<digest>` markers: one running copy per digest (see {@link BackgroundBlobCopies}). */
export class BlobCopyMarkers {
  readonly #table: DynamoDbTable;
  readonly #now: () => number;

  constructor(options: { dynamo: DynamoDBClient; table: string; now?: () => number }) {
    this.#table = new DynamoDbTable(options.dynamo, options.table);
    this.#now = options.now ?? Date.now;
  }

  /** Sets the marker unless a live one stands; true when set. */
  async claim(event: BlobCopyEvent): Promise<boolean> {
    const now = Math.floor(this.#now() / 1000);
    try {
      await this.#table.put({
        Item: { ...key(cacheFillKey(event.digest)), name: s(event.name), [TTL]: n(now + BLOB_COPY_TIMEOUT_SECONDS + MARKER_GRACE_SECONDS) },
        ConditionExpression: 'attribute_not_exists(#pk) OR #ttl < :now',
        ExpressionAttributeNames: { '#pk': PK, '#ttl': TTL },
        ExpressionAttributeValues: { ':now': n(now) },
      });
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** The copy of `digest` ended (stored or failed): the next miss may start another. */
  async clear(digest: string): Promise<void> {
    await this.#table.delete(cacheFillKey(digest));
  }
}
