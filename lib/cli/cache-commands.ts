import { resolve } from 'node:path';
import { isOciError } from '../registry/errors.ts';
import type { CacheRule, CacheRuleStore } from '../registry/ports.ts';
import { FsCacheRuleStore } from '../storage/fs/fs-cache-rule-store.ts';
import { FsKeys } from '../storage/fs/keys.ts';
import { outcome, parse, positional, print, say } from './admin-arguments.ts';
import { UsageError, type Command } from './command.ts';
import { STORE_USAGE } from './identity-store-option.ts';

/**
 * `ocireg cache`: the pull-through cache rules. `cache add hub https://registry-1.docker.io` makes
 * `<registry>/hub/library/alpine:3` a cached copy of Docker Hub's `library/alpine:3`.
 */
export const cache = {
  usage: `cache      cache add <prefix> <upstream-url> [--username U --password-stdin] | cache list | cache rm <prefix>
             pulls of <prefix>/<name> fetch <name> from the upstream once, then serve it from this registry
             (e.g. cache add hub https://registry-1.docker.io; docker pull <registry>/hub/library/alpine:3)
${STORE_USAGE}
             credentials: in the data dir's cache/rules.json (mode 0600), or on AWS in one Secrets Manager secret
             per rule, ocireg-cache/<table>/<prefix>, created and deleted with your AWS credentials`,
  run: (async (args) => {
    const [verb, ...rest] = args;
    const { values, positionals } = parse(rest, { username: { type: 'string' }, 'password-stdin': { type: 'boolean', default: false } });
    const { store, usernameOf } = await openCacheRuleStore(values);
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
        for (const rule of await store.list()) print(`${rule.prefix}\t${rule.upstream}\t${(await usernameOf(rule)) ?? 'anonymous'}`);
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

/**
 * The data dir's rules, or a deployed registry's (`--stack`/`--table`): items in its table, credentials in Secrets
 * Manager, where `usernameOf` reads them (for `cache list`).
 */
async function openCacheRuleStore(values: Record<string, unknown>): Promise<{ store: CacheRuleStore; usernameOf: (rule: CacheRule) => Promise<string | undefined> }> {
  const stack = values.stack as string | undefined;
  const table = values.table as string | undefined;
  const region = values.region as string | undefined;
  if (stack !== undefined && table !== undefined) throw new UsageError('give --stack or --table, not both');
  if (stack === undefined && table === undefined) {
    return { store: new FsCacheRuleStore(new FsKeys(resolve(values['data-dir'] as string))), usernameOf: async (rule) => rule.credentials?.username };
  }
  const [{ openDeployedTable }, { DynamoDbCacheRuleStore }, { CacheCredentialSecrets }, { createSecretsManagerClient }] = await Promise.all([
    import('../storage/dynamodb/deployed-identity-store.ts'),
    import('../storage/dynamodb/dynamodb-cache-rule-store.ts'),
    import('../storage/secrets/cache-credential-secrets.ts'),
    import('../storage/aws-clients.ts'),
  ]);
  const deployed = await openDeployedTable({ stack, table, region });
  const secrets = new CacheCredentialSecrets(createSecretsManagerClient(region ? { region } : {}));
  return {
    store: new DynamoDbCacheRuleStore({ ...deployed, secrets }),
    usernameOf: async (rule) => (rule.credentialsSecret === undefined ? undefined : (await secrets.read(rule.credentialsSecret)).username),
  };
}

async function readPassword(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (password === '') throw new UsageError('--password-stdin read an empty password');
  return password;
}
