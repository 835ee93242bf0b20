import { formatAge } from './retention-age.ts';
import { matchingTagGlob, type RepositoryPolicy } from './policy.ts';

/**
 * Retention rules over tags (policy.ts), as a plan: which tags and manifests of one repository go, each with its
 * reason. Pure: the facts come in a {@link RepositorySnapshot} (retention-snapshot.ts reads them from the stores),
 * and `ocireg gc` applies the plan through the registry's normal deletes, then sweeps; `--dry-run` prints the same
 * plan. A tag is kept when every rule keeps it:
 *
 * - protected (`--protect v*`): never expires, and does not use up a `--keep-last` slot;
 * - `--keep-last N`: the N most recently pushed of the other tags stay (re-tagging counts as a push);
 * - `--expire-after D`: a tag pushed more than D ago goes;
 * - `--expire-unpulled D`: a tag neither pushed nor pulled for D goes: its last activity is the latest of its push,
 *   its manifest's last push (re-pushing the same digest counts) and the manifest's last recorded pull (by any tag or
 *   the digest, recorded once a day: last-pull.ts); a manifest never pulled counts from its push; with none known,
 *   the tag stays;
 * - a tag whose push time is unknown (pushed before push times were recorded) is treated as pushed now: never
 *   expired by age, and among the newest for `--keep-last`.
 *
 * Manifests: everything a kept tag reaches stays (an index's children, recursively), as do the tag history's rollback targets of kept
 * tags (tag-history.ts rollbackTargets, per tag) and referrers (signatures, SBOMs) of anything kept. A manifest whose tags
 * all expired goes with them, with the children only it reached and its referrers; an untagged manifest goes
 * `--expire-untagged D` after it lost its last tag (or after its push when it never had one).
 */
export interface RetentionTag {
  tag: string;
  digest: string;
  /** When the tag was last set (ms since the epoch): pushed or re-tagged. */
  pushedAt?: number;
  /** When a pull last read its manifest, by any tag or by digest (recorded to the day). */
  pulledAt?: number;
  /** When a push last wrote its manifest (under any tag, or by digest); activity for `--expire-unpulled`. */
  manifestPushedAt?: number;
}

export interface RetentionManifest {
  digest: string;
  /** Child manifests of an index. */
  children: string[];
  /** The manifest this one refers to (a signature's or an SBOM's image). */
  subject?: string;
  /** Since when it has had no tag (ms since the epoch), or its push time; undefined when unknown. */
  untaggedSince?: number;
  /** Bytes of the manifest itself (reported when it goes). */
  size?: number;
}

export interface RepositorySnapshot {
  name: string;
  tags: RetentionTag[];
  manifests: RetentionManifest[];
  /** Per tag, the manifests its history names (its rollback targets): they stay while the tag stays. */
  rollbackTargets?: ReadonlyMap<string, readonly string[]>;
}

export interface RetentionPlan {
  tags: Array<{ name: string; tag: string; digest: string; reason: string }>;
  manifests: Array<{ name: string; digest: string; reason: string }>;
}

export function emptyPlan(): RetentionPlan {
  return { tags: [], manifests: [] };
}

/** The plan for one repository under `policy` at time `now`. */
export function planRepository(snapshot: RepositorySnapshot, policy: RepositoryPolicy, now: number): RetentionPlan {
  const { name } = snapshot;
  const plan = emptyPlan();
  const expired = new Map<string, string>();
  const candidates = snapshot.tags.filter((tag) => matchingTagGlob(policy.protect, tag.tag) === undefined);
  const pushed = (tag: RetentionTag) => tag.pushedAt ?? now;
  if (policy.keepLast !== undefined) {
    const newestFirst = [...candidates].sort((a, b) => pushed(b) - pushed(a) || (a.tag < b.tag ? -1 : 1));
    for (const tag of newestFirst.slice(policy.keepLast)) expired.set(tag.tag, `not among the ${policy.keepLast} most recently pushed tags`);
  }
  for (const tag of candidates) {
    if (expired.has(tag.tag)) continue;
    if (policy.expireAfterMs !== undefined && tag.pushedAt !== undefined && now - tag.pushedAt > policy.expireAfterMs) {
      expired.set(tag.tag, `pushed ${formatAge(now - tag.pushedAt)} ago (expire after ${formatAge(policy.expireAfterMs)})`);
      continue;
    }
    const active = Math.max(tag.pushedAt ?? -Infinity, tag.pulledAt ?? -Infinity, tag.manifestPushedAt ?? -Infinity);
    if (policy.expireUnpulledMs !== undefined && Number.isFinite(active) && now - active > policy.expireUnpulledMs) {
      expired.set(tag.tag, `neither pushed nor pulled for ${formatAge(now - active)} (expire unpulled after ${formatAge(policy.expireUnpulledMs)})`);
    }
  }
  for (const tag of snapshot.tags) {
    const reason = expired.get(tag.tag);
    if (reason !== undefined) plan.tags.push({ name, tag: tag.tag, digest: tag.digest, reason });
  }

  const manifests = new Map(snapshot.manifests.map((manifest) => [manifest.digest, manifest]));
  const referrers = new Map<string, string[]>();
  for (const manifest of snapshot.manifests) if (manifest.subject !== undefined) referrers.set(manifest.subject, [...(referrers.get(manifest.subject) ?? []), manifest.digest]);
  /** Everything `roots` reach through children and referrers. */
  const reach = (roots: Iterable<string>): Set<string> => {
    const seen = new Set<string>();
    const stack = [...roots];
    while (stack.length > 0) {
      const digest = stack.pop()!;
      if (seen.has(digest)) continue;
      seen.add(digest);
      stack.push(...(manifests.get(digest)?.children ?? []), ...(referrers.get(digest) ?? []));
    }
    return seen;
  };

  const keptTags = snapshot.tags.filter((tag) => !expired.has(tag.tag));
  const children = new Set(snapshot.manifests.flatMap((manifest) => manifest.children));
  // An index's children and referrers live and die with what they belong to; only top-level manifests are "untagged".
  const untaggedKept = snapshot.manifests.filter((manifest) => {
    if (snapshot.tags.some((tag) => tag.digest === manifest.digest) || manifest.subject !== undefined || children.has(manifest.digest)) return false;
    const since = manifest.untaggedSince;
    return policy.expireUntaggedMs === undefined || since === undefined || now - since <= policy.expireUntaggedMs;
  });
  const pinned = keptTags.flatMap((tag) => snapshot.rollbackTargets?.get(tag.tag) ?? []);
  const kept = reach([...keptTags.map((tag) => tag.digest), ...pinned, ...untaggedKept.map((manifest) => manifest.digest)]);
  const expiredDigests = new Set(plan.tags.map((tag) => tag.digest));
  const gone = reach([...expiredDigests, ...snapshot.manifests.filter((manifest) => manifest.subject === undefined).map((manifest) => manifest.digest)]);
  for (const digest of [...gone].sort()) {
    const manifest = manifests.get(digest);
    if (!manifest || kept.has(digest)) continue;
    let reason: string;
    if (expiredDigests.has(digest)) reason = 'its tags expired';
    else if (manifest.subject !== undefined && !kept.has(manifest.subject)) reason = `its subject ${manifest.subject} goes`;
    else if (snapshot.manifests.some((parent) => parent.children.includes(digest) && !kept.has(parent.digest))) reason = 'only a deleted index referenced it';
    else reason = `untagged for ${formatAge(now - (manifest.untaggedSince ?? now))} (expire untagged after ${formatAge(policy.expireUntaggedMs ?? 0)})`;
    plan.manifests.push({ name, digest, reason });
  }
  return plan;
}
