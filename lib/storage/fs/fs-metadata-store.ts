import { rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { uploadConflict } from '../../registry/errors.ts';
import type { GcEntry, ScanPage } from '../../registry/gc/gc-entries.ts';
import { paginate } from '../../registry/pagination.ts';
import { TagFixedConflict, type DeleteOptions, type GcStore, type ManifestActivity, type MetadataStore, type PutManifestOptions } from '../../registry/ports.ts';
import { referrerDescriptor, type BlobRecord, type Descriptor, type Page, type PageRequest, type StoredManifest, type UploadSession } from '../../registry/types.ts';
import { createFileExclusive, readFileIfExists, removeFile, writeFileAtomic } from './atomic-file.ts';
import { exists, listDir } from './data-dir-reads.ts';
import { scanDataDir } from './fs-gc-scan.ts';
import { InProcessReferences, referenceKey } from '../in-process-references.ts';
import { FsPullRecords } from './fs-pull-records.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import type { FsKeys } from './keys.ts';
import { FsTagFile } from './fs-tag-file.ts';
import { fromManifestFile, toManifestFile, type ManifestFile } from './manifest-file.ts';

/**
 * Metadata in small JSON files (layout in keys.ts), each written atomically. One process owns a data dir,
 * so compare-and-set is a version check under an in-process lock, and garbage collection's marks live in that
 * process (in-process-references.ts): `ocireg gc` runs inside `ocireg serve` when one owns the data dir.
 */
export class FsMetadataStore implements MetadataStore, GcStore {
  readonly clockToleranceMs = 0;
  readonly #keys: FsKeys;
  readonly #mutex: KeyedMutex;
  readonly #tags: FsTagFile;
  readonly #pulls: FsPullRecords;
  readonly #references = new InProcessReferences();

  /** `locks`: the tag (and upload) locks, shared with the data dir's FsTagHistoryStore. */
  constructor(keys: FsKeys, locks = new KeyedMutex()) {
    this.#keys = keys;
    this.#pulls = new FsPullRecords(keys);
    this.#mutex = locks;
    this.#tags = new FsTagFile(keys, locks);
  }

  // ---- blobs

  async getBlob(digest: string): Promise<BlobRecord | undefined> {
    const text = await readFileIfExists(this.#keys.blobRecord(digest));
    return text === undefined ? undefined : (JSON.parse(text) as BlobRecord);
  }

  async putBlob(record: BlobRecord): Promise<BlobRecord> {
    const reference = referenceKey.blob(record.digest);
    await this.#references.undoomed(reference);
    this.#references.touch(reference);
    const created = await createFileExclusive(this.#keys.tmpDir, this.#keys.blobRecord(record.digest), JSON.stringify(record));
    return created ? record : ((await this.getBlob(record.digest)) ?? record);
  }

  async getLinkedBlob(name: string, digest: string): Promise<BlobRecord | undefined> {
    const text = await readFileIfExists(this.#keys.blobLink(name, digest));
    return text === undefined ? undefined : (JSON.parse(text) as BlobRecord);
  }

  /** Holds the record (so it cannot be doomed) while the link is written; an existing link's time is refreshed. */
  async linkBlob(name: string, record: BlobRecord): Promise<boolean> {
    const held = this.#references.hold([referenceKey.blob(record.digest)]);
    if ('doomed' in held) return false;
    try {
      if ((await this.getBlob(record.digest))?.location !== record.location) return false;
      const reference = referenceKey.link(name, record.digest);
      await this.#references.undoomed(reference);
      const path = this.#keys.blobLink(name, record.digest);
      if ((await readFileIfExists(path)) === JSON.stringify(record)) {
        const now = new Date();
        await utimes(path, now, now);
      } else {
        await writeFileAtomic(this.#keys.tmpDir, path, JSON.stringify(record));
      }
      this.#references.touch(reference);
      return true;
    } finally {
      held.release();
    }
  }

  async unlinkBlob(name: string, digest: string): Promise<boolean> {
    return removeFile(this.#keys.blobLink(name, digest));
  }

  // ---- manifests and tags

  async missingReferences(name: string, references: { blobs: string[]; manifests: string[] }): Promise<string[]> {
    const paths = new Map<string, string>([
      ...references.blobs.map((digest): [string, string] => [this.#keys.blobLink(name, digest), digest]),
      ...references.manifests.map((digest): [string, string] => [this.#keys.manifest(name, digest), digest]),
    ]);
    const absent = await Promise.all([...paths.keys()].map(async (path) => !(await exists(path))));
    return [...new Set([...paths.values()].filter((_, index) => absent[index]))];
  }

  async getManifest(name: string, digest: string): Promise<StoredManifest | undefined> {
    const [text, pulledAt] = await Promise.all([readFileIfExists(this.#keys.manifest(name, digest)), this.#pulls.read(name, digest)]);
    if (text === undefined) return undefined;
    const manifest = fromManifestFile(JSON.parse(text) as ManifestFile);
    return pulledAt === undefined ? manifest : { ...manifest, pulledAt };
  }

  async resolveTag(name: string, tag: string): Promise<StoredManifest | undefined> {
    const digest = await readFileIfExists(this.#keys.tag(name, tag));
    return digest === undefined ? undefined : this.getManifest(name, digest.trim());
  }

  recordPull(name: string, reference: string, digest: string, at: number): Promise<boolean> {
    return this.#pulls.record(name, digest, at, async () =>
      reference === digest ? exists(this.#keys.manifest(name, digest)) : (await readFileIfExists(this.#keys.tag(name, reference)))?.trim() === digest,
    );
  }

  manifestActivity(name: string): Promise<Map<string, ManifestActivity>> {
    return this.#pulls.activity(name);
  }

  /**
   * Manifest first, then its referrer entry, then tags: a reader never finds a tag pointing at nothing. Fixed
   * (immutable) tags are checked and written under one lock per tag, which every tag write of this process takes:
   *
   *   push A (t → a)                      push B (t → b)
   *   ───────────────────────────────     ───────────────────────────────
   *   lock t; t absent ✓; write t → a
   *   unlock t                            lock t (waited); t → a ≠ b ✗ TagFixedConflict, nothing of B's tag written
   *
   * A push refused only under the lock (it lost that race) leaves its manifest record, untagged like any other.
   * With `options.history`, each tag's change is written under the same lock just before the tag (fs-tag-file.ts:
   * the tag file is the commit point, an entry it does not follow is never read back).
   * Garbage collection: the references are held from their check to the end of the write (in-process-references.ts).
   */
  async putManifest(name: string, manifest: StoredManifest, tags: string[], options: PutManifestOptions = {}): Promise<void> {
    await this.#references.writeManifest(name, manifest.digest, options.references, (references) => this.missingReferences(name, references), () =>
      this.#writeManifest(name, manifest, tags, options),
    );
  }

  async #writeManifest(name: string, manifest: StoredManifest, tags: string[], options: PutManifestOptions): Promise<void> {
    const fixed = new Set(options.fixedTags ?? []);
    for (const tag of fixed) {
      const current = (await readFileIfExists(this.#keys.tag(name, tag)))?.trim();
      if (current !== undefined && current !== manifest.digest) throw new TagFixedConflict(tag, current);
    }
    await writeFileAtomic(this.#keys.tmpDir, this.#keys.manifest(name, manifest.digest), JSON.stringify(toManifestFile(manifest)));
    if (manifest.subject !== undefined) {
      const path = this.#keys.referrer(name, manifest.subject, manifest.digest);
      await writeFileAtomic(this.#keys.tmpDir, path, JSON.stringify(referrerDescriptor(manifest)));
    }
    await Promise.all(
      [...new Set(tags)].map((tag) =>
        this.#tags.locked(name, tag, async (current) => {
          if (fixed.has(tag) && current !== undefined && current !== manifest.digest) throw new TagFixedConflict(tag, current);
          await this.#tags.write(name, tag, current, manifest.digest, options.history);
        }),
      ),
    );
  }

  /**
   * Tags (each with its history entry first, fs-tag-file.ts) and the referrer entry go first, the manifest last: a
   * crash in between leaves no tag pointing at nothing.
   */
  async deleteManifest(name: string, digest: string, options: DeleteOptions = {}): Promise<boolean> {
    const manifest = await this.getManifest(name, digest);
    if (!manifest) return false;
    for (const tag of await this.#tagNames(name)) {
      await this.#tags.locked(name, tag, async (current) => {
        if (current === digest) await this.#tags.write(name, tag, current, undefined, options.history);
      });
    }
    if (manifest.subject !== undefined) await removeFile(this.#keys.referrer(name, manifest.subject, digest));
    const removed = await removeFile(this.#keys.manifest(name, digest));
    await this.#pulls.remove(name, digest);
    return removed;
  }

  /** Checked and removed under the tag's lock, which every tag write of this process takes; with `digest`, only while the tag points there. */
  async deleteTag(name: string, tag: string, digest?: string, options: DeleteOptions = {}): Promise<boolean> {
    return this.#tags.locked(name, tag, async (current) => {
      if (current === undefined || (digest !== undefined && current !== digest)) return false;
      await this.#tags.write(name, tag, current, undefined, options.history);
      return true;
    });
  }

  async listTags(name: string, page: PageRequest): Promise<Page<string> | undefined> {
    if (!(await this.#hasManifests(name))) return undefined;
    return paginate(await this.#tagNames(name), page);
  }

  async listRepositories(page: PageRequest): Promise<Page<string>> {
    const names: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      for (const entry of await listDir(dir)) {
        if (entry.startsWith('_')) continue;
        const name = prefix ? `${prefix}/${entry}` : entry;
        if (await this.#hasManifests(name)) names.push(name);
        await walk(join(dir, entry), name);
      }
    };
    await walk(this.#keys.repositoriesDir, '');
    return paginate(names, page);
  }

  async listReferrers(name: string, subject: string): Promise<Descriptor[]> {
    const dir = this.#keys.referrersDir(name, subject);
    const entries = await listDir(dir);
    const descriptors = await Promise.all(entries.map((entry) => readFileIfExists(join(dir, entry))));
    return descriptors.filter((text) => text !== undefined).map((text) => JSON.parse(text) as Descriptor);
  }

  // ---- uploads

  async createUpload(session: UploadSession): Promise<void> {
    const path = this.#keys.uploadSession(session.uploadId);
    await this.#mutex.run(session.uploadId, async () => {
      if ((await readFileIfExists(path)) !== undefined) throw uploadConflict(session.name, session.uploadId);
      await writeFileAtomic(this.#keys.tmpDir, path, JSON.stringify(session));
    });
  }

  async getUpload(name: string, uploadId: string): Promise<UploadSession | undefined> {
    const text = await readFileIfExists(this.#keys.uploadSession(uploadId));
    if (text === undefined) return undefined;
    const session = JSON.parse(text) as UploadSession;
    return session.name === name ? session : undefined;
  }

  async updateUpload(next: UploadSession): Promise<void> {
    await this.#mutex.run(next.uploadId, async () => {
      const current = await this.getUpload(next.name, next.uploadId);
      if (!current || current.version !== next.version - 1) throw uploadConflict(next.name, next.uploadId);
      await writeFileAtomic(this.#keys.tmpDir, this.#keys.uploadSession(next.uploadId), JSON.stringify(next));
    });
  }

  async deleteUpload(_name: string, uploadId: string): Promise<void> {
    await this.#mutex.run(uploadId, () => rm(this.#keys.uploadSession(uploadId), { force: true }));
  }

  // ---- garbage collection (GcStore)

  /** The data dir's entries, walked and paged in fs-gc-scan.ts. */
  scan(cursor: string | undefined, limit: number): Promise<ScanPage<GcEntry>> {
    return scanDataDir(this.#keys, cursor, limit);
  }

  doomLink(name: string, digest: string, runId: string, since: number): Promise<boolean> {
    return this.#references.doomExisting(referenceKey.link(name, digest), runId, since, () => exists(this.#keys.blobLink(name, digest)));
  }

  dropLink(name: string, digest: string, runId: string): Promise<boolean> {
    return this.#references.drop(referenceKey.link(name, digest), runId, () => removeFile(this.#keys.blobLink(name, digest)));
  }

  async doomBlob(digest: string, runId: string, since: number): Promise<BlobRecord | undefined> {
    let record: BlobRecord | undefined;
    const doomed = await this.#references.doomExisting(referenceKey.blob(digest), runId, since, async () => (record = await this.getBlob(digest)) !== undefined);
    return doomed ? record : undefined;
  }

  /**
   * Record first, then bytes: a crash in between leaves bytes no record names (collected by a later run as stray
   * bytes), never a record whose bytes are gone. The record stays doomed until both are gone.
   */
  dropBlob(record: BlobRecord, runId: string, deleteBytes: (location: string) => Promise<void>): Promise<boolean> {
    return this.#references.drop(referenceKey.blob(record.digest), runId, async () => {
      const deleted = await removeFile(this.#keys.blobRecord(record.digest));
      await deleteBytes(record.location);
      return deleted;
    });
  }

  doomManifest(name: string, digest: string, runId: string, since: number): Promise<boolean> {
    return this.#references.doomExisting(referenceKey.manifest(name, digest), runId, since, () => exists(this.#keys.manifest(name, digest)));
  }

  dropManifest(name: string, digest: string, runId: string): Promise<boolean> {
    return this.#references.drop(referenceKey.manifest(name, digest), runId, () => this.deleteManifest(name, digest));
  }

  async #hasManifests(name: string): Promise<boolean> {
    const dir = this.#keys.manifestsDir(name);
    for (const algorithm of await listDir(dir)) {
      if ((await listDir(join(dir, algorithm))).length > 0) return true;
    }
    return false;
  }

  async #tagNames(name: string): Promise<string[]> {
    return listDir(this.#keys.tagsDir(name));
  }
}

