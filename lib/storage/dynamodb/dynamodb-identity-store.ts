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
import { METADATA_TABLE } from '../aws-resources.ts';
import { failureWindowKey, IDENTITY_PK, IdentitySk } from './keys.ts';

/**
 * Identities in the registry's DynamoDB table, beside the registry metadata; items and keys in ./keys.ts.
 * Failure windows expire by TTL; the window check does not depend on TTL timing (which may run ~48 h late).
 */
export interface DynamoDbIdentityStoreOptions {
  dynamo: DynamoDBClient;
  table: string;
}

const PARTITION = IDENTITY_PK;

export class DynamoDbIdentityStore implements IdentityStore {
  readonly #dynamo: DynamoDBClient;
  readonly #table: string;
  readonly #pk: string;
  readonly #sk: string;
  readonly #ttl: string;

  constructor(options: DynamoDbIdentityStoreOptions) {
    this.#dynamo = options.dynamo;
    this.#table = options.table;
    this.#pk = METADATA_TABLE.partitionKey.name;
    this.#sk = METADATA_TABLE.sortKey.name;
    this.#ttl = METADATA_TABLE.timeToLiveAttribute;
  }

  async getUser(name: string): Promise<User | undefined> {
    return this.#getDoc<User>(IdentitySk.user(name));
  }
  async createUser(user: User): Promise<boolean> {
    try {
      await this.#dynamo.send(
        new PutItemCommand({ TableName: this.#table, Item: this.#item(IdentitySk.user(user.name), user), ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': this.#pk } }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
  async deleteUser(name: string): Promise<boolean> {
    if (!(await this.#delete(IdentitySk.user(name)))) return false;
    for (const token of await this.listTokens(name)) await this.#delete(IdentitySk.token(token.id));
    for (const grant of await this.listGrants(name)) await this.#delete(IdentitySk.grant(grant.user, grant.glob));
    return true;
  }
  async listUsers(): Promise<User[]> {
    return this.#queryDocs<User>(IdentitySk.userPrefix);
  }
  async createToken(token: AccessToken): Promise<void> {
    await this.#dynamo.send(new PutItemCommand({ TableName: this.#table, Item: this.#item(IdentitySk.token(token.id), token) }));
  }
  async getToken(id: string): Promise<AccessToken | undefined> {
    return this.#getDoc<AccessToken>(IdentitySk.token(id));
  }
  async listTokens(user?: string): Promise<AccessToken[]> {
    return (await this.#queryDocs<AccessToken>(IdentitySk.tokenPrefix)).filter((token) => user === undefined || token.user === user);
  }
  async deleteToken(id: string): Promise<boolean> {
    return this.#delete(IdentitySk.token(id));
  }
  async touchToken(id: string, at: number): Promise<void> {
    const token = await this.getToken(id);
    if (!token) return;
    await this.#dynamo
      .send(
        new PutItemCommand({
          TableName: this.#table,
          Item: this.#item(IdentitySk.token(id), { ...token, lastUsedAt: at }),
          ConditionExpression: 'attribute_exists(#pk)',
          ExpressionAttributeNames: { '#pk': this.#pk },
        }),
      )
      .catch((error: unknown) => {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      });
  }
  async setGrant(grant: Grant): Promise<void> {
    await this.#dynamo.send(new PutItemCommand({ TableName: this.#table, Item: this.#item(IdentitySk.grant(grant.user, grant.glob), grant) }));
  }
  async removeGrant(user: string, glob: string): Promise<boolean> {
    return this.#delete(IdentitySk.grant(user, glob));
  }
  async listGrants(user?: string): Promise<Grant[]> {
    return this.#queryDocs<Grant>(IdentitySk.grantPrefix(user));
  }
  async setPublic(glob: string, isPublic: boolean): Promise<void> {
    if (isPublic) await this.#dynamo.send(new PutItemCommand({ TableName: this.#table, Item: this.#item(IdentitySk.publicGlob(glob), { glob }) }));
    else await this.#delete(IdentitySk.publicGlob(glob));
  }
  async listPublic(): Promise<string[]> {
    return (await this.#queryDocs<{ glob: string }>(IdentitySk.publicPrefix)).map((entry) => entry.glob);
  }

  /** ADD within the current window; a window that has ended is replaced by a new one (conditional put). */
  async recordFailure(key: string, windowSeconds: number, now: number): Promise<number> {
    const until = now + windowSeconds * 1000;
    const window = failureWindowKey(key);
    const keyAttributes = { [this.#pk]: { S: window.pk }, [this.#sk]: { S: window.sk } };
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
      new GetItemCommand({ TableName: this.#table, Key: { [this.#pk]: { S: failureWindowKey(key).pk }, [this.#sk]: { S: failureWindowKey(key).sk } }, ConsistentRead: true }),
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
