import { newTokenSecret } from '../auth/access-token-secret.ts';
import { ACCESS_LEVELS, type TokenScope } from '../auth/identity.ts';
import { OIDC_USERNAME } from '../auth/trust.ts';
import { isValidName } from '../registry/names.ts';
import { glob, identityName, level, outcome, parse, positional, print, say, withStore } from './admin-arguments.ts';
import { runVerb, UsageError, type Command } from './command.ts';
import { parseDuration } from './duration.ts';
import { STORE_USAGE } from './identity-store-option.ts';

/**
 * Administration of identities: `users`, `tokens`, `grants`, `repos` (teams: team-commands.ts). Each works on the
 * local data dir or on a deployed stack's table. Data goes to stdout (`tokens create` prints only the token), talk
 * to stderr.
 */


/** `team/*:pull` or `team/*:pull,push` → the glob and the highest level named. */
export function parseTokenScope(value: string): TokenScope {
  const at = value.lastIndexOf(':');
  if (at <= 0) throw new UsageError(`--scope is <glob>:<actions>, e.g. team/*:pull, got "${value}"`);
  const actions = value.slice(at + 1).split(',');
  const levels = actions.map(level);
  const highest = ACCESS_LEVELS.filter((l) => levels.includes(l)).at(-1)!;
  return { glob: glob(value.slice(0, at)), level: highest };
}

export const users = {
  usage: `users      users add <name> [--admin] | users list | users show <name> | users remove <name>
             show prints the effective grants, one per line: <glob> <level> <from> (user, team:<name> or admin)
${STORE_USAGE}`,
  run: (async (args) => {
    const [verb, ...rest] = args;
    const { values, positionals } = parse(rest, { admin: { type: 'boolean', default: false } });
    return withStore(values, async (store) => {
      return runVerb('users', verb, {
        add: async () => {
          const name = identityName(positional(positionals, 0, 'user name'));
          if (name === OIDC_USERNAME) throw new UsageError(`"${OIDC_USERNAME}" is reserved: CI jobs log in as ${OIDC_USERNAME} with an ID token (ocireg trust add)`);
          return outcome(await store.createUser({ name, admin: values.admin === true, createdAt: Date.now() }), `created user ${name}${values.admin ? ' (admin)' : ''}; next: ocireg tokens create ${name}`, `user ${name} exists already`);
        },
        list: async () => {
          for (const user of (await store.listUsers()).sort((a, b) => a.name.localeCompare(b.name))) {
            print(`${user.name}\t${user.admin ? 'admin' : 'user'}\t${new Date(user.createdAt).toISOString()}`);
          }
          return 0;
        },
        show: async () => {
          const name = positional(positionals, 0, 'user name');
          const access = await store.getAccess(name);
          if (!access) {
            say(`no user ${name}`);
            return 1;
          }
          if (access.user.admin) print(`**\tadmin\tadmin`);
          for (const grant of access.grants) print(`${grant.glob}\t${grant.level}\t${grant.team === undefined ? 'user' : `team:${grant.team}`}`);
          const teams = (await store.listTeams()).filter((team) => team.members.includes(name)).map((team) => team.name);
          say(`${name}${access.user.admin ? ' (admin: every action on every repository)' : ''}; teams: ${teams.sort().join(', ') || 'none'}; the union of these grants applies`);
          return 0;
        },
        remove: async () => {
          const name = positional(positionals, 0, 'user name');
          return outcome(await store.deleteUser(name), `removed user ${name} with their tokens, grants and team memberships`, `no user ${name}`);
        },
      }, { rm: 'remove' });
    });
  }) satisfies Command,
};

export const tokens = {
  usage: `tokens     tokens create <user> [--scope <glob>:<actions>]... [--expires <30d|12h|…>] | tokens list [<user>] | tokens revoke <id>
             create prints only the token on stdout; use it as the password of docker login`,
  run: (async (args) => {
    const [verb, ...rest] = args;
    const { values, positionals } = parse(rest, { scope: { type: 'string', multiple: true }, expires: { type: 'string' } });
    return withStore(values, async (store) => {
      return runVerb('tokens', verb, {
        create: async () => {
          const user = positional(positionals, 0, 'user name');
          if (!(await store.getUser(user))) {
            say(`no user ${user}; create it first: ocireg users add ${user}`);
            return 1;
          }
          const secret = newTokenSecret();
          const now = Date.now();
          const scopes = ((values.scope as string[] | undefined) ?? []).map(parseTokenScope);
          await store.createToken({
            id: secret.id,
            user,
            secretHash: secret.secretHash,
            createdAt: now,
            ...(scopes.length > 0 ? { scopes } : {}),
            ...(typeof values.expires === 'string' ? { expiresAt: now + parseDuration(values.expires) } : {}),
          });
          print(secret.token);
          say(`token ${secret.id} for ${user}: shown once, store it now (docker login -u ${user} --password-stdin)`);
          return 0;
        },
        list: async () => {
          for (const token of await store.listTokens(positionals[0])) {
            const scopes = token.scopes?.map((s) => `${s.glob}:${s.level}`).join(' ') ?? 'all';
            const expires = token.expiresAt === undefined ? 'never' : new Date(token.expiresAt).toISOString();
            const used = token.lastUsedAt === undefined ? 'never' : new Date(token.lastUsedAt).toISOString();
            print(`${token.id}\t${token.user}\tscope=${scopes}\texpires=${expires}\tlast-used=${used}`);
          }
          return 0;
        },
        revoke: async () => {
          const id = positional(positionals, 0, 'token id');
          return outcome(await store.deleteToken(id), `revoked token ${id}; registry tokens already issued from it expire within 5 minutes`, `no token ${id}`);
        },
      });
    });
  }) satisfies Command,
};

export const grants = {
  usage: `grants     grants set [--team <team>] <user> <repo-glob> pull|push|delete|admin   (with --team, no <user>)
             grants list [<user> | --team <team>] | grants remove [--team <team>] <user> <repo-glob>
             a user may do what their own grants and their teams' grants allow, together`,
  run: (async (args) => {
    const [verb, ...rest] = args;
    const { values, positionals } = parse(rest, { team: { type: 'string' } });
    const team = typeof values.team === 'string' ? values.team : undefined;
    return withStore(values, async (store) => {
      return runVerb('grants', verb, {
        set: async () => {
          if (team !== undefined) {
            const grant = { glob: glob(positional(positionals, 0, 'repository glob')), level: level(positional(positionals, 1, 'level')) };
            return outcome(await store.setTeamGrant(team, grant), `members of ${team} may now ${grant.level} ${grant.glob}`, `no team ${team}; create it first: ocireg teams add ${team}`);
          }
          const user = positional(positionals, 0, 'user name');
          if (!(await store.getUser(user))) {
            say(`no user ${user}`);
            return 1;
          }
          const grant = { user, glob: glob(positional(positionals, 1, 'repository glob')), level: level(positional(positionals, 2, 'level')) };
          await store.setGrant(grant);
          say(`${user} may now ${grant.level} ${grant.glob}`);
          return 0;
        },
        list: async () => {
          if (team !== undefined) {
            const found = await store.getTeam(team);
            if (!found) {
              say(`no team ${team}`);
              return 1;
            }
            for (const grant of found.grants) print(`team:${team}\t${grant.glob}\t${grant.level}`);
            return 0;
          }
          for (const grant of await store.listGrants(positionals[0])) print(`${grant.user}\t${grant.glob}\t${grant.level}`);
          if (positionals[0] === undefined) {
            for (const found of await store.listTeams()) for (const grant of found.grants) print(`team:${found.name}\t${grant.glob}\t${grant.level}`);
          }
          return 0;
        },
        remove: async () => {
          const holder = team ?? positional(positionals, 0, 'user name');
          const target = positional(positionals, team === undefined ? 1 : 0, 'repository glob');
          const removed = team === undefined ? await store.removeGrant(holder, target) : await store.removeTeamGrant(holder, target);
          const who = team === undefined ? holder : `team ${holder}`;
          return outcome(removed, `removed the grant of ${target} to ${who}`, `no grant of ${target} to ${who}`);
        },
      }, { rm: 'remove', revoke: 'remove' });
    });
  }) satisfies Command,
};

export const repos = {
  usage: `repos      repos public <repo-glob> | repos private <repo-glob> | repos list-public
             public repositories allow anonymous pull (never push)`,
  run: (async (args) => {
    const [verb, ...rest] = args;
    const { values, positionals } = parse(rest);
    return withStore(values, async (store) => {
      const setPublic = (isPublic: boolean) => async () => {
        const target = glob(positional(positionals, 0, 'repository glob'));
        if (isPublic && !isValidName(target) && !target.includes('*')) throw new UsageError(`not a repository name or glob: ${target}`);
        await store.setPublic(target, isPublic);
        say(isPublic ? `${target}: anyone may pull` : `${target}: no longer public`);
        return 0;
      };
      return runVerb('repos', verb, {
        public: setPublic(true),
        private: setPublic(false),
        'list-public': async () => {
          for (const target of await store.listPublic()) print(target);
          return 0;
        },
      });
    });
  }) satisfies Command,
};
