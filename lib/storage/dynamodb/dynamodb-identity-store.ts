import {
  BatchGetItemCommand,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
  type BatchGetItemCommandOutput,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { AccessLevel, AccessToken, EffectiveGrant, Grant, IdentityStore, Team, TeamGrant, User, UserAccess } from '../../auth/identity.ts';
import type { Trust } from '../../auth/trust.ts';
import { METADATA_TABLE } from '../aws-resources.ts';
import { failureWindowKey, IDENTITY_PK, IdentitySk } from './keys.ts';

/**
 * Identities in the registry's DynamoDB table, beside the registry metadata; items and keys in ./keys.ts.
 * Failure windows expire by TTL; the window check does not depend on TTL timing (which may run ~48 h late).
 *
 * Teams: the team item is the truth (its `members` set and `grants` map); each user item keeps a `teams` set as
 * an index, so token issuance finds a user's teams in the GetItem it makes anyway and reads them in one
 * BatchGetItem. A stale index entry (a team deleted, or recreated under the same name) grants nothing: a team's
 * grants apply only when its own `members` names the user.
 *
 *   addTeamMember      TransactWrite[ ADD team.members if team exists, ADD user.teams if user exists ]
 *   deleteUser ∥ add   both touch the user item: either the add fails (no user) or the delete's old image
 *                      lists the team and the delete removes the user from it
 *   deleteTeam ∥ add   both touch the team item: either the add fails (no team) or the old image lists the user
 *   removeTeamMember   DELETE team.members first (access ends here), then the index entry (best effort: the
 *                      user item may be gone; a leftover entry is harmless, see above)
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
  /** GetItem user ∥ Query its grants, then one BatchGetItem of its teams (only when it has any). */
  async getAccess(name: string): Promise<UserAccess | undefined> {
    const [item, own] = await Promise.all([this.#getItem(IdentitySk.user(name)), this.listGrants(name)]);
    const doc = item?.doc?.S;
    if (doc === undefined) return undefined;
    const grants: EffectiveGrant[] = own.map(({ glob, level }) => ({ glob, level }));
    const teams = (await this.#getTeams(item?.teams?.SS ?? [])).filter((team) => team.members.includes(name));
    for (const team of teams.sort((a, b) => (a.name < b.name ? -1 : 1))) for (const { glob, level } of team.grants) grants.push({ glob, level, team: team.name });
    return { user: JSON.parse(doc) as User, grants };
  }
  async createUser(user: User): Promise<boolean> {
    return this.#putNew(this.#item(IdentitySk.user(user.name), user));
  }
  async deleteUser(name: string): Promise<boolean> {
    const old = await this.#deleteItem(IdentitySk.user(name));
    if (!old) return false;
    for (const team of old.teams?.SS ?? []) await this.#updateIfExists(IdentitySk.team(team), 'DELETE #members :member', { '#members': 'members' }, { ':member': { SS: [name] } });
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
  async createTeam(team: { name: string; createdAt: number }): Promise<boolean> {
    return this.#putNew({ ...this.#key(IdentitySk.team(team.name)), name: { S: team.name }, createdAt: { N: String(team.createdAt) }, grants: { M: {} } });
  }
  async deleteTeam(name: string): Promise<boolean> {
    const old = await this.#deleteItem(IdentitySk.team(name));
    if (!old) return false;
    for (const user of old.members?.SS ?? []) await this.#updateIfExists(IdentitySk.user(user), 'DELETE #teams :team', { '#teams': 'teams' }, { ':team': { SS: [name] } });
    return true;
  }
  async getTeam(name: string): Promise<Team | undefined> {
    const item = await this.#getItem(IdentitySk.team(name));
    return item ? teamOf(item) : undefined;
  }
  async listTeams(): Promise<Team[]> {
    return (await this.#queryItems(IdentitySk.teamPrefix)).map(teamOf);
  }
  async addTeamMember(team: string, user: string): Promise<'added' | 'no-team' | 'no-user'> {
    const exists = 'attribute_exists(#pk)';
    try {
      await this.#dynamo.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.#table,
                Key: this.#key(IdentitySk.team(team)),
                UpdateExpression: 'ADD #members :member',
                ConditionExpression: exists,
                ExpressionAttributeNames: { '#pk': this.#pk, '#members': 'members' },
                ExpressionAttributeValues: { ':member': { SS: [user] } },
              },
            },
            {
              Update: {
                TableName: this.#table,
                Key: this.#key(IdentitySk.user(user)),
                UpdateExpression: 'ADD #teams :team',
                ConditionExpression: exists,
                ExpressionAttributeNames: { '#pk': this.#pk, '#teams': 'teams' },
                ExpressionAttributeValues: { ':team': { SS: [team] } },
              },
            },
          ],
        }),
      );
      return 'added';
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      // CancellationReasons follows TransactItems' order; read the items if a client leaves it out.
      const reasons = error.CancellationReasons?.map((reason) => reason.Code);
      if (reasons?.[0] === 'ConditionalCheckFailed') return 'no-team';
      if (reasons?.[1] === 'ConditionalCheckFailed') return 'no-user';
      if (!(await this.#getItem(IdentitySk.team(team)))) return 'no-team';
      if (!(await this.#getItem(IdentitySk.user(user)))) return 'no-user';
      throw error;
    }
  }
  async removeTeamMember(team: string, user: string): Promise<boolean> {
    const removed = await this.#conditional(
      new UpdateItemCommand({
        TableName: this.#table,
        Key: this.#key(IdentitySk.team(team)),
        UpdateExpression: 'DELETE #members :member',
        ConditionExpression: 'contains(#members, :name)',
        ExpressionAttributeNames: { '#members': 'members' },
        ExpressionAttributeValues: { ':member': { SS: [user] }, ':name': { S: user } },
      }),
    );
    if (removed) await this.#updateIfExists(IdentitySk.user(user), 'DELETE #teams :team', { '#teams': 'teams' }, { ':team': { SS: [team] } });
    return removed;
  }
  /** One map entry per glob (`grants.<glob>`): a grant is set or removed without rewriting the others. */
  async setTeamGrant(team: string, grant: TeamGrant): Promise<boolean> {
    return this.#updateIfExists(IdentitySk.team(team), 'SET #grants.#glob = :level', { '#grants': 'grants', '#glob': grant.glob }, { ':level': { S: grant.level } });
  }
  async removeTeamGrant(team: string, glob: string): Promise<boolean> {
    return this.#conditional(
      new UpdateItemCommand({
        TableName: this.#table,
        Key: this.#key(IdentitySk.team(team)),
        UpdateExpression: 'REMOVE #grants.#glob',
        ConditionExpression: 'attribute_exists(#grants.#glob)',
        ExpressionAttributeNames: { '#grants': 'grants', '#glob': glob },
      }),
    );
  }
  async createTrust(trust: Trust): Promise<boolean> {
    return this.#putNew(this.#item(IdentitySk.trust(trust.name), trust));
  }
  async deleteTrust(name: string): Promise<boolean> {
    return this.#delete(IdentitySk.trust(name));
  }
  async listTrusts(): Promise<Trust[]> {
    return this.#queryDocs<Trust>(IdentitySk.trustPrefix);
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

  #key(sortKey: string): Record<string, AttributeValue> {
    return { [this.#pk]: { S: PARTITION }, [this.#sk]: { S: sortKey } };
  }

  #item(sortKey: string, doc: unknown): Record<string, AttributeValue> {
    return { ...this.#key(sortKey), doc: { S: JSON.stringify(doc) } };
  }

  async #getItem(sortKey: string): Promise<Record<string, AttributeValue> | undefined> {
    return (await this.#dynamo.send(new GetItemCommand({ TableName: this.#table, Key: this.#key(sortKey), ConsistentRead: true }))).Item;
  }

  async #getDoc<T>(sortKey: string): Promise<T | undefined> {
    const doc = (await this.#getItem(sortKey))?.doc?.S;
    return doc === undefined ? undefined : (JSON.parse(doc) as T);
  }

  /** Team items by name, in BatchGetItem requests of at most 100 keys, retrying what DynamoDB leaves unprocessed. */
  async #getTeams(names: string[]): Promise<Team[]> {
    const teams: Team[] = [];
    for (let i = 0; i < names.length; i += 100) {
      let keys: Array<Record<string, AttributeValue>> | undefined = names.slice(i, i + 100).map((name) => this.#key(IdentitySk.team(name)));
      while (keys && keys.length > 0) {
        const result: BatchGetItemCommandOutput = await this.#dynamo.send(new BatchGetItemCommand({ RequestItems: { [this.#table]: { Keys: keys, ConsistentRead: true } } }));
        teams.push(...(result.Responses?.[this.#table] ?? []).map(teamOf));
        keys = result.UnprocessedKeys?.[this.#table]?.Keys;
      }
    }
    return teams;
  }

  async #queryDocs<T>(prefix: string): Promise<T[]> {
    return (await this.#queryItems(prefix)).flatMap((item) => (item.doc?.S === undefined ? [] : [JSON.parse(item.doc.S) as T]));
  }

  async #queryItems(prefix: string): Promise<Array<Record<string, AttributeValue>>> {
    const items: Array<Record<string, AttributeValue>> = [];
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
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }

  async #delete(sortKey: string): Promise<boolean> {
    return (await this.#deleteItem(sortKey)) !== undefined;
  }

  /** Deletes an item; its old image, or undefined when there was none. */
  async #deleteItem(sortKey: string): Promise<Record<string, AttributeValue> | undefined> {
    return (await this.#dynamo.send(new DeleteItemCommand({ TableName: this.#table, Key: this.#key(sortKey), ReturnValues: 'ALL_OLD' }))).Attributes;
  }

  /** An UpdateItem that never creates the item: false when it does not exist. */
  async #updateIfExists(sortKey: string, update: string, names: Record<string, string>, values: Record<string, AttributeValue>): Promise<boolean> {
    return this.#conditional(
      new UpdateItemCommand({
        TableName: this.#table,
        Key: this.#key(sortKey),
        UpdateExpression: update,
        ConditionExpression: 'attribute_exists(#pk)',
        ExpressionAttributeNames: { ...names, '#pk': this.#pk },
        ExpressionAttributeValues: values,
      }),
    );
  }

  /** Puts an item unless one exists under its key: false when one does. */
  async #putNew(item: Record<string, AttributeValue>): Promise<boolean> {
    return this.#conditional(new PutItemCommand({ TableName: this.#table, Item: item, ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': this.#pk } }));
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

function teamOf(item: Record<string, AttributeValue>): Team {
  const grants = Object.entries(item.grants?.M ?? {}).map(([glob, level]) => ({ glob, level: level.S as AccessLevel }));
  return {
    name: item.name!.S!,
    createdAt: Number(item.createdAt!.N),
    members: [...(item.members?.SS ?? [])].sort(),
    grants: grants.sort((a, b) => (a.glob < b.glob ? -1 : a.glob > b.glob ? 1 : 0)),
  };
}
