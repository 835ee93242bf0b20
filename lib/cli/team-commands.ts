import { identityName, outcome, parse, positional, print, say, withStore } from './admin-arguments.ts';
import { runVerb, UsageError, type Command } from './command.ts';

/**
 * `ocireg teams`: teams and their members. A team's grants (`ocireg grants set --team`) apply to each member on top
 * of their own; `ocireg users show <user>` prints the result.
 */
export const teams = {
  usage: `teams      teams add <team> | teams rm <team> | teams list | teams members add|rm <team> <user>
             list prints <team> <members, comma-separated> <grants as glob=level>`,
  run: (async (args) => {
    const [verb, ...rest] = args;
    if (verb === 'members') return members(rest);
    const { values, positionals } = parse(rest);
    return withStore(values, async (store) => {
      switch (verb) {
        case 'add': {
          const name = identityName(positional(positionals, 0, 'team name'), 'team');
          return outcome(await store.createTeam({ name, createdAt: Date.now() }), `created team ${name}; next: ocireg teams members add ${name} <user>, ocireg grants set --team ${name} <repo-glob> <level>`, `team ${name} exists already`);
        }
        case 'rm':
        case 'remove': {
          const name = positional(positionals, 0, 'team name');
          return outcome(await store.deleteTeam(name), `removed team ${name}; its members lose its grants at their next token (within 5 minutes)`, `no team ${name}`);
        }
        case 'list':
          for (const team of (await store.listTeams()).sort((a, b) => a.name.localeCompare(b.name))) {
            print(`${team.name}\t${team.members.join(',') || '-'}\t${team.grants.map((grant) => `${grant.glob}=${grant.level}`).join(' ') || '-'}`);
          }
          return 0;
        default:
          throw new UsageError(`teams takes add, rm, list or members, got "${verb ?? ''}"`);
      }
    });
  }) satisfies Command,
};

async function members(args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  const { values, positionals } = parse(rest);
  const team = positional(positionals, 0, 'team name');
  const user = positional(positionals, 1, 'user name');
  return withStore(values, async (store) => {
    return runVerb('teams members', verb, {
      add: async () => {
        const result = await store.addTeamMember(team, user);
        if (result === 'no-team') say(`no team ${team}; create it first: ocireg teams add ${team}`);
        else if (result === 'no-user') say(`no user ${user}; create it first: ocireg users add ${user}`);
        else say(`${user} is a member of ${team}`);
        return result === 'added' ? 0 : 1;
      },
      rm: async () => {
        return outcome(await store.removeTeamMember(team, user), `removed ${user} from ${team}; they lose its grants at their next token (within 5 minutes)`, `${user} is not a member of ${team}`);
      },
    }, { remove: 'rm' });
  });
}
