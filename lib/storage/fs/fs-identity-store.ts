import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { emptyIdentityDocument, FailureCounter, identityEdits, userAccess, type IdentityDocument } from '../../auth/identity-document.ts';
import type { Trust } from '../../auth/trust.ts';
import type { AccessToken, Grant, IdentityStore, Team, TeamGrant, User, UserAccess } from '../../auth/identity.ts';
import { readFileIfExists, writeFileAtomic } from './atomic-file.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import type { FsKeys } from './keys.ts';

/** Coarse last-used times: a login rewrites the file at most once a minute per token. */
const TOUCH_INTERVAL_MS = 60_000;

/**
 * Identities in one JSON file (mode 0600), re-read on every call so that `ocireg users|tokens|grants|repos`
 * run against the data dir take effect in a running server at once. Failed-login counters live in memory.
 */
export class FsIdentityStore implements IdentityStore {
  readonly #keys: FsKeys;
  readonly #mutex = new KeyedMutex();
  readonly #failures = new FailureCounter();

  constructor(keys: FsKeys) {
    this.#keys = keys;
  }

  async getUser(name: string): Promise<User | undefined> {
    return (await this.#read()).users[name];
  }
  async getAccess(name: string): Promise<UserAccess | undefined> {
    return userAccess(await this.#read(), name);
  }
  async createUser(user: User): Promise<boolean> {
    return this.#edit((doc) => identityEdits.createUser(doc, user));
  }
  async deleteUser(name: string): Promise<boolean> {
    return this.#edit((doc) => identityEdits.deleteUser(doc, name));
  }
  async listUsers(): Promise<User[]> {
    return Object.values((await this.#read()).users);
  }
  async createToken(token: AccessToken): Promise<void> {
    await this.#edit((doc) => {
      doc.tokens[token.id] = token;
    });
  }
  async getToken(id: string): Promise<AccessToken | undefined> {
    return (await this.#read()).tokens[id];
  }
  async listTokens(user?: string): Promise<AccessToken[]> {
    return Object.values((await this.#read()).tokens).filter((token) => user === undefined || token.user === user);
  }
  async deleteToken(id: string): Promise<boolean> {
    return this.#edit((doc) => identityEdits.deleteToken(doc, id));
  }
  async touchToken(id: string, at: number): Promise<void> {
    const token = (await this.#read()).tokens[id];
    if (!token || (token.lastUsedAt !== undefined && at - token.lastUsedAt < TOUCH_INTERVAL_MS)) return;
    await this.#edit((doc) => {
      if (doc.tokens[id]) doc.tokens[id].lastUsedAt = at;
    });
  }
  async setGrant(grant: Grant): Promise<void> {
    await this.#edit((doc) => identityEdits.setGrant(doc, grant));
  }
  async removeGrant(user: string, glob: string): Promise<boolean> {
    return this.#edit((doc) => identityEdits.removeGrant(doc, user, glob));
  }
  async listGrants(user?: string): Promise<Grant[]> {
    return (await this.#read()).grants.filter((grant) => user === undefined || grant.user === user);
  }
  async createTeam(team: { name: string; createdAt: number }): Promise<boolean> {
    return this.#edit((doc) => identityEdits.createTeam(doc, team));
  }
  async deleteTeam(name: string): Promise<boolean> {
    return this.#edit((doc) => identityEdits.deleteTeam(doc, name));
  }
  async getTeam(name: string): Promise<Team | undefined> {
    return (await this.#read()).teams[name];
  }
  async listTeams(): Promise<Team[]> {
    return Object.values((await this.#read()).teams);
  }
  async addTeamMember(team: string, user: string): Promise<'added' | 'no-team' | 'no-user'> {
    return this.#edit((doc) => identityEdits.addTeamMember(doc, team, user));
  }
  async removeTeamMember(team: string, user: string): Promise<boolean> {
    return this.#edit((doc) => identityEdits.removeTeamMember(doc, team, user));
  }
  async setTeamGrant(team: string, grant: TeamGrant): Promise<boolean> {
    return this.#edit((doc) => identityEdits.setTeamGrant(doc, team, grant));
  }
  async removeTeamGrant(team: string, glob: string): Promise<boolean> {
    return this.#edit((doc) => identityEdits.removeTeamGrant(doc, team, glob));
  }
  async createTrust(trust: Trust): Promise<boolean> {
    return this.#edit((doc) => identityEdits.createTrust(doc, trust));
  }
  async deleteTrust(name: string): Promise<boolean> {
    return this.#edit((doc) => identityEdits.deleteTrust(doc, name));
  }
  async listTrusts(): Promise<Trust[]> {
    return Object.values((await this.#read()).trusts);
  }
  async setPublic(glob: string, isPublic: boolean): Promise<void> {
    await this.#edit((doc) => identityEdits.setPublic(doc, glob, isPublic));
  }
  async listPublic(): Promise<string[]> {
    return (await this.#read()).publicGlobs;
  }
  async recordFailure(key: string, windowSeconds: number, now: number): Promise<number> {
    return this.#failures.record(key, windowSeconds, now);
  }
  async countFailures(key: string, now: number): Promise<number> {
    return this.#failures.count(key, now);
  }

  async #read(): Promise<IdentityDocument> {
    const text = await readFileIfExists(this.#keys.identities);
    return text === undefined ? emptyIdentityDocument() : { ...emptyIdentityDocument(), ...(JSON.parse(text) as IdentityDocument) };
  }

  async #edit<T>(change: (doc: IdentityDocument) => T): Promise<T> {
    return this.#mutex.run('identities', async () => {
      const doc = await this.#read();
      const result = change(doc);
      // The admin commands may run before the first `ocireg serve` created the data dir.
      await mkdir(dirname(this.#keys.identities), { recursive: true, mode: 0o700 });
      await mkdir(this.#keys.tmpDir, { recursive: true });
      await writeFileAtomic(this.#keys.tmpDir, this.#keys.identities, JSON.stringify(doc, null, 2), 0o600);
      return result;
    });
  }
}
