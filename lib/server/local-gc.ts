import type { GcRemoval, GcReport } from '../registry/gc/gc-report.ts';
import { runGc, type RetentionPlanner } from '../registry/gc/run-gc.ts';
import type { BlobStore, GcStore, MetadataStore } from '../registry/ports.ts';
import type { ControlHandlers, GcRequest } from './control-socket.ts';

/**
 * Garbage collection inside the process that owns a data dir: `ocireg gc` through the control socket, and
 * `ocireg serve --gc-every`. Runs one at a time (a second waits for the first): the in-process marks assume it.
 */
export class LocalGc implements ControlHandlers {
  readonly #storage: { metadata: MetadataStore & GcStore; blobs: BlobStore };
  readonly #plan: RetentionPlanner | undefined;
  readonly #collected: ((removal: GcRemoval) => Promise<void>) | undefined;
  #last: Promise<unknown> = Promise.resolve();

  /**
   * `collected` is told of each removal of a real run (not of a dry run), as it happens: the registry's events and
   * tag history (TagVersions.recordCollected). Its failures are its own: the run goes on.
   */
  constructor(storage: { metadata: MetadataStore & GcStore; blobs: BlobStore }, plan?: RetentionPlanner, collected?: (removal: GcRemoval) => Promise<void>) {
    this.#storage = storage;
    this.#plan = plan;
    this.#collected = collected;
  }

  gc(request: GcRequest): Promise<GcReport> {
    const run = this.#last.then(() =>
      runGc({
        ...this.#storage,
        dryRun: request.dryRun,
        ...(request.graceMs !== undefined ? { graceMs: request.graceMs } : {}),
        ...(this.#plan ? { plan: this.#plan } : {}),
        ...(this.#collected && !request.dryRun ? { onRemoved: reportTo(this.#collected) } : {}),
      }),
    );
    this.#last = run.catch(() => undefined);
    return run;
  }
}

/** runGc's synchronous callback onto an asynchronous recorder whose failure must not stop the run. */
function reportTo(collected: (removal: GcRemoval) => Promise<void>): (removal: GcRemoval) => void {
  return (removal) => void collected(removal).catch(() => undefined);
}

/** The one JSON line a run logs (serve --gc-every, the scheduled function): totals, not the list. */
export function gcSummary(report: GcReport): Record<string, unknown> {
  return {
    msg: 'gc',
    runId: report.runId,
    dryRun: report.dryRun,
    complete: report.complete,
    bytesFreed: report.bytesFreed,
    objectsDeleted: report.objectsDeleted,
    scanned: report.scanned,
    durationMs: report.durationMs,
  };
}
