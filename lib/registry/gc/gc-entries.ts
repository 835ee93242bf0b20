import type { Json, StoredManifest } from '../types.ts';

/** One page of a garbage-collection scan; `cursor` resumes after it, undefined at the end. */
export interface ScanPage<T> {
  items: T[];
  cursor: string | undefined;
}

/**
 * What a garbage-collection scan finds. Times are epoch milliseconds, by the clock of whoever wrote the item
 * (see GcStore.clockToleranceMs); a backend that cannot tell says 0 (old).
 */
export type GcEntry =
  /** A manifest of repository `name`; `tagged` when at least one tag points at it. */
  | { kind: 'manifest'; name: string; manifest: StoredManifest; tagged: boolean; storedAt: number }
  /** A blob linked into repository `name`; `createdAt` is its last (re)link. */
  | { kind: 'link'; name: string; digest: string; size: number; createdAt: number }
  /** The global record of a committed blob. */
  | { kind: 'blob'; digest: string; size: number; location: string; createdAt: number }
  /** An upload session. */
  | { kind: 'upload'; name: string; uploadId: string; createdAt: number; storage: Json }
  /**
   * A file of committed bytes the blob store holds at `location` (filesystem backend), whether or not a record names
   * it: bytes no record names (a crash between deleting a record and its bytes, or between committing and
   * recording) are collected once old.
   */
  | { kind: 'bytes'; location: string; size: number; changedAt: number }
  /** Upload storage by upload id (filesystem backend); collected when old and no session refers to it. */
  | { kind: 'upload-data'; uploadId: string; size: number; changedAt: number }
  /**
   * A manifest body kept outside the metadata store (ManifestBodyStore: S3 on AWS), by digest; collected when no
   * manifest of any repository has that digest, through GcStore.doomManifestBody/dropManifestBody.
   */
  | { kind: 'manifest-body'; digest: string; size: number; changedAt: number };

/** Pages of entries kept beside the metadata (a bucket's objects), which a metadata store's scan continues into. */
export interface GcScanSource {
  scan(cursor: string | undefined, limit: number): Promise<ScanPage<GcEntry>>;
}
