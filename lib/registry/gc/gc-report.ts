/** What garbage collection removed (or, in a dry run, would remove): one entry per item. */
export type GcRemoval =
  /** A tag a retention rule expired (reported by the retention planner). */
  | { kind: 'tag'; name: string; tag: string; digest: string; reason: string }
  /** A manifest: a referrer whose subject is gone, or one a retention rule expired; `bytes` is its content. */
  | { kind: 'manifest'; name: string; digest: string; bytes: number; reason: string }
  /** A repository's link to a blob; the blob's bytes go with its record, once no repository links it. */
  | { kind: 'link'; name: string; digest: string; bytes: number }
  /** A blob's record and bytes. */
  | { kind: 'blob'; digest: string; bytes: number }
  /** An abandoned upload: its session and storage, or storage left without a session. */
  | { kind: 'upload'; name?: string; uploadId: string; bytes: number }
  /** Committed bytes no record names (left by a crash). */
  | { kind: 'bytes'; location: string; bytes: number }
  /** A large manifest's body kept outside the metadata store, which no manifest of any repository needs any more. */
  | { kind: 'manifest-body'; digest: string; bytes: number };

export interface GcReport {
  runId: string;
  dryRun: boolean;
  /** False when the run stopped at its deadline; the next run continues. */
  complete: boolean;
  graceMs: number;
  removals: GcRemoval[];
  /** Bytes of blobs, manifests, stray bytes and uploads removed (links and tags free no bytes themselves). */
  bytesFreed: number;
  objectsDeleted: number;
  scanned: { manifests: number; links: number; blobs: number; uploads: number };
  durationMs: number;
}

/** Bytes the removals free: a link or a tag is a reference, not bytes (a blob's bytes count once, with its record). */
export function bytesFreedBy(removals: GcRemoval[]): number {
  return removals.reduce((total, removal) => total + (removal.kind === 'link' || removal.kind === 'tag' ? 0 : removal.bytes), 0);
}
