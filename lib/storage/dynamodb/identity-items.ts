import { BatchGetItemCommand, ConditionalCheckFailedException, DeleteItemCommand, GetItemCommand, PutItemCommand, QueryCommand, TransactWriteItemsCommand, UpdateItemCommand, type AttributeValue, type BatchGetItemCommandOutput, type DynamoDBClient, type Update } from '@aws-sdk/client-dynamodb';
import { METADATA_TABLE } from '../aws-resources.ts';
import { IDENTITY_PK } from './keys.ts';

type Item = Record<string, AttributeValue>;

/**
 * The identity partition's items as DynamoDbIdentityStore reads and writes them: addressed by sort key
 * (IdentitySk in keys.ts), a JSON `doc` attribute for users, tokens, grants and trusts, strongly consistent reads.
 */
export class IdentityItems {
  readonly #dynamo: DynamoDBClient;
  readonly #table: string;
  readonly #pk = METADATA_TABLE.partitionKey.name;
  readonly #sk = METADATA_TABLE.sortKey.name;

  constructor(dynamo: DynamoDBClient, table: string) {
    this.#dynamo = dynamo;
    this.#table = table;
  }

  key(sortKey: string): Item {
    return { [this.#pk]: { S: IDENTITY_PK }, [this.#sk]: { S: sortKey } };
  }

  /** An item holding `doc` as JSON. */
  item(sortKey: string, doc: unknown): Item {
    return { ...this.key(sortKey), doc: { S: JSON.stringify(doc) } };
  }

  async put(item: Item): Promise<void> {
    await this.#dynamo.send(new PutItemCommand({ TableName: this.#table, Item: item }));
  }

  /** Replaces an item only while it exists: false when it is gone. */
  putIfExists(item: Item): Promise<boolean> {
    return this.#conditional(new PutItemCommand({ TableName: this.#table, Item: item, ConditionExpression: 'attribute_exists(#pk)', ExpressionAttributeNames: { '#pk': this.#pk } }));
  }

  /** Puts an item unless one exists under its key: false when one does. */
  putNew(item: Item): Promise<boolean> {
    return this.#conditional(new PutItemCommand({ TableName: this.#table, Item: item, ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': this.#pk } }));
  }

  async get(sortKey: string): Promise<Item | undefined> {
    return (await this.#dynamo.send(new GetItemCommand({ TableName: this.#table, Key: this.key(sortKey), ConsistentRead: true }))).Item;
  }

  async getDoc<T>(sortKey: string): Promise<T | undefined> {
    const doc = (await this.get(sortKey))?.doc?.S;
    return doc === undefined ? undefined : (JSON.parse(doc) as T);
  }

  /** Items by sort key, in BatchGetItem requests of at most 100 keys, retrying what DynamoDB leaves unprocessed. */
  async getMany(sortKeys: string[]): Promise<Item[]> {
    const items: Item[] = [];
    for (let i = 0; i < sortKeys.length; i += 100) {
      let keys: Item[] | undefined = sortKeys.slice(i, i + 100).map((sortKey) => this.key(sortKey));
      while (keys && keys.length > 0) {
        const result: BatchGetItemCommandOutput = await this.#dynamo.send(new BatchGetItemCommand({ RequestItems: { [this.#table]: { Keys: keys, ConsistentRead: true } } }));
        items.push(...(result.Responses?.[this.#table] ?? []));
        keys = result.UnprocessedKeys?.[this.#table]?.Keys;
      }
    }
    return items;
  }

  async queryDocs<T>(prefix: string): Promise<T[]> {
    return (await this.query(prefix)).flatMap((item) => (item.doc?.S === undefined ? [] : [JSON.parse(item.doc.S) as T]));
  }

  /** Every item whose sort key starts with `prefix`, page after page. */
  async query(prefix: string): Promise<Item[]> {
    const items: Item[] = [];
    let start: Item | undefined;
    do {
      const page = await this.#dynamo.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
          ExpressionAttributeNames: { '#pk': this.#pk, '#sk': this.#sk },
          ExpressionAttributeValues: { ':pk': { S: IDENTITY_PK }, ':prefix': { S: prefix } },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }

  async delete(sortKey: string): Promise<boolean> {
    return (await this.deleteItem(sortKey)) !== undefined;
  }

  /** Deletes an item; its old image, or undefined when there was none. */
  async deleteItem(sortKey: string): Promise<Item | undefined> {
    return (await this.#dynamo.send(new DeleteItemCommand({ TableName: this.#table, Key: this.key(sortKey), ReturnValues: 'ALL_OLD' }))).Attributes;
  }

  /** An update that never creates the item, as one action of a transaction: `attribute` gains `value` (a string set). */
  addToSetIfExists(sortKey: string, attribute: string, value: string): Update {
    return {
      TableName: this.#table,
      Key: this.key(sortKey),
      UpdateExpression: 'ADD #set :value',
      ConditionExpression: 'attribute_exists(#pk)',
      ExpressionAttributeNames: { '#pk': this.#pk, '#set': attribute },
      ExpressionAttributeValues: { ':value': { SS: [value] } },
    };
  }

  /** The updates in one TransactWriteItems: all or none (TransactionCanceledException names each one's reason). */
  async transact(updates: Update[]): Promise<void> {
    await this.#dynamo.send(new TransactWriteItemsCommand({ TransactItems: updates.map((update) => ({ Update: update })) }));
  }

  /** An UpdateItem that never creates the item: false when it does not exist. */
  updateIfExists(sortKey: string, update: string, names: Record<string, string>, values: Record<string, AttributeValue>): Promise<boolean> {
    return this.updateIf(sortKey, update, 'attribute_exists(#pk)', { ...names, '#pk': this.#pk }, values);
  }

  /** An UpdateItem under `condition`: false when the condition failed. */
  updateIf(sortKey: string, update: string, condition: string, names: Record<string, string>, values?: Record<string, AttributeValue>): Promise<boolean> {
    return this.#conditional(
      new UpdateItemCommand({
        TableName: this.#table,
        Key: this.key(sortKey),
        UpdateExpression: update,
        ConditionExpression: condition,
        ExpressionAttributeNames: names,
        ...(values ? { ExpressionAttributeValues: values } : {}),
      }),
    );
  }

  /** Sends a conditional write: false when its condition failed. */
  async #conditional(command: PutItemCommand | UpdateItemCommand): Promise<boolean> {
    try {
      await this.#dynamo.send(command as PutItemCommand);
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
}
