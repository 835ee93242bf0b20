import { resolve } from 'node:path';
import { isOciError } from '../registry/errors.ts';
import type { CacheRule, CacheRuleStore } from '../registry/ports.ts';
import { FsCacheRuleStore } from '../storage/fs/fs-cache-rule-store.ts';
import { FsKeys } from '../storage/fs/keys.ts';
import { outcome, parse, positional, print, say } from './admin-arguments.ts';
import { UsageError, type Command } from './command.ts';

/**
 * `ocireg cache`: the pull-through cache rules. `cache add hub https://registry-1.docker.io` makes
 * `<registry>/hub/library/alpine:3` a cached copy of Docker Hub's `library/alpine:3`.
 */
export const cache = {
  usage: `cache      cache add <prefix> <upstream-url> [--username U --password-stdin] | cache list | cache rm <prefix>
             pulls of <prefix>/<name> fetch <name> from the upstream once, then serve it from this registry
             (e.g. cache add hub https://registry-1.docker.io; docker pull <registry>/hub/library/alpine:3)
             --data-dir <dir>   the local registry's data dir (default ./data); the credentials are kept
                                there in cache/rules.json, mode 0600`,
  run: (async (args) => {
    const [verb, ...rest] = args;
    const { values, positionals } = parse(rest, { username: { type: 'string' }, 'password-stdin': { type: 'boolean', default: false } });
    if (values.stack !== undefined || values.table !== undefined) {
      throw new UsageError('cache rules are kept in the data dir only so far: --stack and --table are not supported by ocireg cache yet');
    }
    const store: CacheRuleStore = new FsCacheRuleStore(new FsKeys(resolve(values['data-dir'] as string)));
    switch (verb) {
      case 'add': {
        const rule: CacheRule = { prefix: positional(positionals, 0, 'prefix'), upstream: positional(positionals, 1, 'upstream URL').replace(/\/+$/, '') };
        const username = values.username as string | undefined;
        if ((username === undefined) !== (values['password-stdin'] !== true)) throw new UsageError('--username and --password-stdin go together');
        if (username !== undefined) rule.credentials = { username, password: await readPassword() };
        try {
          await store.put(rule);
        } catch (error) {
          if (isOciError(error)) throw new UsageError(error.message);
          throw error;
        }
        say(`cached ${rule.prefix}/<name> from ${rule.upstream}/<name>${rule.credentials ? ` as ${rule.credentials.username}` : ' anonymously'}; pushes to ${rule.prefix}/ are refused`);
        return 0;
      }
      case 'list':
        for (const rule of await store.list()) print(`${rule.prefix}\t${rule.upstream}\t${rule.credentials ? rule.credentials.username : 'anonymous'}`);
        return 0;
      case 'rm':
      case 'remove': {
        const prefix = positional(positionals, 0, 'prefix');
        return outcome(await store.remove(prefix), `removed the cache rule ${prefix} (cached content stays until deleted or collected)`, `no cache rule ${prefix}`);
      }
      default:
        throw new UsageError(`cache takes add, list or rm, got "${verb ?? ''}"`);
    }
  }) satisfies Command,
};

async function readPassword(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (password === '') throw new UsageError('--password-stdin read an empty password');
  return password;
}
