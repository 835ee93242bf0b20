import { uploadConflict } from '../../registry/errors.ts';
import { paginate } from '../../registry/pagination.ts';
import { TagFixedConflict, type MetadataStore, type PutManifestOptions } from '../../registry/ports.ts';
import { referrerDescriptor, type BlobRecord, type Descriptor, type Page, type PageRequest, type StoredManifest, type UploadSession } from '../../registry/types.ts';

interface Repository {
  blobs: Map<string, BlobRecord>;
  manifests: Map<string, StoredManifest>;
  tags: Map<string, string>;
}

/** Metadata in memory: the fake for core unit tests. */
export class MemoryMetadataStore implements MetadataStore {
  readonly #blobs = new Map<string, BlobRecord>();
  readonly #repositories = new Map<string, Repository>();
  readonly #uploads = new Map<string, UploadSession>();

  async getBlob(digest: string): Promise<BlobRecord | undefined> {
    return this.#blobs.get(digest);
  }

  async putBlob(record: BlobRecord): Promise<BlobRecord> {
    const existing = this.#blobs.get(record.digest);
    if (existing) return existing;
    this.#blobs.set(record.digest, { ...record });
    return record;
  }

  async getLinkedBlob(name: string, digest: string): Promise<BlobRecord | undefined> {
    return this.#repositories.get(name)?.blobs.get(digest);
  }

  async linkBlob(name: string, record: BlobRecord): Promise<void> {
    this.#repository(name).blobs.set(record.digest, { ...record });
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
    return this.#repositories.get(name)?.manifests.get(digest);
  }

  async resolveTag(name: string, tag: string): Promise<StoredManifest | undefined> {
    const repository = this.#repositories.get(name);
    const digest = repository?.tags.get(tag);
    return digest === undefined ? undefined : repository?.manifests.get(digest);
  }

  async putManifest(name: string, manifest: StoredManifest, tags: string[], options: PutManifestOptions = {}): Promise<void> {
    const repository = this.#repository(name);
    // Checked and written without an await in between: no other push runs in the middle.
    for (const tag of options.fixedTags ?? []) {
      const current = repository.tags.get(tag);
      if (current !== undefined && current !== manifest.digest) throw new TagFixedConflict(tag, current);
    }
    repository.manifests.set(manifest.digest, manifest);
    for (const tag of tags) repository.tags.set(tag, manifest.digest);
  }

  async deleteManifest(name: string, digest: string): Promise<boolean> {
    const repository = this.#repositories.get(name);
    if (!repository?.manifests.delete(digest)) return false;
    for (const [tag, target] of repository.tags) if (target === digest) repository.tags.delete(tag);
    return true;
  }

  async deleteTag(name: string, tag: string): Promise<boolean> {
    return this.#repositories.get(name)?.tags.delete(tag) ?? false;
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
    return [...manifests].filter((manifest) => manifest.subject === subject).map(referrerDescriptor);
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

  #repository(name: string): Repository {
    let repository = this.#repositories.get(name);
    if (!repository) {
      repository = { blobs: new Map(), manifests: new Map(), tags: new Map() };
      this.#repositories.set(name, repository);
    }
    return repository;
  }
}
