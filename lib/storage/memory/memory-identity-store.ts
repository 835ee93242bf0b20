import { emptyIdentityDocument, FailureCounter, identityEdits, userAccess, type IdentityDocument } from '../../auth/identity-document.ts';
import type { Trust } from '../../auth/trust.ts';
import type { AccessToken, Grant, IdentityStore, Team, TeamGrant, User, UserAccess } from '../../auth/identity.ts';

/** Identities in memory: the fake for auth unit tests. */
export class MemoryIdentityStore implements IdentityStore {
  readonly #doc: IdentityDocument = emptyIdentityDocument();
  readonly #failures = new FailureCounter();

  async getUser(name: string): Promise<User | undefined> {
    return this.#doc.users[name];
  }
  async getAccess(name: string): Promise<UserAccess | undefined> {
    return structuredClone(userAccess(this.#doc, name));
  }
  async createUser(user: User): Promise<boolean> {
    return identityEdits.createUser(this.#doc, user);
  }
  async deleteUser(name: string): Promise<boolean> {
    return identityEdits.deleteUser(this.#doc, name);
  }
  async listUsers(): Promise<User[]> {
    return Object.values(this.#doc.users);
  }
  async createToken(token: AccessToken): Promise<void> {
    this.#doc.tokens[token.id] = token;
  }
  async getToken(id: string): Promise<AccessToken | undefined> {
    return this.#doc.tokens[id];
  }
  async listTokens(user?: string): Promise<AccessToken[]> {
    return Object.values(this.#doc.tokens).filter((token) => user === undefined || token.user === user);
  }
  async deleteToken(id: string): Promise<boolean> {
    return identityEdits.deleteToken(this.#doc, id);
  }
  async touchToken(id: string, at: number): Promise<void> {
    const token = this.#doc.tokens[id];
    if (token) token.lastUsedAt = at;
  }
  async setGrant(grant: Grant): Promise<void> {
    identityEdits.setGrant(this.#doc, grant);
  }
  async removeGrant(user: string, glob: string): Promise<boolean> {
    return identityEdits.removeGrant(this.#doc, user, glob);
  }
  async listGrants(user?: string): Promise<Grant[]> {
    return this.#doc.grants.filter((grant) => user === undefined || grant.user === user);
  }
  async createTeam(team: { name: string; createdAt: number }): Promise<boolean> {
    return identityEdits.createTeam(this.#doc, team);
  }
  async deleteTeam(name: string): Promise<boolean> {
    return identityEdits.deleteTeam(this.#doc, name);
  }
  async getTeam(name: string): Promise<Team | undefined> {
    return structuredClone(this.#doc.teams[name]);
  }
  async listTeams(): Promise<Team[]> {
    return structuredClone(Object.values(this.#doc.teams));
  }
  async addTeamMember(team: string, user: string): Promise<'added' | 'no-team' | 'no-user'> {
    return identityEdits.addTeamMember(this.#doc, team, user);
  }
  async removeTeamMember(team: string, user: string): Promise<boolean> {
    return identityEdits.removeTeamMember(this.#doc, team, user);
  }
  async setTeamGrant(team: string, grant: TeamGrant): Promise<boolean> {
    return identityEdits.setTeamGrant(this.#doc, team, grant);
  }
  async removeTeamGrant(team: string, glob: string): Promise<boolean> {
    return identityEdits.removeTeamGrant(this.#doc, team, glob);
  }
  async createTrust(trust: Trust): Promise<boolean> {
    return identityEdits.createTrust(this.#doc, structuredClone(trust));
  }
  async deleteTrust(name: string): Promise<boolean> {
    return identityEdits.deleteTrust(this.#doc, name);
  }
  async listTrusts(): Promise<Trust[]> {
    return structuredClone(Object.values(this.#doc.trusts));
  }
  async setPublic(glob: string, isPublic: boolean): Promise<void> {
    identityEdits.setPublic(this.#doc, glob, isPublic);
  }
  async listPublic(): Promise<string[]> {
    return [...this.#doc.publicGlobs];
  }
  async recordFailure(key: string, windowSeconds: number, now: number): Promise<number> {
    return this.#failures.record(key, windowSeconds, now);
  }
  async countFailures(key: string, now: number): Promise<number> {
    return this.#failures.count(key, now);
  }
}
