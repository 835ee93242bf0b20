import { isValidTagGlob, type RepositoryPolicy } from '../registry/policy.ts';
import { DEFAULT_HISTORY_DEPTH } from '../registry/tag-history.ts';
import { glob, parse, positional, print, say } from './admin-arguments.ts';
import { formatDuration, positiveDuration } from './duration.ts';
import { formatSize, parseSize } from './byte-size.ts';
import { runVerb, UsageError, type Command } from './command.ts';
import { openPolicyStore, STORE_USAGE } from './identity-store-option.ts';

/**
 * `ocireg policy`: storage policies per repository glob (lib/registry/policy.ts): retention rules that `ocireg gc`
 * applies, immutable tags and quotas that pushes meet. A running registry sees a change within seconds
 * (lib/registry/policy-cache.ts). See README "Keeping storage (and the bill) in check".
 */
export const policy = {
  usage: `policy     policy set <repo-glob> [--keep-last N] [--expire-after DURATION] [--expire-unpulled DURATION]
                [--expire-untagged DURATION] [--keep-history K] [--protect TAG-GLOB]... [--immutable [--mutable-tags TAG-GLOB]...] [--quota SIZE]
             policy list [--json] | policy rm <repo-glob>
             durations like 7d or 12h, sizes like 10GiB; set replaces the glob's policy whole; the most specific glob applies
${STORE_USAGE}`,
  run: (async (args) => {
    const [verb, ...rest] = args;
    const { values, positionals } = parse(rest, {
      'keep-last': { type: 'string' },
      'keep-history': { type: 'string' },
      'expire-after': { type: 'string' },
      'expire-unpulled': { type: 'string' },
      'expire-untagged': { type: 'string' },
      protect: { type: 'string', multiple: true },
      immutable: { type: 'boolean', default: false },
      'mutable-tags': { type: 'string', multiple: true },
      quota: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    return runVerb('policy', verb, {
      set: async () => {
        const written = policyOf(glob(positional(positionals, 0, 'repository glob')), values);
        if (positionals.length > 1) throw new UsageError(`policy set takes one repository glob, got ${positionals.join(' ')}`);
        await (await openPolicyStore(values)).putPolicy(written);
        say(`policy for ${written.glob}: ${describePolicy(written)}`);
        return 0;
      },
      list: async () => {
        const policies = (await (await openPolicyStore(values)).listPolicies()).sort((a, b) => (a.glob < b.glob ? -1 : 1));
        if (values.json) print(JSON.stringify(policies, null, 2));
        else for (const listed of policies) print(`${listed.glob}\t${policyArguments(listed).join(' ')}`);
        return 0;
      },
      rm: async () => {
        const target = positional(positionals, 0, 'repository glob');
        if (!(await (await openPolicyStore(values)).deletePolicy(target))) {
          say(`no policy for ${target}`);
          return 1;
        }
        say(`removed the policy for ${target}`);
        return 0;
      },
    }, { remove: 'rm' });
  }) satisfies Command,
};

/** The policy that `policy set <glob> …options` writes; a clear UsageError for anything it cannot be. */
export function policyOf(repositoryGlob: string, values: Record<string, unknown>, now = Date.now()): RepositoryPolicy {
  const written: RepositoryPolicy = { glob: repositoryGlob, protect: tagGlobs(values.protect, '--protect'), immutable: values.immutable === true, mutableTags: tagGlobs(values['mutable-tags'], '--mutable-tags'), updatedAt: now };
  if (typeof values['keep-last'] === 'string') {
    if (!/^[1-9]\d{0,5}$/.test(values['keep-last'])) throw new UsageError(`--keep-last is a whole number of tags from 1, got "${values['keep-last']}"`);
    written.keepLast = Number(values['keep-last']);
  }
  if (typeof values['keep-history'] === 'string') {
    if (!/^\d{1,3}$/.test(values['keep-history'])) throw new UsageError(`--keep-history is how many changes of each kept tag keep their manifests (a whole number; default ${DEFAULT_HISTORY_DEPTH}, at most what the history keeps), got "${values['keep-history']}"`);
    written.keepHistory = Number(values['keep-history']);
  }
  for (const [option, field] of [['expire-after', 'expireAfterMs'], ['expire-unpulled', 'expireUnpulledMs'], ['expire-untagged', 'expireUntaggedMs']] as const) {
    const value = values[option];
    if (typeof value === 'string') written[field] = positiveDuration(`--${option}`, value);
  }
  if (typeof values.quota === 'string') written.quotaBytes = parseSize(values.quota);
  if (written.mutableTags.length > 0 && !written.immutable) throw new UsageError('--mutable-tags names the exceptions to --immutable: give --immutable too');
  const rules = written.keepLast ?? written.expireAfterMs ?? written.expireUnpulledMs ?? written.expireUntaggedMs ?? written.quotaBytes;
  if (rules === undefined && !written.immutable && written.protect.length === 0) {
    throw new UsageError(`give at least one rule for ${repositoryGlob}: --keep-last, --expire-after, --expire-unpulled, --expire-untagged, --protect, --immutable or --quota`);
  }
  return written;
}

function tagGlobs(value: unknown, option: string): string[] {
  const globs = (value as string[] | undefined) ?? [];
  for (const tagGlob of globs) {
    if (!isValidTagGlob(tagGlob)) throw new UsageError(`${option} is a tag glob: tag characters (A-Z a-z 0-9 _ . -) and * for any run of them, e.g. 'v*' or latest, got "${tagGlob}"`);
  }
  return globs;
}

/** The `policy set` options that write this policy again: what `policy list` prints. */
export function policyArguments(listed: RepositoryPolicy): string[] {
  const args: string[] = [];
  if (listed.keepLast !== undefined) args.push('--keep-last', String(listed.keepLast));
  if (listed.expireAfterMs !== undefined) args.push('--expire-after', formatDuration(listed.expireAfterMs));
  if (listed.expireUnpulledMs !== undefined) args.push('--expire-unpulled', formatDuration(listed.expireUnpulledMs));
  if (listed.expireUntaggedMs !== undefined) args.push('--expire-untagged', formatDuration(listed.expireUntaggedMs));
  if (listed.keepHistory !== undefined) args.push('--keep-history', String(listed.keepHistory));
  for (const tagGlob of listed.protect) args.push('--protect', `'${tagGlob}'`);
  if (listed.immutable) args.push('--immutable');
  for (const tagGlob of listed.mutableTags) args.push('--mutable-tags', `'${tagGlob}'`);
  if (listed.quotaBytes !== undefined) args.push('--quota', formatSize(listed.quotaBytes));
  return args;
}

function describePolicy(written: RepositoryPolicy): string {
  const parts: string[] = [];
  if (written.keepLast !== undefined) parts.push(`gc keeps the last ${written.keepLast} tags pushed`);
  if (written.expireAfterMs !== undefined) parts.push(`expires tags pushed over ${formatDuration(written.expireAfterMs)} ago`);
  if (written.expireUnpulledMs !== undefined) parts.push(`expires tags not pulled for ${formatDuration(written.expireUnpulledMs)}`);
  if (written.expireUntaggedMs !== undefined) parts.push(`deletes untagged manifests after ${formatDuration(written.expireUntaggedMs)}`);
  if (written.keepHistory !== undefined) parts.push(`keeps the manifests of each kept tag's last ${written.keepHistory} changes`);
  if (written.protect.length > 0) parts.push(`never expires ${written.protect.join(', ')}`);
  if (written.immutable) parts.push(`tags are immutable${written.mutableTags.length > 0 ? ` except ${written.mutableTags.join(', ')}` : ''}`);
  if (written.quotaBytes !== undefined) parts.push(`pushes stop at ${formatSize(written.quotaBytes)}`);
  return `${parts.join('; ')} (in effect within seconds; retention runs with ocireg gc)`;
}
