import { matchesGlob } from '../auth/repository-glob.ts';

/**
 * Storage policies: per repository glob, what retention keeps, which tags cannot move, and how many bytes the
 * repository may hold. Written by `ocireg policy`, read by the registry (immutability, quotas) and by the retention
 * planner that `ocireg gc` runs (retention.ts).
 *
 * One policy applies to a repository: the most specific glob that matches it (see {@link policyFor}), so a rule for
 * `team/app` overrides one for `team/*`, which overrides `**`. Policies do not merge: a narrower rule is written whole.
 */
export interface RepositoryPolicy {
  /** Repository glob, as for grants: `*` within one path component, `**` across components. */
  glob: string;
  /** Retention keeps the N most recently pushed tags (re-tagging counts as a push). */
  keepLast?: number;
  /** Retention expires tags pushed longer ago than this (ms). */
  expireAfterMs?: number;
  /** Retention expires tags neither pushed nor pulled for this long (ms); pulls are recorded to the day. */
  expireUnpulledMs?: number;
  /** Retention deletes manifests that no tag and no kept index points at, this long after their push (ms). */
  expireUntaggedMs?: number;
  /**
   * Retention keeps the manifests named by each kept tag's last K history changes (its rollback targets).
   * @default DEFAULT_HISTORY_DEPTH (10, tag-history.ts); never more than the history store keeps per tag
   */
  keepHistory?: number;
  /** Tag globs that retention never expires (`v*`, `prod-*`): the "retain" action. */
  protect: string[];
  /** Tags cannot be moved to another manifest once pushed, except those matching {@link mutableTags}. */
  immutable: boolean;
  /** With `immutable`, the tags that may still move (`latest`, `dev-*`). */
  mutableTags: string[];
  /** Most bytes of blobs linked into the repository (unique to it or shared; manifests not counted): quota.ts; undefined: no quota. */
  quotaBytes?: number;
  updatedAt: number;
}

/**
 * The policy for repository `name`: among the globs that match, the one with the most literal characters (an exact
 * name beats `team/*`, which beats `**`); a tie goes to the lexically first glob, so the choice never depends on the
 * order a backend lists them in.
 */
export function policyFor(policies: readonly RepositoryPolicy[], name: string): RepositoryPolicy | undefined {
  let best: RepositoryPolicy | undefined;
  for (const policy of policies) {
    if (!matchesGlob(policy.glob, name)) continue;
    if (!best || specificity(policy.glob) > specificity(best.glob) || (specificity(policy.glob) === specificity(best.glob) && policy.glob < best.glob)) best = policy;
  }
  return best;
}

function specificity(glob: string): number {
  return glob.replace(/\*/g, '').length * 2 - (glob.includes('**') ? 1 : 0);
}

/** Tag globs: a tag's characters with `*` for any run of them (tags hold no `/`, so `*` and `**` are the same). */
export function isValidTagGlob(glob: string): boolean {
  return /^[A-Za-z0-9_*][A-Za-z0-9._*-]{0,127}$/.test(glob);
}

export function matchesTagGlob(glob: string, tag: string): boolean {
  return matchesGlob(glob, tag);
}

/** The first of `globs` that `tag` matches, or undefined. */
export function matchingTagGlob(globs: readonly string[], tag: string): string | undefined {
  return globs.find((glob) => matchesTagGlob(glob, tag));
}

/** Whether pushing `tag` in a repository under `policy` may move the tag to another manifest. */
export function tagMayMove(policy: RepositoryPolicy | undefined, tag: string): boolean {
  return !policy?.immutable || matchingTagGlob(policy.mutableTags, tag) !== undefined;
}
