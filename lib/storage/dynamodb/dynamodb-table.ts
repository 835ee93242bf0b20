import {
  BatchGetItemCommand,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  TransactionCanceledException,
  TransactionConflictException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type BatchGetItemCommandOutput,
  type DeleteItemCommandInput,
  type DynamoDBClient,
  type KeysAndAttributes,
  type PutItemCommandInput,
  type QueryCommandInput,
  type TransactWriteItem,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { key, type Item } from './attribute-values.ts';
import type { ItemKey } from './keys.ts';
import { PK, SK } from './table-definition.ts';
import { backoff, isThrottledTransaction, throttled, THROTTLED_ATTEMPTS, translateThrottling } from './throttling.ts';

/** TransactWriteItems takes at most 100 actions (and 4 MB). */
export const MAX_TRANSACTION_ITEMS = 100;
/** BatchGetItem takes at most 100 keys. */
const MAX_BATCH_GET_KEYS = 100;
/** Attempts of a transaction that lost to a concurrent one (TransactionConflict) or whose read went stale. */
const TRANSACTION_ATTEMPTS = 8;

/**
 * The metadata table as the stores use it: one client, one table name, strongly consistent reads, and every
 * request through the throttling policy of throttling.ts (what the SDK retries, what is retried here, what
 * becomes 429). Low-level client only, to keep the Lambda bundle small.
 */
export class DynamoDbTable {
  readonly #client: DynamoDBClient;
  readonly #name: string;

  constructor(client: DynamoDBClient, name: string) {
    this.#client = client;
    this.#name = name;
  }

  async get(itemKey: ItemKey, projection?: { expression: string; names: Record<string, string> }): Promise<Item | undefined> {
    const { Item } = await translateThrottling(
      this.#client.send(
        new GetItemCommand({
          TableName: this.#name,
          Key: key(itemKey),
          ConsistentRead: true,
          ...(projection ? { ProjectionExpression: projection.expression, ExpressionAttributeNames: projection.names } : {}),
        }),
      ),
    );
    return Item;
  }

  /** PutItem; a failed condition throws ConditionalCheckFailedException for the caller to translate. */
  async put(input: Omit<PutItemCommandInput, 'TableName'>): Promise<void> {
    await translateThrottling(this.#client.send(new PutItemCommand({ ...input, TableName: this.#name })));
  }

  /** UpdateItem; a failed condition throws ConditionalCheckFailedException for the caller to translate. */
  async update(itemKey: ItemKey, input: Omit<UpdateItemCommandInput, 'TableName' | 'Key'>): Promise<void> {
    await translateThrottling(this.#client.send(new UpdateItemCommand({ ...input, TableName: this.#name, Key: key(itemKey) })));
  }

  /** DeleteItem; true when an item was there. */
  async delete(itemKey: ItemKey, input: Omit<DeleteItemCommandInput, 'TableName' | 'Key'> = {}): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        const { Attributes } = await translateThrottling(this.#client.send(new DeleteItemCommand({ ...input, TableName: this.#name, Key: key(itemKey), ReturnValues: 'ALL_OLD' })));
        return Attributes !== undefined;
      } catch (error) {
        // A tag or manifest inside a running transaction refuses plain writes for a moment.
        if (!(error instanceof TransactionConflictException) || attempt >= TRANSACTION_ATTEMPTS) throw error;
        await backoff(attempt + 1, 25);
      }
    }
  }

  /** UpdateItem on a condition: the item as it is after the update, or undefined when the condition failed. */
  async updateIf(itemKey: ItemKey, input: Omit<UpdateItemCommandInput, 'TableName' | 'Key' | 'ReturnValues'>): Promise<Item | undefined> {
    try {
      const { Attributes } = await translateThrottling(this.#client.send(new UpdateItemCommand({ ...input, TableName: this.#name, Key: key(itemKey), ReturnValues: 'ALL_NEW' })));
      return Attributes ?? {};
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return undefined;
      throw error;
    }
  }

  /** DeleteItem on a condition: true when the item was there and the condition held. */
  async deleteIf(itemKey: ItemKey, condition: Pick<DeleteItemCommandInput, 'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'>): Promise<boolean> {
    try {
      return await this.delete(itemKey, condition);
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /**
   * One page of a strongly consistent Scan of the whole table, of at most `limit` items read, after `start`
   * (undefined: from the beginning); `next` is undefined after the last page. An item that exists for the whole
   * scan is returned exactly once (DynamoDB documents a consistent Scan as reflecting every write completed before it).
   */
  /** One page of a Scan, of the whole table or of one segment of a parallel Scan (`segment` of `total`). */
  async scanPage(start: Item | undefined, limit: number, part?: { segment: number; total: number }): Promise<{ items: Item[]; next: Item | undefined }> {
    const segment = part ? { Segment: part.segment, TotalSegments: part.total } : {};
    const page = await translateThrottling(this.#client.send(new ScanCommand({ TableName: this.#name, ConsistentRead: true, Limit: limit, ExclusiveStartKey: start, ...segment })));
    return { items: page.Items ?? [], next: page.LastEvaluatedKey };
  }

  /**
   * Runs a Query to at most `limit` items (all when undefined), following pages: a page ends at 1 MB read even
   * below Limit. Asks for one item more than `limit` to know whether more follow.
   */
  async query(input: Omit<QueryCommandInput, 'TableName'>, limit?: number): Promise<{ items: Item[]; hasMore: boolean }> {
    const items: Item[] = [];
    let start = input.ExclusiveStartKey;
    for (;;) {
      const want = limit === undefined ? undefined : limit + 1 - items.length;
      const page = await translateThrottling(
        this.#client.send(new QueryCommand({ ...input, TableName: this.#name, ConsistentRead: true, ...(want !== undefined ? { Limit: want } : {}), ExclusiveStartKey: start })),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
      if (!start || (limit !== undefined && items.length > limit)) break;
    }
    if (limit !== undefined && items.length > limit) return { items: items.slice(0, limit), hasMore: true };
    return { items, hasMore: false };
  }

  /**
   * The keys among `keys` that have an item (as {@link idOf}), by BatchGetItem: 100 keys a request, requests in
   * parallel, keys projected only. Keys DynamoDB leaves unprocessed (throttling) are asked again, then 429.
   */
  async existing(keys: ItemKey[]): Promise<Set<string>> {
    const unique = [...new Map(keys.map((itemKey) => [idOf(itemKey), itemKey])).values()];
    const found = new Set<string>();
    const chunks: ItemKey[][] = [];
    for (let at = 0; at < unique.length; at += MAX_BATCH_GET_KEYS) chunks.push(unique.slice(at, at + MAX_BATCH_GET_KEYS));
    await Promise.all(
      chunks.map(async (chunk) => {
        let request: KeysAndAttributes | undefined = {
          Keys: chunk.map(key),
          ConsistentRead: true,
          ProjectionExpression: '#pk, #sk',
          ExpressionAttributeNames: { '#pk': PK, '#sk': SK },
        };
        for (let attempt = 1; request?.Keys?.length; attempt++) {
          if (attempt > THROTTLED_ATTEMPTS) throw throttled('BatchGetItem left keys unprocessed');
          if (attempt > 1) await backoff(attempt - 1);
          const output: BatchGetItemCommandOutput = await translateThrottling(this.#client.send(new BatchGetItemCommand({ RequestItems: { [this.#name]: request } })));
          for (const item of output.Responses?.[this.#name] ?? []) found.add(idOf({ pk: item[PK]!.S!, sk: item[SK]!.S! }));
          request = output.UnprocessedKeys?.[this.#name];
        }
      }),
    );
    return found;
  }

  /**
   * Builds and sends a transaction, again while it is cancelled by a concurrent one (TransactionConflict) or by
   * a condition that a concurrent write made false (the build step reads afresh), unless `isFinal` says the
   * failure is the answer (a condition no retry can change). No actions: nothing to do.
   */
  async transact(build: () => Promise<TransactWriteItem[]>, isFinal: (error: unknown) => boolean = () => false): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const actions = await build();
      if (actions.length === 0) return;
      try {
        await this.transactWrite(actions);
        return;
      } catch (error) {
        const retryable =
          error instanceof TransactionConflictException ||
          (error instanceof TransactionCanceledException &&
            (error.CancellationReasons ?? []).some((reason) => reason.Code === 'TransactionConflict' || reason.Code === 'ConditionalCheckFailed'));
        if (!retryable || isFinal(error) || attempt >= TRANSACTION_ATTEMPTS) throw error;
        await backoff(attempt + 1, 25);
      }
    }
  }

  /**
   * One TransactWriteItems whose conditions decide: the index of the first action whose condition failed (nothing
   * written), or undefined when it committed. Resent while cancelled by a concurrent transaction on one of its items
   * (TransactionConflict: many pushes sharing a base layer stamp the same items).
   */
  async transactChecked(actions: TransactWriteItem[]): Promise<number | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.transactWrite(actions);
        return undefined;
      } catch (error) {
        const reasons = error instanceof TransactionCanceledException ? (error.CancellationReasons ?? []) : [];
        const failed = reasons.findIndex((reason) => reason.Code === 'ConditionalCheckFailed');
        if (failed >= 0) return failed;
        const conflict = error instanceof TransactionConflictException || reasons.some((reason) => reason.Code === 'TransactionConflict');
        if (!conflict || attempt >= TRANSACTION_ATTEMPTS) throw error;
        await backoff(attempt + 1, 25);
      }
    }
  }

  /** One TransactWriteItems, resent while it is cancelled for throughput (ThrottlingError), then 429. */
  async transactWrite(actions: TransactWriteItem[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await translateThrottling(this.#client.send(new TransactWriteItemsCommand({ TransactItems: actions })));
        return;
      } catch (error) {
        if (!isThrottledTransaction(error)) throw error;
        if (attempt >= THROTTLED_ATTEMPTS) throw throttled('TransactWriteItems cancelled with ThrottlingError', error);
        await backoff(attempt);
      }
    }
  }

  /** The table's name, for the actions of a transaction. */
  get name(): string {
    return this.#name;
  }
}

/** One string per item key, as `existing` answers them. */
export function idOf(itemKey: ItemKey): string {
  return `${itemKey.pk}\u0000${itemKey.sk}`;
}
