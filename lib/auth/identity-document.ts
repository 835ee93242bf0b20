import type { AccessToken, EffectiveGrant, Grant, Team, TeamGrant, User, UserAccess } from './identity.ts';
import type { Trust } from './trust.ts';

/**
 * All identities as one document: what the memory and filesystem identity stores hold. Small by nature
 * (a team's users, tokens and grants), so it is read and rewritten whole.
 */
export interface IdentityDocument {
  users: Record<string, User>;
  tokens: Record<string, AccessToken>;
  grants: Grant[];
  teams: Record<string, Team>;
  trusts: Record<string, Trust>;
  publicGlobs: string[];
}

export function emptyIdentityDocument(): IdentityDocument {
  return { users: {}, tokens: {}, grants: [], teams: {}, trusts: {}, publicGlobs: [] };
}

/** The edits both document stores apply, each returning what the port method returns. */
export const identityEdits = {
  createUser(doc: IdentityDocument, user: User): boolean {
    return insertNew(doc.users, user.name, user);
  },
  deleteUser(doc: IdentityDocument, name: string): boolean {
    if (!removeKey(doc.users, name)) return false;
    for (const [id, token] of Object.entries(doc.tokens)) if (token.user === name) delete doc.tokens[id];
    doc.grants = doc.grants.filter((grant) => grant.user !== name);
    for (const team of Object.values(doc.teams)) team.members = team.members.filter((member) => member !== name);
    return true;
  },
  deleteToken(doc: IdentityDocument, id: string): boolean {
    return removeKey(doc.tokens, id);
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
  createTeam(doc: IdentityDocument, team: { name: string; createdAt: number }): boolean {
    return insertNew(doc.teams, team.name, { name: team.name, createdAt: team.createdAt, members: [], grants: [] });
  },
  deleteTeam(doc: IdentityDocument, name: string): boolean {
    return removeKey(doc.teams, name);
  },
  addTeamMember(doc: IdentityDocument, teamName: string, user: string): 'added' | 'no-team' | 'no-user' {
    const team = doc.teams[teamName];
    if (!team) return 'no-team';
    if (!doc.users[user]) return 'no-user';
    if (!team.members.includes(user)) team.members = [...team.members, user].sort();
    return 'added';
  },
  removeTeamMember(doc: IdentityDocument, teamName: string, user: string): boolean {
    const team = doc.teams[teamName];
    if (!team?.members.includes(user)) return false;
    team.members = team.members.filter((member) => member !== user);
    return true;
  },
  setTeamGrant(doc: IdentityDocument, teamName: string, grant: TeamGrant): boolean {
    const team = doc.teams[teamName];
    if (!team) return false;
    team.grants = [...team.grants.filter((g) => g.glob !== grant.glob), { glob: grant.glob, level: grant.level }].sort(byGlob);
    return true;
  },
  removeTeamGrant(doc: IdentityDocument, teamName: string, glob: string): boolean {
    const team = doc.teams[teamName];
    if (!team?.grants.some((g) => g.glob === glob)) return false;
    team.grants = team.grants.filter((g) => g.glob !== glob);
    return true;
  },
  createTrust(doc: IdentityDocument, trust: Trust): boolean {
    return insertNew(doc.trusts, trust.name, trust);
  },
  deleteTrust(doc: IdentityDocument, name: string): boolean {
    return removeKey(doc.trusts, name);
  },
  setPublic(doc: IdentityDocument, glob: string, isPublic: boolean): void {
    doc.publicGlobs = doc.publicGlobs.filter((g) => g !== glob);
    if (isPublic) doc.publicGlobs.push(glob);
  },
};

/** Adds `value` under `key` unless the key is taken: false then (a create never overwrites). */
function insertNew<T>(record: Record<string, T>, key: string, value: T): boolean {
  if (record[key]) return false;
  record[key] = value;
  return true;
}

/** Removes what is under `key`: false when there was nothing. */
function removeKey<T>(record: Record<string, T>, key: string): boolean {
  if (!record[key]) return false;
  delete record[key];
  return true;
}

/** A user's own grants, then those of each team they belong to (teams in name order). */
export function userAccess(doc: IdentityDocument, name: string): UserAccess | undefined {
  const user = doc.users[name];
  if (!user) return undefined;
  const grants: EffectiveGrant[] = doc.grants.filter((grant) => grant.user === name).map(({ glob, level }) => ({ glob, level }));
  const teams = Object.values(doc.teams)
    .filter((team) => team.members.includes(name))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const team of teams) for (const { glob, level } of team.grants) grants.push({ glob, level, team: team.name });
  return { user, grants };
}

function byGlob(a: TeamGrant, b: TeamGrant): number {
  return a.glob < b.glob ? -1 : a.glob > b.glob ? 1 : 0;
}

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
