import type { GcReport } from '../registry/gc/gc-report.ts';
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
  #last: Promise<unknown> = Promise.resolve();

  constructor(storage: { metadata: MetadataStore & GcStore; blobs: BlobStore }, plan?: RetentionPlanner) {
    this.#storage = storage;
    this.#plan = plan;
  }

  gc(request: GcRequest): Promise<GcReport> {
    const run = this.#last.then(() =>
      runGc({
        ...this.#storage,
        dryRun: request.dryRun,
        ...(request.graceMs !== undefined ? { graceMs: request.graceMs } : {}),
        ...(this.#plan ? { plan: this.#plan } : {}),
      }),
    );
    this.#last = run.catch(() => undefined);
    return run;
  }
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
