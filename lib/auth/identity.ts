import type { Action } from './scope.ts';

/**
 * Identities and what they may do: users, their access tokens, grants on repository globs, public repositories.
 * The IdentityStore port is implemented by lib/storage/{memory,fs,dynamodb}.
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

export interface IdentityStore {
  getUser(name: string): Promise<User | undefined>;
  /** Creates a user; false when the name is taken. */
  createUser(user: User): Promise<boolean>;
  /** Deletes a user with their tokens and grants; false when absent. */
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

  /** Marks a glob public (anonymous pull) or removes the mark. */
  setPublic(glob: string, isPublic: boolean): Promise<void>;
  listPublic(): Promise<string[]>;

  /** Counts one failed login under `key` within a window of `windowSeconds`; returns the count in the current window. */
  recordFailure(key: string, windowSeconds: number, now: number): Promise<number>;
  /** Failed logins under `key` in the current window. */
  countFailures(key: string, now: number): Promise<number>;
}
