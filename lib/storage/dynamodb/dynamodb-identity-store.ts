import { TransactionCanceledException, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { AccessLevel, AccessToken, EffectiveGrant, Grant, IdentityStore, Team, TeamGrant, User, UserAccess } from '../../auth/identity.ts';
import type { Trust } from '../../auth/trust.ts';
import { countFailures, recordFailure } from './dynamodb-failure-windows.ts';
import { IdentityItems } from './identity-items.ts';
import { IdentitySk } from './keys.ts';

/**
 * Identities in the registry's DynamoDB table, beside the registry metadata; items and keys in ./keys.ts, the
 * requests in identity-items.ts, failed-login counters in dynamodb-failure-windows.ts.
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

export class DynamoDbIdentityStore implements IdentityStore {
  readonly #options: DynamoDbIdentityStoreOptions;
  readonly #items: IdentityItems;

  constructor(options: DynamoDbIdentityStoreOptions) {
    this.#options = options;
    this.#items = new IdentityItems(options.dynamo, options.table);
  }

  async getUser(name: string): Promise<User | undefined> {
    return this.#items.getDoc<User>(IdentitySk.user(name));
  }
  /** GetItem user ∥ Query its grants, then one BatchGetItem of its teams (only when it has any). */
  async getAccess(name: string): Promise<UserAccess | undefined> {
    const [item, own] = await Promise.all([this.#items.get(IdentitySk.user(name)), this.listGrants(name)]);
    const doc = item?.doc?.S;
    if (doc === undefined) return undefined;
    const grants: EffectiveGrant[] = own.map(({ glob, level }) => ({ glob, level }));
    const teams = (await this.#items.getMany((item?.teams?.SS ?? []).map(IdentitySk.team))).map(teamOf).filter((team) => team.members.includes(name));
    for (const team of teams.sort((a, b) => (a.name < b.name ? -1 : 1))) for (const { glob, level } of team.grants) grants.push({ glob, level, team: team.name });
    return { user: JSON.parse(doc) as User, grants };
  }
  async createUser(user: User): Promise<boolean> {
    return this.#items.putNew(this.#items.item(IdentitySk.user(user.name), user));
  }
  async deleteUser(name: string): Promise<boolean> {
    const old = await this.#items.deleteItem(IdentitySk.user(name));
    if (!old) return false;
    for (const team of old.teams?.SS ?? []) await this.#items.updateIfExists(IdentitySk.team(team), 'DELETE #members :member', { '#members': 'members' }, { ':member': { SS: [name] } });
    for (const token of await this.listTokens(name)) await this.#items.delete(IdentitySk.token(token.id));
    for (const grant of await this.listGrants(name)) await this.#items.delete(IdentitySk.grant(grant.user, grant.glob));
    return true;
  }
  async listUsers(): Promise<User[]> {
    return this.#items.queryDocs<User>(IdentitySk.userPrefix);
  }
  async createToken(token: AccessToken): Promise<void> {
    await this.#items.put(this.#items.item(IdentitySk.token(token.id), token));
  }
  async getToken(id: string): Promise<AccessToken | undefined> {
    return this.#items.getDoc<AccessToken>(IdentitySk.token(id));
  }
  async listTokens(user?: string): Promise<AccessToken[]> {
    return (await this.#items.queryDocs<AccessToken>(IdentitySk.tokenPrefix)).filter((token) => user === undefined || token.user === user);
  }
  async deleteToken(id: string): Promise<boolean> {
    return this.#items.delete(IdentitySk.token(id));
  }
  async touchToken(id: string, at: number): Promise<void> {
    const token = await this.getToken(id);
    if (!token) return;
    // Not recreated when deleted meanwhile.
    await this.#items.putIfExists(this.#items.item(IdentitySk.token(id), { ...token, lastUsedAt: at }));
  }
  async setGrant(grant: Grant): Promise<void> {
    await this.#items.put(this.#items.item(IdentitySk.grant(grant.user, grant.glob), grant));
  }
  async removeGrant(user: string, glob: string): Promise<boolean> {
    return this.#items.delete(IdentitySk.grant(user, glob));
  }
  async listGrants(user?: string): Promise<Grant[]> {
    return this.#items.queryDocs<Grant>(IdentitySk.grantPrefix(user));
  }
  async createTeam(team: { name: string; createdAt: number }): Promise<boolean> {
    return this.#items.putNew({ ...this.#items.key(IdentitySk.team(team.name)), name: { S: team.name }, createdAt: { N: String(team.createdAt) }, grants: { M: {} } });
  }
  async deleteTeam(name: string): Promise<boolean> {
    const old = await this.#items.deleteItem(IdentitySk.team(name));
    if (!old) return false;
    for (const user of old.members?.SS ?? []) await this.#items.updateIfExists(IdentitySk.user(user), 'DELETE #teams :team', { '#teams': 'teams' }, { ':team': { SS: [name] } });
    return true;
  }
  async getTeam(name: string): Promise<Team | undefined> {
    const item = await this.#items.get(IdentitySk.team(name));
    return item ? teamOf(item) : undefined;
  }
  async listTeams(): Promise<Team[]> {
    return (await this.#items.query(IdentitySk.teamPrefix)).map(teamOf);
  }
  async addTeamMember(team: string, user: string): Promise<'added' | 'no-team' | 'no-user'> {
    try {
      await this.#items.transact([this.#items.addToSetIfExists(IdentitySk.team(team), 'members', user), this.#items.addToSetIfExists(IdentitySk.user(user), 'teams', team)]);
      return 'added';
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      // CancellationReasons follows TransactItems' order; read the items if a client leaves it out.
      const reasons = error.CancellationReasons?.map((reason) => reason.Code);
      if (reasons?.[0] === 'ConditionalCheckFailed') return 'no-team';
      if (reasons?.[1] === 'ConditionalCheckFailed') return 'no-user';
      if (!(await this.#items.get(IdentitySk.team(team)))) return 'no-team';
      if (!(await this.#items.get(IdentitySk.user(user)))) return 'no-user';
      throw error;
    }
  }
  async removeTeamMember(team: string, user: string): Promise<boolean> {
    const removed = await this.#items.updateIf(IdentitySk.team(team), 'DELETE #members :member', 'contains(#members, :name)', { '#members': 'members' }, { ':member': { SS: [user] }, ':name': { S: user } });
    if (removed) await this.#items.updateIfExists(IdentitySk.user(user), 'DELETE #teams :team', { '#teams': 'teams' }, { ':team': { SS: [team] } });
    return removed;
  }
  /** One map entry per glob (`grants.<glob>`): a grant is set or removed without rewriting the others. */
  async setTeamGrant(team: string, grant: TeamGrant): Promise<boolean> {
    return this.#items.updateIfExists(IdentitySk.team(team), 'SET #grants.#glob = :level', { '#grants': 'grants', '#glob': grant.glob }, { ':level': { S: grant.level } });
  }
  async removeTeamGrant(team: string, glob: string): Promise<boolean> {
    return this.#items.updateIf(IdentitySk.team(team), 'REMOVE #grants.#glob', 'attribute_exists(#grants.#glob)', { '#grants': 'grants', '#glob': glob });
  }
  async createTrust(trust: Trust): Promise<boolean> {
    return this.#items.putNew(this.#items.item(IdentitySk.trust(trust.name), trust));
  }
  async deleteTrust(name: string): Promise<boolean> {
    return this.#items.delete(IdentitySk.trust(name));
  }
  async listTrusts(): Promise<Trust[]> {
    return this.#items.queryDocs<Trust>(IdentitySk.trustPrefix);
  }
  async setPublic(glob: string, isPublic: boolean): Promise<void> {
    if (isPublic) await this.#items.put(this.#items.item(IdentitySk.publicGlob(glob), { glob }));
    else await this.#items.delete(IdentitySk.publicGlob(glob));
  }
  async listPublic(): Promise<string[]> {
    return (await this.#items.queryDocs<{ glob: string }>(IdentitySk.publicPrefix)).map((entry) => entry.glob);
  }

  recordFailure(key: string, windowSeconds: number, now: number): Promise<number> {
    return recordFailure(this.#options, key, windowSeconds, now);
  }
  countFailures(key: string, now: number): Promise<number> {
    return countFailures(this.#options, key, now);
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
