import type { BlobStore, GcStore, MetadataStore } from '../ports.ts';
import { GcRun } from './collector.ts';
import { bytesFreedBy, type GcRemoval, type GcReport } from './gc-report.ts';

/**
 * Retention rules, applied before the sweep (provided by the retention-policy feature). It deletes the tags and
 * manifests its rules expire, or in a dry run only lists them, reporting each through `report`, and returns the
 * manifests it deleted or would delete, so that a dry run's sweep lists the blobs they free as the real run would.
 * It stops when `pastDeadline()` says so and answers `complete: false`: the run then skips its sweep (a scan would
 * not fit either) and the next run starts over.
 */
export interface RetentionPlanner {
  apply(context: { dryRun: boolean; now: number; report: (removal: GcRemoval) => void; pastDeadline: () => boolean }): Promise<{ manifests: { name: string; digest: string }[]; complete?: boolean }>;
}

export interface RunGcOptions {
  metadata: MetadataStore & GcStore;
  blobs: BlobStore;
  plan?: RetentionPlanner;
  dryRun?: boolean;
  graceMs?: number;
  /** Stop at this time (epoch ms); the next run continues. */
  deadline?: number;
  /** Removals in flight at once (collector.ts). */
  concurrency?: number;
  onRemoved?: (removal: GcRemoval) => void;
  now?: () => number;
}

/** `ocireg gc`, the scheduled function and `serve --gc-every`: retention rules first, then one collector run. */
export async function runGc(options: RunGcOptions): Promise<GcReport> {
  const now = options.now ?? Date.now;
  const started = now();
  const planned: GcRemoval[] = [];
  const report = (removal: GcRemoval) => {
    planned.push(removal);
    options.onRemoved?.(removal);
  };
  const pastDeadline = () => options.deadline !== undefined && now() >= options.deadline;
  const retained = options.plan ? await options.plan.apply({ dryRun: options.dryRun ?? false, now: started, report, pastDeadline }) : { manifests: [] };
  const run = new GcRun({
    metadata: options.metadata,
    blobs: options.blobs,
    // Only a dry run's sweep needs to be told what the rules removed (nothing was). A real run's scan sees what is
    // really there: a manifest pushed again after its drop must keep its blobs, so it is not listed as removed.
    removedManifests: options.dryRun ? retained.manifests : [],
    now,
    ...(options.dryRun !== undefined ? { dryRun: options.dryRun } : {}),
    ...(options.graceMs !== undefined ? { graceMs: options.graceMs } : {}),
    ...(options.deadline !== undefined ? { deadline: options.deadline } : {}),
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    ...(options.onRemoved !== undefined ? { onRemoved: options.onRemoved } : {}),
  });
  const swept = retained.complete === false ? { ...run.report(), complete: false } : await run.run();
  const removals = [...planned, ...swept.removals];
  return { ...swept, removals, bytesFreed: bytesFreedBy(removals), objectsDeleted: removals.length, durationMs: now() - started };
}
