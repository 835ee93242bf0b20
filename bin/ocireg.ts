#!/usr/bin/env node
import { UsageError, type Command } from '../lib/cli/command.ts';
import { PLUGIN_ENTRY, pluginArguments } from '../lib/cli/docker-plugin-command.ts';
import { errorMessage } from '../lib/registry/errors.ts';

interface CommandModule {
  run: Command;
  usage: string;
}

/** Subcommands load lazily so `ocireg serve` starts without the client code, and the reverse. */
const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  serve: () => import('../lib/cli/serve-command.ts'),
  users: async () => (await import('../lib/cli/admin-commands.ts')).users,
  tokens: async () => (await import('../lib/cli/admin-commands.ts')).tokens,
  grants: async () => (await import('../lib/cli/admin-commands.ts')).grants,
  teams: async () => (await import('../lib/cli/team-commands.ts')).teams,
  trust: async () => (await import('../lib/cli/trust-commands.ts')).trust,
  repos: async () => (await import('../lib/cli/admin-commands.ts')).repos,
  policy: async () => (await import('../lib/cli/policy-commands.ts')).policy,
  cache: async () => (await import('../lib/cli/cache-commands.ts')).cache,
  push: () => import('../lib/cli/push-command.ts'),
  proxy: () => import('../lib/cli/proxy-command.ts'),
  doctor: () => import('../lib/cli/doctor-command.ts'),
  history: async () => (await import('../lib/cli/version-commands.ts')).history,
  rollback: async () => (await import('../lib/cli/version-commands.ts')).rollback,
  tag: async () => (await import('../lib/cli/version-commands.ts')).tag,
  ls: async () => (await import('../lib/cli/version-commands.ts')).ls,
  login: () => import('../lib/cli/login-command.ts'),
  'install-docker-plugin': () => import('../lib/cli/docker-plugin-command.ts'),
  gc: () => import('../lib/cli/gc-command.ts'),
  usage: () => import('../lib/cli/usage-command.ts'),
};

async function usage(): Promise<string> {
  const lines = await Promise.all(Object.values(COMMANDS).map(async (load) => `  ${(await load()).usage}`));
  return `usage: ocireg <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === PLUGIN_ENTRY) {
    // Called back by the Docker CLI plugin that `install-docker-plugin` wrote.
    const translated = pluginArguments(argv.slice(1));
    if (translated === undefined) return 0;
    argv = translated;
  }
  const [name, ...args] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(await usage());
    return name === undefined ? 2 : 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    process.stderr.write(`ocireg: unknown command "${name}"\n${await usage()}`);
    return 2;
  }
  try {
    return await (await load()).run(args);
  } catch (error) {
    const message = errorMessage(error);
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`ocireg ${name}: ${message}\n${(await load()).usage}\n`);
      return 2;
    }
    process.stderr.write(`ocireg ${name}: ${message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
