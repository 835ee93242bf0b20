import { FailureCounter, identityEdits, userAccess, type IdentityDocument } from '../auth/identity-document.ts';
import type { Trust } from '../auth/trust.ts';
import type { AccessToken, Grant, IdentityStore, Team, TeamGrant, User, UserAccess } from '../auth/identity.ts';

/** Coarse last-used times: a login rewrites the document at most once a minute per token. */
const TOUCH_INTERVAL_MS = 60_000;

/** Where the identity document lives (memory, a file). Each call sees the whole document as it is now. */
export interface IdentityDocumentStorage {
  /** The current document, detached: changing it changes nothing stored. */
  read(): Promise<IdentityDocument>;
  /** Applies `change` to the current document and stores the result, one edit at a time; returns what `change` returns. */
  edit<T>(change: (doc: IdentityDocument) => T): Promise<T>;
}

/**
 * The identity port over one document (identity-document.ts): the single-process backends, memory and fs, differ
 * only in where the document lives. Failed-login counters live in memory, in this process.
 */
export class DocumentIdentityStore implements IdentityStore {
  readonly #storage: IdentityDocumentStorage;
  readonly #failures = new FailureCounter();

  constructor(storage: IdentityDocumentStorage) {
    this.#storage = storage;
  }

  /** A port method that applies one of identityEdits to the stored document. */
  #edit<A extends unknown[], R>(apply: (doc: IdentityDocument, ...args: A) => R): (...args: A) => Promise<R> {
    return (...args) => this.#storage.edit((doc) => apply(doc, ...args));
  }

  async getUser(name: string): Promise<User | undefined> {
    return (await this.#storage.read()).users[name];
  }
  async getAccess(name: string): Promise<UserAccess | undefined> {
    return userAccess(await this.#storage.read(), name);
  }
  readonly createUser = this.#edit(identityEdits.createUser);
  readonly deleteUser = this.#edit(identityEdits.deleteUser);
  async listUsers(): Promise<User[]> {
    return Object.values((await this.#storage.read()).users);
  }
  async createToken(token: AccessToken): Promise<void> {
    await this.#storage.edit((doc) => {
      doc.tokens[token.id] = token;
    });
  }
  async getToken(id: string): Promise<AccessToken | undefined> {
    return (await this.#storage.read()).tokens[id];
  }
  async listTokens(user?: string): Promise<AccessToken[]> {
    return Object.values((await this.#storage.read()).tokens).filter((token) => user === undefined || token.user === user);
  }
  readonly deleteToken = this.#edit(identityEdits.deleteToken);
  async touchToken(id: string, at: number): Promise<void> {
    const token = (await this.#storage.read()).tokens[id];
    if (!token || (token.lastUsedAt !== undefined && at - token.lastUsedAt < TOUCH_INTERVAL_MS)) return;
    await this.#storage.edit((doc) => {
      if (doc.tokens[id]) doc.tokens[id].lastUsedAt = at;
    });
  }
  readonly setGrant = this.#edit(identityEdits.setGrant);
  readonly removeGrant = this.#edit(identityEdits.removeGrant);
  async listGrants(user?: string): Promise<Grant[]> {
    return (await this.#storage.read()).grants.filter((grant) => user === undefined || grant.user === user);
  }
  readonly createTeam = this.#edit(identityEdits.createTeam);
  readonly deleteTeam = this.#edit(identityEdits.deleteTeam);
  async getTeam(name: string): Promise<Team | undefined> {
    return (await this.#storage.read()).teams[name];
  }
  async listTeams(): Promise<Team[]> {
    return Object.values((await this.#storage.read()).teams);
  }
  readonly addTeamMember = this.#edit(identityEdits.addTeamMember);
  readonly removeTeamMember = this.#edit(identityEdits.removeTeamMember);
  readonly setTeamGrant = this.#edit(identityEdits.setTeamGrant);
  readonly removeTeamGrant = this.#edit(identityEdits.removeTeamGrant);
  readonly createTrust = this.#edit(identityEdits.createTrust);
  readonly deleteTrust = this.#edit(identityEdits.deleteTrust);
  async listTrusts(): Promise<Trust[]> {
    return Object.values((await this.#storage.read()).trusts);
  }
  readonly setPublic = this.#edit(identityEdits.setPublic);
  async listPublic(): Promise<string[]> {
    return (await this.#storage.read()).publicGlobs;
  }
  async recordFailure(key: string, windowSeconds: number, now: number): Promise<number> {
    return this.#failures.record(key, windowSeconds, now);
  }
  async countFailures(key: string, now: number): Promise<number> {
    return this.#failures.count(key, now);
  }
}
