import { randomUUID } from 'node:crypto';
import type { GcRemoval } from './gc/gc-report.ts';
import type { RetentionPlanner } from './gc/run-gc.ts';
import type { GcStore, MetadataStore, PolicyStore } from './ports.ts';
import type { RepositorySnapshot, RetentionPlan } from './retention.ts';
import { planRepositories } from './retention-snapshot.ts';
import { collectedBy, type HistoryWrite, type TagHistoryStore } from './tag-history.ts';

export interface StoreRetentionPlannerOptions {
  metadata: MetadataStore & GcStore;
  policies: PolicyStore;
  /** Push times, untagged times and rollback targets (each kept tag's last K changes: RepositoryPolicy.keepHistory). */
  history?: TagHistoryStore;
}

/**
 * The retention rules (retention.ts) applied by `ocireg gc`, `serve --gc-every` and the scheduled function, before
 * the sweep: repository by repository, the plan of its policy is read from the stores and carried out, or in a dry
 * run only reported, one removal per tag and manifest (repository, tag or digest, the manifest's bytes, the rule).
 *
 * The plan is a snapshot; pushes go on while it is applied, so every delete is conditional on what the plan saw:
 * - a manifest goes through garbage collection's doom (GcStore.doomManifest): refused when a push wrote it, tagged
 *   it or referenced it (an index) since the run began (`since`), then dropped with the tags that still point at it;
 *   a push of it meanwhile waits for the drop (memory, fs) or makes the drop fail (DynamoDB), and stands;
 * - a tag whose manifest stays (another tag or a rollback target keeps it) is deleted only while it still points
 *   at the digest the plan saw (MetadataStore.deleteTag with a digest), its `removed by retention` change in the same
 *   write; tags dropped with their manifest get theirs from the report (TagVersions.recordCollected);
 * - parents go before their children and subjects before their referrers, and a child (or referrer) whose planned
 *   parent (or subject) was spared is spared too: nothing a kept manifest needs is ever removed.
 * ```
 *   retention (since = run start − clock tolerance)       push
 *   ──────────────────────────────────────────────────     ────────────────────────────
 *   snapshot: t → M, expired
 *                                                          t → M again (re-push: M stamped ≥ since)
 *   doomManifest(M) ✗ (stamped ≥ since) → M, t stay
 *
 *   doomManifest(M) ✓
 *                                                          push M: waits (memory, fs) / rewrites M (DynamoDB)
 *   dropManifest(M): M and t gone (memory, fs; the push then writes M anew) / ✗ no longer doomed (DynamoDB)
 * ```
 * Each removal goes to `report` as it happens: the run's list, and (real runs) events and tag history.
 */
export class StoreRetentionPlanner implements RetentionPlanner {
  readonly #options: StoreRetentionPlannerOptions;

  constructor(options: StoreRetentionPlannerOptions) {
    this.#options = options;
  }

  /** Repository by repository; past the deadline it stops before the next one (`complete: false`). */
  async apply(context: { dryRun: boolean; now: number; report: (removal: GcRemoval) => void; pastDeadline?: () => boolean }): Promise<{ manifests: { name: string; digest: string }[]; complete: boolean }> {
    const { metadata, history, policies } = this.#options;
    const run = { ...context, runId: randomUUID(), since: context.now - metadata.clockToleranceMs, removed: [] as { name: string; digest: string }[] };
    const sources = history ? { metadata, history } : { metadata };
    for await (const { snapshot, plan } of planRepositories(sources, await policies.listPolicies(), context.now)) {
      await this.#applyRepository(snapshot, plan, run);
      if (context.pastDeadline?.()) return { manifests: run.removed, complete: false };
    }
    return { manifests: run.removed, complete: true };
  }

  async #applyRepository(snapshot: RepositorySnapshot, plan: RetentionPlan, run: { dryRun: boolean; report: (removal: GcRemoval) => void; runId: string; since: number; removed: { name: string; digest: string }[] }): Promise<void> {
    const { metadata } = this.#options;
    const { name } = snapshot;
    const planned = new Map(plan.manifests.map((manifest) => [manifest.digest, manifest]));
    const byDigest = new Map(snapshot.manifests.map((manifest) => [manifest.digest, manifest]));
    // What must go first: the planned parents (indexes listing it) and the planned subject of each planned manifest.
    const first = new Map<string, string[]>();
    for (const digest of planned.keys()) {
      const parents = snapshot.manifests.filter((manifest) => manifest.children.includes(digest) && planned.has(manifest.digest)).map((manifest) => manifest.digest);
      const subject = byDigest.get(digest)?.subject;
      first.set(digest, subject !== undefined && planned.has(subject) ? [...parents, subject] : parents);
    }
    const outcome = new Map<string, boolean>();
    const tagsOf = (digest: string) => plan.tags.filter((tag) => tag.digest === digest);

    for (const tag of plan.tags) {
      if (planned.has(tag.digest)) continue;
      if (run.dryRun || (await metadata.deleteTag(name, tag.tag, tag.digest, this.#recorded(tag.reason)))) run.report({ kind: 'tag', ...tag });
    }
    while (outcome.size < planned.size) {
      const ready = [...planned.keys()].filter((digest) => !outcome.has(digest) && first.get(digest)!.every((before) => outcome.has(before)));
      if (ready.length === 0) break; // a cycle cannot be (a digest names its content), but never spin on one
      for (const digest of ready.sort()) {
        const manifest = planned.get(digest)!;
        const gone = first.get(digest)!.every((before) => outcome.get(before)) && (run.dryRun || (await this.#dropManifest(name, digest, run)));
        outcome.set(digest, gone);
        if (!gone) continue;
        for (const tag of tagsOf(digest)) run.report({ kind: 'tag', ...tag });
        run.report({ kind: 'manifest', name, digest, bytes: byDigest.get(digest)?.size ?? 0, reason: manifest.reason });
        run.removed.push({ name, digest });
      }
    }
  }

  /** The tag history an expired tag's delete writes with it (`removed by retention: <rule>`, by gc). */
  #recorded(reason: string): { history?: HistoryWrite } {
    const { history } = this.#options;
    return history ? { history: { depth: history.depth, stamp: { ...collectedBy(reason), at: new Date().toISOString() } } } : {};
  }

  async #dropManifest(name: string, digest: string, run: { runId: string; since: number }): Promise<boolean> {
    const { metadata } = this.#options;
    return (await metadata.doomManifest(name, digest, run.runId, run.since)) && (await metadata.dropManifest(name, digest, run.runId));
  }
}
