import { parseArgs } from 'node:util';
import { ACCESS_LEVELS, isAccessLevel, type AccessLevel, type IdentityStore } from '../auth/identity.ts';
import { isValidGlob } from '../auth/repository-glob.ts';
import { UsageError } from './command.ts';
import { openIdentityStore, STORE_OPTIONS } from './identity-store-option.ts';

/**
 * What the admin commands (users, tokens, grants, teams, repos, trust) share: argument parsing with the store
 * options, validation of names, globs and levels, and where output goes (data to stdout, talk to stderr).
 */

export const say = (text: string) => process.stderr.write(`${text}\n`);
export const print = (text: string) => process.stdout.write(`${text}\n`);

/**
 * The end of a verb that changes one thing: says `done` and exits 0 when the store made the change, else says why not
 * (`no user alice`, `team ops exists already`) and exits 1.
 */
export function outcome(changed: boolean, done: string, refused: string): number {
  say(changed ? done : refused);
  return changed ? 0 : 1;
}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; default?: string | boolean }>;
export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export function parse(args: string[], options: OptionSpec = {}): { values: OptionValues; positionals: string[] } {
  const { values, positionals } = parseArgs({ args, options: { ...STORE_OPTIONS, ...options }, allowPositionals: true, strict: true });
  return { values: values as OptionValues, positionals };
}

export function positional(positionals: string[], index: number, what: string): string {
  const value = positionals[index];
  if (value === undefined) throw new UsageError(`missing ${what}`);
  return value;
}

/** User, team and trust names: they become key parts (fs JSON, DynamoDB sort keys), so `#`, `:` and `/` stay out. */
export function identityName(value: string, what = 'user'): string {
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(value)) throw new UsageError(`${what} names are 1-64 of a-z 0-9 . _ -, starting with a letter or digit, got "${value}"`);
  return value;
}

export function glob(value: string): string {
  if (!isValidGlob(value)) throw new UsageError(`a repository glob is a repository name where * matches within one component and ** across components (team/*, alice/**), got "${value}"`);
  return value;
}

export function level(value: string): AccessLevel {
  if (!isAccessLevel(value)) throw new UsageError(`the level is one of ${ACCESS_LEVELS.join(', ')}, got "${value}"`);
  return value;
}

export async function withStore<T>(values: Record<string, unknown>, action: (store: IdentityStore) => Promise<T>): Promise<T> {
  return action(await openIdentityStore(values));
}
