import type { AccessToken, Grant, User } from './identity.ts';

/**
 * All identities as one document: what the memory and filesystem identity stores hold. Small by nature
 * (a team's users, tokens and grants), so it is read and rewritten whole.
 */
export interface IdentityDocument {
  users: Record<string, User>;
  tokens: Record<string, AccessToken>;
  grants: Grant[];
  publicGlobs: string[];
}

export function emptyIdentityDocument(): IdentityDocument {
  return { users: {}, tokens: {}, grants: [], publicGlobs: [] };
}

/** The edits both document stores apply, each returning what the port method returns. */
export const identityEdits = {
  createUser(doc: IdentityDocument, user: User): boolean {
    if (doc.users[user.name]) return false;
    doc.users[user.name] = user;
    return true;
  },
  deleteUser(doc: IdentityDocument, name: string): boolean {
    if (!doc.users[name]) return false;
    delete doc.users[name];
    for (const [id, token] of Object.entries(doc.tokens)) if (token.user === name) delete doc.tokens[id];
    doc.grants = doc.grants.filter((grant) => grant.user !== name);
    return true;
  },
  deleteToken(doc: IdentityDocument, id: string): boolean {
    if (!doc.tokens[id]) return false;
    delete doc.tokens[id];
    return true;
  },
  setGrant(doc: IdentityDocument, grant: Grant): void {
    doc.grants = doc.grants.filter((g) => !(g.user === grant.user && g.glob === grant.glob));
    doc.grants.push(grant);
  },
  removeGrant(doc: IdentityDocument, user: string, glob: string): boolean {
    const before = doc.grants.length;
    doc.grants = doc.grants.filter((g) => !(g.user === user && g.glob === glob));
    return doc.grants.length < before;
  },
  setPublic(doc: IdentityDocument, glob: string, isPublic: boolean): void {
    doc.publicGlobs = doc.publicGlobs.filter((g) => g !== glob);
    if (isPublic) doc.publicGlobs.push(glob);
  },
};

/** Failed-login counters with a fixed window, in memory: the single-process stores' rate limit state. */
export class FailureCounter {
  readonly #windows = new Map<string, { count: number; until: number }>();

  record(key: string, windowSeconds: number, now: number): number {
    const current = this.#windows.get(key);
    const window = current && current.until > now ? current : { count: 0, until: now + windowSeconds * 1000 };
    window.count += 1;
    this.#windows.set(key, window);
    return window.count;
  }

  count(key: string, now: number): number {
    const current = this.#windows.get(key);
    return current && current.until > now ? current.count : 0;
  }
}
