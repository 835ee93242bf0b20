import type { GcStore } from '../ports.ts';
import type { GcEntry } from './gc-entries.ts';
import { scanned, type ScannedManifest } from './scanned-manifest.ts';

const PAGE_SIZE = 1000;
/** Chains of a store's scan read side by side (GcStore.scanStarts: the segments of a DynamoDB parallel Scan). */
export const SCAN_SEGMENTS = 4;

/**
 * What one run's scan found (the collector's mark phase): manifests as their references, everything else by kind,
 * all in memory until the run ends. `cut` when the deadline stopped the scan: a partial scan proves nothing
 * unreferenced, so the run then sweeps nothing.
 */
export class ScanMarks {
  readonly manifests: ScannedManifest[] = [];
  readonly found: { [K in Exclude<GcEntry['kind'], 'manifest'>]: Extract<GcEntry, { kind: K }>[] } = {
    link: [],
    blob: [],
    upload: [],
    bytes: [],
    'upload-data': [],
    'manifest-body': [],
  };
  cut = false;

  /** Pages through everything `store` holds, its chains side by side, until done or `pastDeadline()`. */
  async read(store: GcStore, pastDeadline: () => boolean): Promise<void> {
    const starts = store.scanStarts?.(SCAN_SEGMENTS) ?? [undefined];
    await Promise.all(starts.map((start) => this.#readChain(store, start, pastDeadline)));
  }

  async #readChain(store: GcStore, start: string | undefined, pastDeadline: () => boolean): Promise<void> {
    let cursor = start;
    do {
      if (this.cut || pastDeadline()) {
        this.cut = true;
        return;
      }
      const page = await store.scan(cursor, PAGE_SIZE);
      for (const entry of page.items) {
        if (entry.kind === 'manifest') this.manifests.push(scanned(entry));
        else (this.found[entry.kind] as GcEntry[]).push(entry);
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
  }
}
