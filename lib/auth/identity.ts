import type { Action } from './scope.ts';
import type { Trust } from './trust.ts';

/**
 * Identities and what they may do: users, their access tokens, teams, grants on repository globs (to a user or a
 * team), public repositories. The IdentityStore port is implemented by lib/storage/{memory,fs,dynamodb}.
 */

/** Grant levels, each including the ones before it. */
export type AccessLevel = 'pull' | 'push' | 'delete' | 'admin';
export const ACCESS_LEVELS: readonly AccessLevel[] = ['pull', 'push', 'delete', 'admin'];

export const ACTIONS_OF_LEVEL: Record<AccessLevel, readonly Action[]> = {
  pull: ['pull'],
  push: ['pull', 'push'],
  delete: ['pull', 'push', 'delete'],
  admin: ['pull', 'push', 'delete', '*'],
};

export function isAccessLevel(value: string): value is AccessLevel {
  return (ACCESS_LEVELS as readonly string[]).includes(value);
}

export interface User {
  name: string;
  /** Admins may do everything on every repository. */
  admin: boolean;
  /** Epoch milliseconds. */
  createdAt: number;
}

/** A narrowing of an access token: it acts on repositories matching `glob` up to `level` only. */
export interface TokenScope {
  glob: string;
  level: AccessLevel;
}

/** An access token as stored: never the secret, only its SHA-256. */
export interface AccessToken {
  /** Public identifier, part of the token string; used to revoke it. */
  id: string;
  user: string;
  /** Hex SHA-256 of the secret part. */
  secretHash: string;
  /** When present, the token acts only within these. */
  scopes?: TokenScope[];
  /** Epoch milliseconds; absent: never expires. */
  expiresAt?: number;
  createdAt: number;
  lastUsedAt?: number;
}

export interface Grant {
  user: string;
  glob: string;
  level: AccessLevel;
}

/** A team: its members get its grants, in addition to their own. */
export interface Team {
  name: string;
  /** Epoch milliseconds. */
  createdAt: number;
  /** User names, sorted. */
  members: string[];
  /** Sorted by glob. */
  grants: TeamGrant[];
}

export interface TeamGrant {
  glob: string;
  level: AccessLevel;
}

/** A grant as it applies to a user: their own (no `team`), or one of a team they belong to. */
export interface EffectiveGrant {
  glob: string;
  level: AccessLevel;
  team?: string;
}

/** What token issuance needs to know about a user, read in one go. */
export interface UserAccess {
  user: User;
  /** The user's own grants, then their teams' grants: the union is what they may do. */
  grants: EffectiveGrant[];
}

export interface IdentityStore {
  getUser(name: string): Promise<User | undefined>;
  /** The user with their own and their teams' grants; undefined when the user does not exist. */
  getAccess(name: string): Promise<UserAccess | undefined>;
  /** Creates a user; false when the name is taken. */
  createUser(user: User): Promise<boolean>;
  /** Deletes a user with their tokens, grants and team memberships; false when absent. */
  deleteUser(name: string): Promise<boolean>;
  listUsers(): Promise<User[]>;

  createToken(token: AccessToken): Promise<void>;
  getToken(id: string): Promise<AccessToken | undefined>;
  listTokens(user?: string): Promise<AccessToken[]>;
  deleteToken(id: string): Promise<boolean>;
  /** Records a use; best effort, may be coarse. */
  touchToken(id: string, at: number): Promise<void>;

  /** Sets the level of a user on a glob (replacing an earlier level on the same glob). */
  setGrant(grant: Grant): Promise<void>;
  removeGrant(user: string, glob: string): Promise<boolean>;
  listGrants(user?: string): Promise<Grant[]>;

  /** Creates a team with no members and no grants; false when the name is taken. */
  createTeam(team: { name: string; createdAt: number }): Promise<boolean>;
  /** Deletes a team with its memberships and grants; false when absent. */
  deleteTeam(name: string): Promise<boolean>;
  getTeam(name: string): Promise<Team | undefined>;
  listTeams(): Promise<Team[]>;
  /** Adds a user to a team; idempotent. Says which is missing when the team or the user does not exist. */
  addTeamMember(team: string, user: string): Promise<'added' | 'no-team' | 'no-user'>;
  /** Removes a user from a team; false when they were not a member (or the team does not exist). */
  removeTeamMember(team: string, user: string): Promise<boolean>;
  /** Sets the level of a team on a glob (replacing an earlier level on the same glob); false when no such team. */
  setTeamGrant(team: string, grant: TeamGrant): Promise<boolean>;
  /** false when the team has no grant on that glob (or does not exist). */
  removeTeamGrant(team: string, glob: string): Promise<boolean>;

  /** Adds an OIDC trust; false when the name is taken. */
  createTrust(trust: Trust): Promise<boolean>;
  deleteTrust(name: string): Promise<boolean>;
  listTrusts(): Promise<Trust[]>;

  /** Marks a glob public (anonymous pull) or removes the mark. */
  setPublic(glob: string, isPublic: boolean): Promise<void>;
  listPublic(): Promise<string[]>;

  /** Counts one failed login under `key` within a window of `windowSeconds`; returns the count in the current window. */
  recordFailure(key: string, windowSeconds: number, now: number): Promise<number>;
  /** Failed logins under `key` in the current window. */
  countFailures(key: string, now: number): Promise<number>;
}
