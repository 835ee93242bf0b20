import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { AccessToken, Grant, IdentityStore, User } from '../../auth/identity.ts';

/**
 * Identities in the registry's DynamoDB table, beside the registry metadata.
 *
 * | item                         | partition key      | sort key               | attributes            |
 * | ---------------------------- | ------------------ | ---------------------- | --------------------- |
 * | user                         | IDENTITY           | USER#<name>            | doc (JSON)            |
 * | access token (hash only)     | IDENTITY           | TOKEN#<id>             | doc (JSON), user      |
 * | grant                        | IDENTITY           | GRANT#<user>#<glob>    | doc (JSON)            |
 * | public glob                  | IDENTITY           | PUBLIC#<glob>          |                       |
 * | failed logins in a window    | FAILURES#<key>     | WINDOW                 | count, until, ttl     |
 *
 * Identities are few (a team) and read only at token time, so one partition and a Query per listing is enough.
 * Failure windows expire by TTL; the window check does not depend on TTL timing (it runs at most ~48 h late).
 */
export interface DynamoDbIdentityStoreOptions {
  dynamo: DynamoDBClient;
  table: string;
  /** The table's key attribute names and TTL attribute. Default `pk`, `sk`, `ttl`. */
  partitionKey?: string;
  sortKey?: string;
  ttlAttribute?: string;
}

const PARTITION = 'IDENTITY';

export class DynamoDbIdentityStore implements IdentityStore {
  readonly #dynamo: DynamoDBClient;
  readonly #table: string;
  readonly #pk: string;
  readonly #sk: string;
  readonly #ttl: string;

  constructor(options: DynamoDbIdentityStoreOptions) {
    this.#dynamo = options.dynamo;
    this.#table = options.table;
    this.#pk = options.partitionKey ?? 'pk';
    this.#sk = options.sortKey ?? 'sk';
    this.#ttl = options.ttlAttribute ?? 'ttl';
  }

  async getUser(name: string): Promise<User | undefined> {
    return this.#getDoc<User>(`USER#${name}`);
  }
  async createUser(user: User): Promise<boolean> {
    try {
      await this.#dynamo.send(
        new PutItemCommand({ TableName: this.#table, Item: this.#item(`USER#${user.name}`, user), ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': this.#pk } }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
  async deleteUser(name: string): Promise<boolean> {
    if (!(await this.#delete(`USER#${name}`))) return false;
    for (const token of await this.listTokens(name)) await this.#delete(`TOKEN#${token.id}`);
    for (const grant of await this.listGrants(name)) await this.#delete(`GRANT#${grant.user}#${grant.glob}`);
    return true;
  }
  async listUsers(): Promise<User[]> {
    return this.#queryDocs<User>('USER#');
  }
  async createToken(token: AccessToken): Promise<void> {
    await this.#dynamo.send(new PutItemCommand({ TableName: this.#table, Item: this.#item(`TOKEN#${token.id}`, token) }));
  }
  async getToken(id: string): Promise<AccessToken | undefined> {
    return this.#getDoc<AccessToken>(`TOKEN#${id}`);
  }
  async listTokens(user?: string): Promise<AccessToken[]> {
    return (await this.#queryDocs<AccessToken>('TOKEN#')).filter((token) => user === undefined || token.user === user);
  }
  async deleteToken(id: string): Promise<boolean> {
    return this.#delete(`TOKEN#${id}`);
  }
  async touchToken(id: string, at: number): Promise<void> {
    const token = await this.getToken(id);
    if (!token) return;
    await this.#dynamo
      .send(
        new PutItemCommand({
          TableName: this.#table,
          Item: this.#item(`TOKEN#${id}`, { ...token, lastUsedAt: at }),
          ConditionExpression: 'attribute_exists(#pk)',
          ExpressionAttributeNames: { '#pk': this.#pk },
        }),
      )
      .catch((error: unknown) => {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      });
  }
  async setGrant(grant: Grant): Promise<void> {
    await this.#dynamo.send(new PutItemCommand({ TableName: this.#table, Item: this.#item(`GRANT#${grant.user}#${grant.glob}`, grant) }));
  }
  async removeGrant(user: string, glob: string): Promise<boolean> {
    return this.#delete(`GRANT#${user}#${glob}`);
  }
  async listGrants(user?: string): Promise<Grant[]> {
    return this.#queryDocs<Grant>(user === undefined ? 'GRANT#' : `GRANT#${user}#`);
  }
  async setPublic(glob: string, isPublic: boolean): Promise<void> {
    if (isPublic) await this.#dynamo.send(new PutItemCommand({ TableName: this.#table, Item: this.#item(`PUBLIC#${glob}`, { glob }) }));
    else await this.#delete(`PUBLIC#${glob}`);
  }
  async listPublic(): Promise<string[]> {
    return (await this.#queryDocs<{ glob: string }>('PUBLIC#')).map((entry) => entry.glob);
  }

  /** ADD within the current window; a window that has ended is replaced by a new one (conditional put). */
  async recordFailure(key: string, windowSeconds: number, now: number): Promise<number> {
    const until = now + windowSeconds * 1000;
    const keyAttributes = { [this.#pk]: { S: `FAILURES#${key}` }, [this.#sk]: { S: 'WINDOW' } };
    try {
      const result = await this.#dynamo.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: keyAttributes,
          UpdateExpression: 'ADD #count :one',
          ConditionExpression: '#until > :now',
          ExpressionAttributeNames: { '#count': 'count', '#until': 'until' },
          ExpressionAttributeValues: { ':one': { N: '1' }, ':now': { N: String(now) } },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return Number(result.Attributes?.count?.N ?? '1');
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
    await this.#dynamo.send(
      new PutItemCommand({
        TableName: this.#table,
        Item: { ...keyAttributes, count: { N: '1' }, until: { N: String(until) }, [this.#ttl]: { N: String(Math.ceil(until / 1000)) } },
      }),
    );
    return 1;
  }
  async countFailures(key: string, now: number): Promise<number> {
    const result = await this.#dynamo.send(
      new GetItemCommand({ TableName: this.#table, Key: { [this.#pk]: { S: `FAILURES#${key}` }, [this.#sk]: { S: 'WINDOW' } }, ConsistentRead: true }),
    );
    const item = result.Item;
    if (!item || Number(item.until?.N ?? 0) <= now) return 0;
    return Number(item.count?.N ?? 0);
  }

  #item(sortKey: string, doc: unknown): Record<string, AttributeValue> {
    return { [this.#pk]: { S: PARTITION }, [this.#sk]: { S: sortKey }, doc: { S: JSON.stringify(doc) } };
  }

  async #getDoc<T>(sortKey: string): Promise<T | undefined> {
    const result = await this.#dynamo.send(new GetItemCommand({ TableName: this.#table, Key: { [this.#pk]: { S: PARTITION }, [this.#sk]: { S: sortKey } }, ConsistentRead: true }));
    const doc = result.Item?.doc?.S;
    return doc === undefined ? undefined : (JSON.parse(doc) as T);
  }

  async #queryDocs<T>(prefix: string): Promise<T[]> {
    const docs: T[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.#dynamo.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
          ExpressionAttributeNames: { '#pk': this.#pk, '#sk': this.#sk },
          ExpressionAttributeValues: { ':pk': { S: PARTITION }, ':prefix': { S: prefix } },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of page.Items ?? []) if (item.doc?.S !== undefined) docs.push(JSON.parse(item.doc.S) as T);
      start = page.LastEvaluatedKey;
    } while (start);
    return docs;
  }

  async #delete(sortKey: string): Promise<boolean> {
    const result = await this.#dynamo.send(
      new DeleteItemCommand({ TableName: this.#table, Key: { [this.#pk]: { S: PARTITION }, [this.#sk]: { S: sortKey } }, ReturnValues: 'ALL_OLD' }),
    );
    return result.Attributes !== undefined;
  }
}
