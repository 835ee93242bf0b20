import { uploadConflict } from '../../registry/errors.ts';
import type { GcEntry, ScanPage } from '../../registry/gc/gc-entries.ts';
import { paginate } from '../../registry/pagination.ts';
import { pulledToday } from '../../registry/last-pull.ts';
import { TagFixedConflict, type DeleteOptions, type GcStore, type ManifestActivity, type MetadataStore, type PutManifestOptions } from '../../registry/ports.ts';
import { stampedChange, withChange, type HistoryWrite, type TagChange } from '../../registry/tag-history.ts';
import { referrerDescriptor, type BlobRecord, type Descriptor, type Page, type PageRequest, type StoredManifest, type UploadSession } from '../../registry/types.ts';
import { InProcessReferences, referenceKey } from '../in-process-references.ts';

/** A stored item and when it was written (garbage collection's grace period counts from there). */
interface Dated<T> {
  value: T;
  at: number;
}

interface Repository {
  blobs: Map<string, Dated<BlobRecord>>;
  manifests: Map<string, Dated<StoredManifest>>;
  tags: Map<string, string>;
  /** The last recorded pull of each manifest, by digest (through its digest or any tag). */
  pulls: Map<string, number>;
  /** Each tag's kept changes, newest first (read through MemoryTagHistoryStore). */
  history: Map<string, TagChange[]>;
}

export interface MemoryMetadataStoreOptions {
  now?: () => number;
}

/** Metadata in memory: the fake for core unit tests. Garbage-collection marks: in-process-references.ts. */
export class MemoryMetadataStore implements MetadataStore, GcStore {
  readonly clockToleranceMs = 0;
  readonly #now: () => number;
  readonly #references: InProcessReferences;
  readonly #blobs = new Map<string, Dated<BlobRecord>>();
  readonly #repositories = new Map<string, Repository>();
  readonly #uploads = new Map<string, UploadSession>();

  constructor(options: MemoryMetadataStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#references = new InProcessReferences(this.#now);
  }

  async getBlob(digest: string): Promise<BlobRecord | undefined> {
    return this.#blobs.get(digest)?.value;
  }

  async putBlob(record: BlobRecord): Promise<BlobRecord> {
    const key = referenceKey.blob(record.digest);
    await this.#references.undoomed(key);
    this.#references.touch(key);
    const existing = this.#blobs.get(record.digest);
    if (existing) return existing.value;
    this.#blobs.set(record.digest, { value: { ...record }, at: this.#now() });
    return record;
  }

  async getLinkedBlob(name: string, digest: string): Promise<BlobRecord | undefined> {
    return this.#repositories.get(name)?.blobs.get(digest)?.value;
  }

  async linkBlob(name: string, record: BlobRecord): Promise<boolean> {
    const held = this.#references.hold([referenceKey.blob(record.digest)]);
    if ('doomed' in held) return false;
    try {
      if (this.#blobs.get(record.digest)?.value.location !== record.location) return false;
      const link = referenceKey.link(name, record.digest);
      await this.#references.undoomed(link);
      this.#repository(name).blobs.set(record.digest, { value: { ...record }, at: this.#now() });
      this.#references.touch(link);
      return true;
    } finally {
      held.release();
    }
  }

  async unlinkBlob(name: string, digest: string): Promise<boolean> {
    return this.#repositories.get(name)?.blobs.delete(digest) ?? false;
  }

  async missingReferences(name: string, references: { blobs: string[]; manifests: string[] }): Promise<string[]> {
    const repository = this.#repositories.get(name);
    const missing = [
      ...references.blobs.filter((digest) => !repository?.blobs.has(digest)),
      ...references.manifests.filter((digest) => !repository?.manifests.has(digest)),
    ];
    return [...new Set(missing)];
  }

  async getManifest(name: string, digest: string): Promise<StoredManifest | undefined> {
    const repository = this.#repositories.get(name);
    const manifest = repository?.manifests.get(digest)?.value;
    const pulledAt = repository?.pulls.get(digest);
    return manifest && pulledAt !== undefined ? { ...manifest, pulledAt } : manifest;
  }

  async resolveTag(name: string, tag: string): Promise<StoredManifest | undefined> {
    const digest = this.#repositories.get(name)?.tags.get(tag);
    return digest === undefined ? undefined : this.getManifest(name, digest);
  }

  /** Per manifest: a tag pull and a digest pull of one day write once between them. */
  async recordPull(name: string, reference: string, digest: string, at: number): Promise<boolean> {
    const repository = this.#repositories.get(name);
    if (!repository?.manifests.has(digest) || (reference !== digest && repository.tags.get(reference) !== digest)) return false;
    if (pulledToday(repository.pulls.get(digest), at)) return false;
    repository.pulls.set(digest, at);
    return true;
  }

  async manifestActivity(name: string): Promise<Map<string, ManifestActivity>> {
    const repository = this.#repositories.get(name);
    const activity = new Map<string, ManifestActivity>();
    for (const [digest, { at }] of repository?.manifests ?? []) {
      const pulledAt = repository!.pulls.get(digest);
      activity.set(digest, pulledAt === undefined ? { pushedAt: at } : { pushedAt: at, pulledAt });
    }
    return activity;
  }

  async putManifest(name: string, manifest: StoredManifest, tags: string[], options: PutManifestOptions = {}): Promise<void> {
    await this.#references.writeManifest(
      name,
      manifest.digest,
      options.references,
      (references) => this.missingReferences(name, references),
      async () => {
        const repository = this.#repository(name);
        // Checked and written without an await in between: no other push runs in the middle.
        for (const tag of options.fixedTags ?? []) {
          const current = repository.tags.get(tag);
          if (current !== undefined && current !== manifest.digest) throw new TagFixedConflict(tag, current);
        }
        const { pulledAt: _read, ...stored } = manifest;
        repository.manifests.set(manifest.digest, { value: stored, at: this.#now() });
        for (const tag of tags) setTag(repository, tag, manifest.digest, options.history);
      },
    );
  }

  async deleteManifest(name: string, digest: string, options: DeleteOptions = {}): Promise<boolean> {
    const repository = this.#repositories.get(name);
    if (!repository?.manifests.delete(digest)) return false;
    repository.pulls.delete(digest);
    for (const [tag, target] of repository.tags) if (target === digest) setTag(repository, tag, undefined, options.history);
    return true;
  }

  async deleteTag(name: string, tag: string, digest?: string, options: DeleteOptions = {}): Promise<boolean> {
    const repository = this.#repositories.get(name);
    const current = repository?.tags.get(tag);
    if (!repository || current === undefined || (digest !== undefined && current !== digest)) return false;
    setTag(repository, tag, undefined, options.history);
    return true;
  }

  /** The kept changes of every tag of `name` with history, newest first (live: MemoryTagHistoryStore copies what it returns). */
  tagHistory(name: string): Map<string, TagChange[]> {
    return this.#repository(name).history;
  }

  async listTags(name: string, page: PageRequest): Promise<Page<string> | undefined> {
    const repository = this.#repositories.get(name);
    if (!repository || repository.manifests.size === 0) return undefined;
    return paginate(repository.tags.keys(), page);
  }

  async listRepositories(page: PageRequest): Promise<Page<string>> {
    const names = [...this.#repositories].filter(([, repository]) => repository.manifests.size > 0).map(([name]) => name);
    return paginate(names, page);
  }

  async listReferrers(name: string, subject: string): Promise<Descriptor[]> {
    const manifests = this.#repositories.get(name)?.manifests.values() ?? [];
    return [...manifests].filter(({ value }) => value.subject === subject).map(({ value }) => referrerDescriptor(value));
  }

  async createUpload(session: UploadSession): Promise<void> {
    if (this.#uploads.has(session.uploadId)) throw uploadConflict(session.name, session.uploadId);
    this.#uploads.set(session.uploadId, structuredClone(session));
  }

  async getUpload(name: string, uploadId: string): Promise<UploadSession | undefined> {
    const session = this.#uploads.get(uploadId);
    return session?.name === name ? structuredClone(session) : undefined;
  }

  async updateUpload(next: UploadSession): Promise<void> {
    const current = this.#uploads.get(next.uploadId);
    if (!current || current.version !== next.version - 1) throw uploadConflict(next.name, next.uploadId);
    this.#uploads.set(next.uploadId, structuredClone(next));
  }

  async deleteUpload(_name: string, uploadId: string): Promise<void> {
    this.#uploads.delete(uploadId);
  }

  // ---- garbage collection (GcStore)

  /** Entries in the order of a key per entry; the cursor is the last key returned. */
  async scan(cursor: string | undefined, limit: number): Promise<ScanPage<GcEntry>> {
    const entries: [string, GcEntry][] = [];
    for (const [name, repository] of this.#repositories) {
      const tagged = new Set(repository.tags.values());
      for (const [digest, { value, at }] of repository.manifests) {
        entries.push([`1\u0000${name}\u0000${digest}`, { kind: 'manifest', name, manifest: value, tagged: tagged.has(digest), storedAt: at }]);
      }
      for (const [digest, { value, at }] of repository.blobs) {
        entries.push([`2\u0000${name}\u0000${digest}`, { kind: 'link', name, digest, size: value.size, createdAt: at }]);
      }
    }
    for (const [digest, { value, at }] of this.#blobs) {
      entries.push([`3\u0000${digest}`, { kind: 'blob', digest, size: value.size, location: value.location, createdAt: at }]);
    }
    for (const [uploadId, session] of this.#uploads) {
      entries.push([`4\u0000${uploadId}`, { kind: 'upload', name: session.name, uploadId, createdAt: session.createdAt, storage: session.storage }]);
    }
    const after = entries.filter(([key]) => cursor === undefined || key > cursor).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const page = after.slice(0, limit);
    return { items: page.map(([, entry]) => entry), cursor: after.length > limit ? page.at(-1)![0] : undefined };
  }

  async doomLink(name: string, digest: string, runId: string, since: number): Promise<boolean> {
    if (!this.#repositories.get(name)?.blobs.has(digest)) return false;
    return this.#references.doom(referenceKey.link(name, digest), runId, since);
  }

  dropLink(name: string, digest: string, runId: string): Promise<boolean> {
    return this.#references.drop(referenceKey.link(name, digest), runId, () => this.unlinkBlob(name, digest));
  }

  async doomBlob(digest: string, runId: string, since: number): Promise<BlobRecord | undefined> {
    const record = this.#blobs.get(digest)?.value;
    if (!record || !this.#references.doom(referenceKey.blob(digest), runId, since)) return undefined;
    return record;
  }

  dropBlob(record: BlobRecord, runId: string, deleteBytes: (location: string) => Promise<void>): Promise<boolean> {
    return this.#references.drop(referenceKey.blob(record.digest), runId, async () => {
      await deleteBytes(record.location);
      return this.#blobs.delete(record.digest);
    });
  }

  async doomManifest(name: string, digest: string, runId: string, since: number): Promise<boolean> {
    if (!this.#repositories.get(name)?.manifests.has(digest)) return false;
    return this.#references.doom(referenceKey.manifest(name, digest), runId, since);
  }

  dropManifest(name: string, digest: string, runId: string): Promise<boolean> {
    return this.#references.drop(referenceKey.manifest(name, digest), runId, () => this.deleteManifest(name, digest));
  }

  #repository(name: string): Repository {
    let repository = this.#repositories.get(name);
    if (!repository) {
      repository = { blobs: new Map(), manifests: new Map(), tags: new Map(), pulls: new Map(), history: new Map() };
      this.#repositories.set(name, repository);
    }
    return repository;
  }
}

/** Points `tag` at `digest` (undefined: deletes it) with its history entry, synchronously: nothing runs in between. */
function setTag(repository: Repository, tag: string, digest: string | undefined, history: HistoryWrite | undefined): void {
  const previous = repository.tags.get(tag);
  if (digest === undefined) repository.tags.delete(tag);
  else repository.tags.set(tag, digest);
  if (history && previous !== digest) repository.history.set(tag, withChange(repository.history.get(tag) ?? [], stampedChange(history.stamp, tag, previous, digest), history.depth));
}
