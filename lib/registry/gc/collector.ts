import { randomUUID } from 'node:crypto';
import type { BlobStore, GcStore, MetadataStore } from '../ports.ts';
import type { BlobRecord } from '../types.ts';
import { concurrently } from './concurrently.ts';
import { bytesFreedBy, type GcRemoval, type GcReport } from './gc-report.ts';
import { ScanMarks } from './scan-marks.ts';
import { pair, type ScannedManifest } from './scanned-manifest.ts';

/** Default grace period: nothing younger than this is collected (an image being pushed has blobs and no manifest yet). */
export const DEFAULT_GRACE_MS = 24 * 60 * 60 * 1000;
/** Upload sessions and their storage are collected only past this age, the core's default upload lifetime. */
export const UPLOAD_LIFETIME_MS = 24 * 60 * 60 * 1000;
/** Removals in flight at once: each is conditional writes of its own, so conditions, not order, keep pushes safe. */
export const DEFAULT_GC_CONCURRENCY = 16;
/**
 * Committed bytes no record names are collected only past this age, whatever the grace period: an upload's bytes
 * exist before its record (commit, then MetadataStore.putBlob), and on S3 an object assembled from a multipart
 * upload is dated when the upload began (docs/aws-assumptions.md), up to the upload lifetime before its commit.
 */
export const STRAY_BYTES_MIN_AGE_MS = UPLOAD_LIFETIME_MS + 60 * 60 * 1000;

export interface GcRunOptions {
  metadata: MetadataStore & GcStore;
  blobs: BlobStore;
  /** Nothing younger is collected. @default 24 h */
  graceMs?: number;
  /** List what would go, change nothing. */
  dryRun?: boolean;
  /** Stop sweeping at this time (epoch ms) and report `complete: false`; the next run picks up the rest. */
  deadline?: number;
  /** Manifests a retention planner deleted (or, in a dry run, would delete): their references do not count. */
  removedManifests?: { name: string; digest: string }[];
  /** Removals in flight at once. @default {@link DEFAULT_GC_CONCURRENCY} */
  concurrency?: number;
  /** Called once per removal, as it happens (events, logs): the one place where collected items are reported. */
  onRemoved?: (removal: GcRemoval) => void;
  now?: () => number;
}

/**
 * One garbage-collection run: mark, then sweep, each phase a separate call (tests interleave pushes between them).
 *
 * A blob goes when no manifest of any repository references it, no upload refers to it and it is older than the
 * grace period. No stop-the-world: the sweep dooms each candidate with a conditional write that fails if anything
 * referenced it since the scan began, every write that creates a reference refuses a doomed item in the same atomic
 * step (MetadataStore.putManifest's references, linkBlob's record), and the run deletes only what it still dooms.
 * `since` is the scan's start minus the store's clock tolerance; `t` is when a push's write takes effect:
 * ```
 *   manifest push M → link L (repository r)           collector run (since = scanStart − tolerance)
 *   ─────────────────────────────────────────          ───────────────────────────────────────────────
 *   (a) M written at t < since                          scan lists M (it exists for the whole scan) → L referenced, kept
 *   (b) M written at t ≥ since, stamps L = t            scan may miss M; doomLink(L) ✗ (stamped ≥ since) → L kept
 *   (c) push writes while L is doomed                   ✗ for the push: MANIFEST_BLOB_UNKNOWN, nothing stored;
 *                                                       the client uploads the blob again: the new link replaces the
 *                                                       doomed one, dropLink(L) ✗ (no longer doomed by this run)
 *   (d) push writes after dropLink(L)                   ✗ for the push: L absent → MANIFEST_BLOB_UNKNOWN
 *
 *   link / mount of blob record B                       the same with B: linkBlob holds or stamps B in its write;
 *                                                       doomBlob(B) needs no surviving link and no stamp ≥ since;
 *                                                       an upload of a doomed B commits to a location of its own
 *                                                       (S3: blobs/<uploadId>, fs: <hex>.<uploadId>) and putBlob
 *                                                       replaces the doomed record: dropBlob deletes only the old
 *                                                       bytes and no record (the record is no longer doomed by it).
 * ```
 * So a manifest is never stored whose blob is gone: it was written before the scan (seen), after it (stamp
 * refuses the doom), or while doomed/after the drop (refused). Links are swept before records: a record's references
 * are the links that survived this run, and links made after the scan began stamp the record.
 */
export class GcRun {
  readonly runId = randomUUID();
  readonly dryRun: boolean;
  readonly #options: GcRunOptions;
  readonly #now: () => number;
  readonly #graceMs: number;
  readonly #removals: GcRemoval[] = [];
  readonly #startedAt: number;
  #scanStart = 0;
  #since = 0;
  #marked = false;
  #complete = true;
  readonly #marks = new ScanMarks();
  readonly #goneManifests = new Set<string>();
  readonly #survivingLinks = new Set<string>();

  constructor(options: GcRunOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    this.dryRun = options.dryRun ?? false;
    this.#startedAt = this.#now();
    for (const { name, digest } of options.removedManifests ?? []) this.#goneManifests.add(pair(name, digest));
  }

  /**
   * Phase 1: note the scan's start, then page through everything stored (scan-marks.ts; a DynamoDB table in the
   * segments of a parallel Scan). Every entry is kept in memory (a manifest as its references, not its content)
   * until the run ends.
   */
  async mark(): Promise<void> {
    this.#scanStart = this.#now();
    this.#since = this.#scanStart - this.#options.metadata.clockToleranceMs;
    await this.#marks.read(this.#options.metadata, () => this.#pastDeadline());
    this.#marked = true;
  }

  /**
   * Phase 2: referrers whose subject is gone from their repository, untagged, referenced by no other manifest and
   * older than the grace period (the conformance suite pushes a referrer before its subject).
   */
  async sweepReferrers(): Promise<void> {
    this.#assertMarked();
    if (this.#marks.cut) return;
    const present = new Set(this.#liveManifests().map((manifest) => pair(manifest.name, manifest.digest)));
    const children = new Set(this.#liveManifests().flatMap((manifest) => manifest.manifests.map((child) => pair(manifest.name, child))));
    const orphans = this.#liveManifests().filter((manifest) => manifest.subject !== undefined && !manifest.tagged && !present.has(pair(manifest.name, manifest.subject)));
    const removable = orphans.filter((manifest) => !children.has(pair(manifest.name, manifest.digest)) && this.#old(manifest.storedAt));
    await this.#each(removable, async (manifest) => {
      if (this.#pastDeadline()) return;
      if (!this.dryRun) {
        const { metadata } = this.#options;
        if (!(await metadata.doomManifest(manifest.name, manifest.digest, this.runId, this.#since))) return;
        if (!(await metadata.dropManifest(manifest.name, manifest.digest, this.runId))) return;
      }
      this.#goneManifests.add(pair(manifest.name, manifest.digest));
      this.#report({ kind: 'manifest', name: manifest.name, digest: manifest.digest, bytes: manifest.size, reason: 'referrer of a deleted subject' });
    });
  }

  /** Phase 3: repository blob links no remaining manifest of their repository references. */
  async sweepLinks(): Promise<void> {
    this.#assertMarked();
    if (this.#marks.cut) return;
    const referenced = new Set(this.#liveManifests().flatMap((manifest) => manifest.blobs.map((digest) => pair(manifest.name, digest))));
    // Every link this phase keeps is in #survivingLinks when it returns: the blob phase reads it.
    await this.#each(this.#marks.found.link, async (link) => {
      if (referenced.has(pair(link.name, link.digest)) || !this.#old(link.createdAt) || this.#pastDeadline()) {
        this.#survivingLinks.add(link.digest);
        return;
      }
      if (!this.dryRun) {
        const { metadata } = this.#options;
        if (!(await metadata.doomLink(link.name, link.digest, this.runId, this.#since)) || !(await metadata.dropLink(link.name, link.digest, this.runId))) {
          this.#survivingLinks.add(link.digest);
          return;
        }
      }
      this.#report({ kind: 'link', name: link.name, digest: link.digest, bytes: link.size });
    });
  }

  /** Phase 4: blob records no surviving link names: bytes, then records (the store orders them crash-safely). */
  async sweepBlobs(): Promise<void> {
    this.#assertMarked();
    if (this.#marks.cut) return;
    const unlinked = this.#marks.found.blob.filter((record) => !this.#survivingLinks.has(record.digest) && this.#old(record.createdAt));
    await this.#each(unlinked, async (record) => {
      if (this.#pastDeadline()) return;
      let doomed: BlobRecord | undefined = record;
      if (!this.dryRun) {
        const { metadata, blobs } = this.#options;
        doomed = await metadata.doomBlob(record.digest, this.runId, this.#since);
        if (!doomed || !(await metadata.dropBlob(doomed, this.runId, (location) => blobs.delete(location)))) return;
      }
      this.#report({ kind: 'blob', digest: doomed.digest, bytes: doomed.size });
    });
  }

  /**
   * Phase 5: upload sessions older than the upload lifetime (the core already refuses them) with their storage,
   * upload storage without a session, and committed bytes no record names, all older than the grace period too.
   */
  async sweepUploads(): Promise<void> {
    this.#assertMarked();
    if (this.#marks.cut) return;
    const { metadata, blobs } = this.#options;
    const uploadAge = Math.max(this.#graceMs, UPLOAD_LIFETIME_MS);
    const sessions = new Set(this.#marks.found.upload.map((upload) => upload.uploadId));
    for (const upload of this.#marks.found.upload) {
      if (this.#pastDeadline()) return;
      if (this.#scanStart - upload.createdAt <= uploadAge) continue;
      if (!this.dryRun) {
        await blobs.abort(upload.storage);
        await metadata.deleteUpload(upload.name, upload.uploadId);
      }
      this.#report({ kind: 'upload', name: upload.name, uploadId: upload.uploadId, bytes: 0 });
    }
    for (const data of this.#marks.found['upload-data']) {
      if (this.#pastDeadline()) return;
      if (sessions.has(data.uploadId) || this.#since - data.changedAt <= uploadAge) continue;
      // The filesystem store's upload state is { uploadId } (the only backend that lists upload data).
      if (!this.dryRun) await blobs.abort({ uploadId: data.uploadId });
      this.#report({ kind: 'upload', uploadId: data.uploadId, bytes: data.size });
    }
    const named = new Set(this.#marks.found.blob.map((record) => record.location));
    for (const bytes of this.#marks.found.bytes) {
      if (this.#pastDeadline()) return;
      if (named.has(bytes.location) || this.#since - bytes.changedAt <= Math.max(this.#graceMs, STRAY_BYTES_MIN_AGE_MS)) continue;
      if (!this.dryRun) await blobs.delete(bytes.location);
      this.#report({ kind: 'bytes', location: bytes.location, bytes: bytes.size });
    }
  }

  /**
   * Phase 6: manifest bodies kept outside the metadata store (S3 on AWS) that no manifest of any repository has,
   * older than the grace period; the store's guard refuses the doom if a push stored or referenced one since.
   */
  async sweepManifestBodies(): Promise<void> {
    this.#assertMarked();
    if (this.#marks.cut) return;
    const { metadata } = this.#options;
    const needed = new Set(this.#liveManifests().map((manifest) => manifest.digest));
    const unneeded = this.#marks.found['manifest-body'].filter((body) => !needed.has(body.digest) && this.#old(body.changedAt));
    await this.#each(unneeded, async (body) => {
      if (this.#pastDeadline()) return;
      if (!this.dryRun) {
        if (!metadata.doomManifestBody || !metadata.dropManifestBody) return;
        if (!(await metadata.doomManifestBody(body.digest, this.runId, this.#since)) || !(await metadata.dropManifestBody(body.digest, this.runId))) return;
      }
      this.#report({ kind: 'manifest-body', digest: body.digest, bytes: body.size });
    });
  }

  /** Every phase in order. */
  async run(): Promise<GcReport> {
    await this.mark();
    await this.sweepReferrers();
    await this.sweepLinks();
    await this.sweepBlobs();
    await this.sweepUploads();
    await this.sweepManifestBodies();
    return this.report();
  }

  report(): GcReport {
    const removals = [...this.#removals];
    return {
      runId: this.runId,
      dryRun: this.dryRun,
      complete: this.#complete,
      graceMs: this.#graceMs,
      removals,
      bytesFreed: bytesFreedBy(removals),
      objectsDeleted: removals.length,
      scanned: { manifests: this.#marks.manifests.length, links: this.#marks.found.link.length, blobs: this.#marks.found.blob.length, uploads: this.#marks.found.upload.length },
      durationMs: this.#now() - this.#startedAt,
    };
  }

  #liveManifests(): ScannedManifest[] {
    return this.#marks.manifests.filter((manifest) => !this.#goneManifests.has(pair(manifest.name, manifest.digest)));
  }

  #old(createdAt: number): boolean {
    return createdAt < this.#scanStart - this.#graceMs && createdAt < this.#since;
  }

  /** One phase's removals, {@link GcRunOptions.concurrency} at a time; the phase ends when all have settled. */
  #each<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
    return concurrently(items, this.#options.concurrency ?? DEFAULT_GC_CONCURRENCY, work);
  }

  #pastDeadline(): boolean {
    if (this.#options.deadline === undefined || this.#now() < this.#options.deadline) return false;
    this.#complete = false;
    return true;
  }

  #report(removal: GcRemoval): void {
    this.#removals.push(removal);
    this.#options.onRemoved?.(removal);
  }

  #assertMarked(): void {
    if (!this.#marked) throw new Error('garbage collection: mark() must run before a sweep');
  }
}
