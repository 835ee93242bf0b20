import { listAll } from './retention-listing.ts';
import { parseManifest } from './manifest.ts';
import { policyFor, type RepositoryPolicy } from './policy.ts';
import type { MetadataStore } from './ports.ts';
import { emptyPlan, planRepository, type RepositorySnapshot, type RetentionManifest, type RetentionPlan, type RetentionTag } from './retention.ts';
import { DEFAULT_HISTORY_DEPTH, rollbackTargets, type TagChange, type TagHistoryStore } from './tag-history.ts';
import type { StoredManifest } from './types.ts';

export interface RetentionSources {
  metadata: MetadataStore;
  /** Tag history: when each tag was set, when a manifest lost its last tag, and rollback targets to keep. */
  history?: TagHistoryStore;
  /**
   * The digests of every manifest of a repository, when the store can list them (garbage collection's mark phase
   * does); without it, the untagged manifests found are those the tag history names.
   */
  listManifests?: (name: string) => Promise<string[]>;
}

/**
 * The retention plan of every repository a policy with retention rules applies to: what `ocireg gc` deletes
 * through the registry's normal deletes before it sweeps, and what `--dry-run` prints.
 */
export async function planRetention(sources: RetentionSources, policies: readonly RepositoryPolicy[], now: number): Promise<RetentionPlan> {
  const plan = emptyPlan();
  for await (const repository of planRepositories(sources, policies, now)) {
    plan.tags.push(...repository.plan.tags);
    plan.manifests.push(...repository.plan.manifests);
  }
  return plan;
}

/** Repository by repository, the snapshot read and its plan (the retention planner applies each before the next). */
export async function* planRepositories(sources: RetentionSources, policies: readonly RepositoryPolicy[], now: number): AsyncGenerator<{ snapshot: RepositorySnapshot; plan: RetentionPlan }> {
  if (!policies.some(hasRetentionRules)) return;
  for (const name of await listAll((page) => sources.metadata.listRepositories(page))) {
    const policy = policyFor(policies, name);
    if (!policy || !hasRetentionRules(policy)) continue;
    const snapshot = await loadSnapshot(sources, name, policy.keepHistory);
    yield { snapshot, plan: planRepository(snapshot, policy, now) };
  }
}

/** Whether `policy` has a rule that expires anything (immutability, protection and quotas alone expire nothing). */
export function hasRetentionRules(policy: RepositoryPolicy): boolean {
  return policy.keepLast !== undefined || policy.expireAfterMs !== undefined || policy.expireUnpulledMs !== undefined || policy.expireUntaggedMs !== undefined;
}

/**
 * The facts the rules need about repository `name`, read from the stores; each tag's rollback targets are the
 * digests of its last `keepHistory` changes.
 */
export async function loadSnapshot(sources: RetentionSources, name: string, keepHistory = DEFAULT_HISTORY_DEPTH): Promise<RepositorySnapshot> {
  const { metadata, history } = sources;
  const [changes, activity] = await Promise.all([history ? history.listRepository(name) : new Map<string, TagChange[]>(), metadata.manifestActivity(name)]);
  const tags: RetentionTag[] = [];
  const found = new Map<string, StoredManifest>();
  const tagNames = await listAll(async (page) => (await metadata.listTags(name, page)) ?? { items: [], hasMore: false });
  for (const tag of tagNames) {
    const manifest = await metadata.resolveTag(name, tag);
    if (!manifest) continue;
    found.set(manifest.digest, manifest);
    const set = (changes.get(tag) ?? []).find((change) => change.digest === manifest.digest);
    const entry: RetentionTag = { tag, digest: manifest.digest };
    if (set) entry.pushedAt = Date.parse(set.at);
    const { pulledAt, pushedAt } = activity.get(manifest.digest) ?? {};
    if (pulledAt !== undefined) entry.pulledAt = pulledAt;
    if (pushedAt !== undefined) entry.manifestPushedAt = pushedAt;
    tags.push(entry);
  }
  // Untagged manifests: listed by the store when it can, else those the history says lost a tag.
  const untaggedSince = new Map<string, number>();
  for (const kept of changes.values()) {
    for (const change of kept) {
      if (change.previous === undefined) continue;
      const at = Date.parse(change.at);
      untaggedSince.set(change.previous, Math.max(untaggedSince.get(change.previous) ?? -Infinity, at));
    }
  }
  // A manifest pushed by digest and never tagged is untagged since its push.
  for (const [digest, { pushedAt }] of activity) {
    if (pushedAt !== undefined) untaggedSince.set(digest, Math.max(untaggedSince.get(digest) ?? -Infinity, pushedAt));
  }
  const candidates = new Set([...(sources.listManifests ? await sources.listManifests(name) : []), ...activity.keys(), ...untaggedSince.keys()]);
  for (const digest of candidates) {
    if (found.has(digest)) continue;
    const manifest = await metadata.getManifest(name, digest);
    if (manifest) found.set(digest, manifest);
  }
  // Children of indexes and referrers, to any depth.
  const queue = [...found.values()];
  const manifests: RetentionManifest[] = [];
  while (queue.length > 0) {
    const manifest = queue.shift()!;
    const children = childrenOf(manifest);
    const entry: RetentionManifest = { digest: manifest.digest, children, size: manifest.content.byteLength };
    if (manifest.subject !== undefined) entry.subject = manifest.subject;
    const since = untaggedSince.get(manifest.digest);
    if (since !== undefined) entry.untaggedSince = since;
    manifests.push(entry);
    const referrers = (await metadata.listReferrers(name, manifest.digest)).map((descriptor) => descriptor.digest);
    for (const digest of [...children, ...referrers]) {
      if (found.has(digest)) continue;
      const next = await metadata.getManifest(name, digest);
      if (!next) continue;
      found.set(digest, next);
      queue.push(next);
    }
  }
  // The planner keeps the rollback targets of the tags it keeps.
  const targets = new Map(tags.map((tag) => [tag.tag, rollbackTargets(changes.get(tag.tag) ?? [], keepHistory)]));
  return { name, tags, manifests, rollbackTargets: targets };
}

function childrenOf(manifest: StoredManifest): string[] {
  try {
    return parseManifest(manifest.content, manifest.mediaType).manifests;
  } catch {
    return [];
  }
}
