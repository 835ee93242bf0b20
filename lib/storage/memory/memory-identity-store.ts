import { emptyIdentityDocument, FailureCounter, identityEdits, type IdentityDocument } from '../../auth/identity-document.ts';
import type { AccessToken, Grant, IdentityStore, User } from '../../auth/identity.ts';

/** Identities in memory: the fake for auth unit tests. */
export class MemoryIdentityStore implements IdentityStore {
  readonly #doc: IdentityDocument = emptyIdentityDocument();
  readonly #failures = new FailureCounter();

  async getUser(name: string): Promise<User | undefined> {
    return this.#doc.users[name];
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
