import { manifestBlobUnknown } from '../registry/errors.ts';
import type { ManifestReferences } from '../registry/ports.ts';

/**
 * The garbage-collection marks of the single-process backends (memory, and fs: one `ocireg serve` owns a data dir,
 * and `ocireg gc` runs inside it): which items a run has doomed, which are being referenced right now, and when each
 * was last referenced. JavaScript runs one callback at a time, so a check and a mark made without an `await`
 * between them are one atomic step, as a DynamoDB condition is.
 *
 * A writer holds the keys it references while it checks them and writes the referencing item, and stamps them when
 * it lets go; a run dooms a key only if nobody holds it and its stamp is older than the run's `since`:
 * ```
 *   push (manifest M needs link L)            collector (since = scan start)
 *   hold(L) ✓ (L not doomed)                  scan: M not there yet
 *   L exists? ✓ → write M                     doom(L) ✗ held            → L stays
 *   release(L): stamp L = now                 doom(L) ✗ stamp ≥ since   → L stays (M was written after the scan began)
 *
 *   collector dooms L first                   push: hold(L) ✗ doomed    → MANIFEST_BLOB_UNKNOWN, nothing written
 * ```
 * A stamp older than `since` means the referencing write finished before the scan began, so the scan saw it.
 * Marks live in memory: a restart loses them, and with them every run and every write in flight.
 */
export class InProcessReferences {
  readonly #now: () => number;
  readonly #held = new Map<string, number>();
  readonly #stamps = new Map<string, number>();
  readonly #doomed = new Map<string, { runId: string; lifted: Promise<void>; lift: () => void }>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Holds `keys` while a referencing write runs; the first doomed key instead, and nothing held. Synchronous. */
  hold(keys: string[]): { doomed: string } | { release: () => void } {
    const doomed = keys.find((key) => this.#doomed.has(key));
    if (doomed !== undefined) return { doomed };
    for (const key of keys) this.#held.set(key, (this.#held.get(key) ?? 0) + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const now = this.#now();
        for (const key of keys) {
          const count = this.#held.get(key)! - 1;
          if (count === 0) this.#held.delete(key);
          else this.#held.set(key, count);
          this.#stamps.set(key, now);
        }
      },
    };
  }

  /**
   * A manifest write under the marks: waits while the manifest itself is doomed (it is being deleted), holds its
   * references (MANIFEST_BLOB_UNKNOWN for a doomed one), lets `missing` find absent ones (the store's
   * `missingReferences`; MANIFEST_BLOB_UNKNOWN for the first) and `write` store it, then stamps it and its references.
   */
  async writeManifest(name: string, digest: string, references: ManifestReferences = { blobs: [], manifests: [] }, missing: (references: ManifestReferences) => Promise<string[]>, write: () => Promise<void>): Promise<void> {
    const own = referenceKey.manifest(name, digest);
    await this.undoomed(own);
    const held = this.hold([...references.blobs.map((blob) => referenceKey.link(name, blob)), ...references.manifests.map((child) => referenceKey.manifest(name, child))]);
    if ('doomed' in held) throw manifestBlobUnknown(held.doomed.split('\u0000')[2]!);
    try {
      const [absent] = await missing(references);
      if (absent !== undefined) throw manifestBlobUnknown(absent);
      await write();
      this.touch(own);
    } finally {
      held.release();
    }
  }

  /** Stamps `key` as referenced now (a write that needs no hold: it creates the item it references). */
  touch(key: string): void {
    this.#stamps.set(key, this.#now());
  }

  /** Dooms `key` for `runId` unless doomed, held, or stamped at or after `since`. Synchronous. */
  doom(key: string, runId: string, since: number): boolean {
    if (this.#doomed.has(key) || this.#held.has(key) || (this.#stamps.get(key) ?? -Infinity) >= since) return false;
    let lift!: () => void;
    const lifted = new Promise<void>((resolve) => (lift = resolve));
    this.#doomed.set(key, { runId, lifted, lift });
    return true;
  }

  isDoomedBy(key: string, runId: string): boolean {
    return this.#doomed.get(key)?.runId === runId;
  }

  /**
   * Dooms `key` as {@link doom} does, then asks `exists` (the item may have gone meanwhile): true when doomed and
   * there; the doom is lifted otherwise.
   */
  async doomExisting(key: string, runId: string, since: number, exists: () => Promise<boolean>): Promise<boolean> {
    if (!this.doom(key, runId, since)) return false;
    let there = false;
    try {
      there = await exists();
      return there;
    } finally {
      if (!there) this.lift(key, runId);
    }
  }

  /** Runs `remove` if `runId` still dooms `key`, then lifts the doom; false without running it otherwise. */
  async drop(key: string, runId: string, remove: () => Promise<boolean>): Promise<boolean> {
    if (!this.isDoomedBy(key, runId)) return false;
    try {
      return await remove();
    } finally {
      this.lift(key, runId);
    }
  }

  /** Ends `runId`'s doom of `key` (its item is deleted, or spared). */
  lift(key: string, runId: string): void {
    const doom = this.#doomed.get(key);
    if (doom?.runId !== runId) return;
    this.#doomed.delete(key);
    this.#stamps.delete(key);
    doom.lift();
  }

  /** Resolves once `key` is not doomed: a writer that would replace a doomed item waits for its deletion. */
  async undoomed(key: string): Promise<void> {
    for (let doom = this.#doomed.get(key); doom; doom = this.#doomed.get(key)) await doom.lifted;
  }
}

export const referenceKey = {
  link: (name: string, digest: string) => `link\u0000${name}\u0000${digest}`,
  blob: (digest: string) => `blob\u0000${digest}`,
  manifest: (name: string, digest: string) => `manifest\u0000${name}\u0000${digest}`,
};
