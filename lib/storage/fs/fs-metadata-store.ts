import { access, readdir, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { uploadConflict } from '../../registry/errors.ts';
import type { GcEntry, ScanPage } from '../../registry/gc/gc-entries.ts';
import { paginate } from '../../registry/pagination.ts';
import { TagFixedConflict, type GcStore, type MetadataStore, type PutManifestOptions } from '../../registry/ports.ts';
import { referrerDescriptor, type BlobRecord, type Descriptor, type Page, type PageRequest, type StoredManifest, type UploadSession } from '../../registry/types.ts';
import { createFileExclusive, isNotFound, readFileIfExists, removeFile, writeFileAtomic } from './atomic-file.ts';
import { InProcessReferences, referenceKey } from '../in-process-references.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import type { FsKeys } from './keys.ts';

/** A manifest record on disk: the stored manifest with its bytes in base64. */
interface ManifestFile extends Omit<StoredManifest, 'content'> {
  content: string;
}

/**
 * Metadata in small JSON files (layout in keys.ts), each written atomically. One process owns a data dir,
 * so compare-and-set is a version check under an in-process lock, and garbage collection's marks live in that
 * process (in-process-references.ts): `ocireg gc` runs inside `ocireg serve` when one owns the data dir.
 */
export class FsMetadataStore implements MetadataStore, GcStore {
  readonly clockToleranceMs = 0;
  readonly #keys: FsKeys;
  readonly #mutex = new KeyedMutex();
  readonly #references = new InProcessReferences();

  constructor(keys: FsKeys) {
    this.#keys = keys;
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
    const text = await readFileIfExists(this.#keys.manifest(name, digest));
    if (text === undefined) return undefined;
    const file = JSON.parse(text) as ManifestFile;
    return { ...file, content: Buffer.from(file.content, 'base64') };
  }

  async resolveTag(name: string, tag: string): Promise<StoredManifest | undefined> {
    const digest = await readFileIfExists(this.#keys.tag(name, tag));
    return digest === undefined ? undefined : this.getManifest(name, digest.trim());
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
   * Garbage collection: the references are held from their check to the end of the write (in-process-references.ts).
   */
  async putManifest(name: string, manifest: StoredManifest, tags: string[], options: PutManifestOptions = {}): Promise<void> {
    const references = options.references ?? { blobs: [], manifests: [] };
    await this.#references.writeManifest(
      name,
      manifest.digest,
      references,
      async () => (await this.missingReferences(name, references))[0],
      () => this.#writeManifest(name, manifest, tags, options),
    );
  }

  async #writeManifest(name: string, manifest: StoredManifest, tags: string[], options: PutManifestOptions): Promise<void> {
    const fixed = new Set(options.fixedTags ?? []);
    for (const tag of fixed) {
      const current = (await readFileIfExists(this.#keys.tag(name, tag)))?.trim();
      if (current !== undefined && current !== manifest.digest) throw new TagFixedConflict(tag, current);
    }
    const file: ManifestFile = { ...manifest, content: Buffer.from(manifest.content).toString('base64') };
    await writeFileAtomic(this.#keys.tmpDir, this.#keys.manifest(name, manifest.digest), JSON.stringify(file));
    if (manifest.subject !== undefined) {
      const path = this.#keys.referrer(name, manifest.subject, manifest.digest);
      await writeFileAtomic(this.#keys.tmpDir, path, JSON.stringify(referrerDescriptor(manifest)));
    }
    await Promise.all(
      tags.map((tag) =>
        this.#mutex.run(tagLock(name, tag), async () => {
          const path = this.#keys.tag(name, tag);
          if (fixed.has(tag)) {
            const current = (await readFileIfExists(path))?.trim();
            if (current !== undefined && current !== manifest.digest) throw new TagFixedConflict(tag, current);
          }
          await writeFileAtomic(this.#keys.tmpDir, path, manifest.digest);
        }),
      ),
    );
  }

  /** Tags and the referrer entry go first, the manifest last: a crash in between leaves no tag pointing at nothing. */
  async deleteManifest(name: string, digest: string): Promise<boolean> {
    const manifest = await this.getManifest(name, digest);
    if (!manifest) return false;
    for (const tag of await this.#tagNames(name)) {
      const target = await readFileIfExists(this.#keys.tag(name, tag));
      if (target?.trim() === digest) await removeFile(this.#keys.tag(name, tag));
    }
    if (manifest.subject !== undefined) await removeFile(this.#keys.referrer(name, manifest.subject, digest));
    return removeFile(this.#keys.manifest(name, digest));
  }

  async deleteTag(name: string, tag: string): Promise<boolean> {
    return removeFile(this.#keys.tag(name, tag));
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

  /**
   * Walks the data dir (the file names are the keys: no file is read for an entry before its page), sorts the
   * entries by key and reads the page after `cursor`. An entry whose file vanished meanwhile is left out.
   */
  async scan(cursor: string | undefined, limit: number): Promise<ScanPage<GcEntry>> {
    const entries: [string, () => Promise<GcEntry | undefined>][] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      for (const entry of await listDir(dir)) {
        if (entry.startsWith('_')) continue;
        const name = prefix ? `${prefix}/${entry}` : entry;
        await this.#repositoryEntries(name, entries);
        await walk(join(dir, entry), name);
      }
    };
    await walk(this.#keys.repositoriesDir, '');
    for (const [algorithm, file] of await listTwoLevels(this.#keys.blobRecordsDir)) {
      const digest = `${algorithm}:${file.replace(/\.json$/, '')}`;
      entries.push([`3\u0000${digest}`, async () => {
        const dated = await readDated<BlobRecord>(this.#keys.blobRecord(digest));
        return dated && { kind: 'blob', digest, size: dated.value.size, location: dated.value.location, createdAt: dated.at };
      }]);
    }
    for (const file of await listDir(this.#keys.uploadSessionsDir)) {
      entries.push([`4\u0000${file}`, async () => {
        const dated = await readDated<UploadSession>(join(this.#keys.uploadSessionsDir, file));
        return dated && { kind: 'upload', name: dated.value.name, uploadId: dated.value.uploadId, createdAt: dated.value.createdAt, storage: dated.value.storage };
      }]);
    }
    for (const [algorithm, prefix] of await listTwoLevels(this.#keys.blobsDir)) {
      for (const file of await listDir(join(this.#keys.blobsDir, algorithm, prefix))) {
        const location = this.#keys.locationOf(algorithm, file);
        entries.push([`5\u0000${location}`, async () => {
          const info = await statIfExists(this.#keys.blobPath(location));
          return info && { kind: 'bytes', location, size: info.size, changedAt: info.changedAt };
        }]);
      }
    }
    for (const uploadId of await listDir(this.#keys.uploadsDir)) {
      entries.push([`6\u0000${uploadId}`, async () => {
        const info = await statIfExists(this.#keys.uploadData(uploadId));
        return info && { kind: 'upload-data', uploadId, size: info.size, changedAt: info.changedAt };
      }]);
    }
    const after = entries.filter(([key]) => cursor === undefined || key > cursor).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const page = after.slice(0, limit);
    const items = (await Promise.all(page.map(([, load]) => load()))).filter((entry) => entry !== undefined);
    return { items, cursor: after.length > limit ? page.at(-1)![0] : undefined };
  }

  async #repositoryEntries(name: string, entries: [string, () => Promise<GcEntry | undefined>][]): Promise<void> {
    let tagged: Promise<Set<string>> | undefined;
    const taggedDigests = () =>
      (tagged ??= this.#tagNames(name).then(async (tags) => new Set((await Promise.all(tags.map((tag) => readFileIfExists(this.#keys.tag(name, tag))))).flatMap((digest) => (digest === undefined ? [] : [digest.trim()])))));
    for (const [algorithm, file] of await listTwoLevels(this.#keys.manifestsDir(name))) {
      const digest = `${algorithm}:${file.replace(/\.json$/, '')}`;
      entries.push([`1\u0000${name}\u0000${digest}`, async () => {
        const dated = await readDated<ManifestFile>(this.#keys.manifest(name, digest));
        if (!dated) return undefined;
        const manifest = { ...dated.value, content: Buffer.from(dated.value.content, 'base64') };
        return { kind: 'manifest', name, manifest, tagged: (await taggedDigests()).has(digest), storedAt: dated.at };
      }]);
    }
    for (const [algorithm, file] of await listTwoLevels(join(this.#keys.repository(name), '_blobs'))) {
      const digest = `${algorithm}:${file.replace(/\.json$/, '')}`;
      entries.push([`2\u0000${name}\u0000${digest}`, async () => {
        const dated = await readDated<BlobRecord>(this.#keys.blobLink(name, digest));
        return dated && { kind: 'link', name, digest, size: dated.value.size, createdAt: dated.at };
      }]);
    }
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

/** Lock keys of tags: upload ids (the other lock keys) hold no `/` or `:`. */
function tagLock(name: string, tag: string): string {
  return `tag:${name}:${tag}`;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
}

/** The entries two directory levels down: [first, second] pairs, e.g. [algorithm, file]. */
async function listTwoLevels(dir: string): Promise<[string, string][]> {
  const pairs: [string, string][] = [];
  for (const first of await listDir(dir)) for (const second of await listDir(join(dir, first))) pairs.push([first, second]);
  return pairs;
}

/** A JSON file and its modification time, or undefined when it does not exist. */
async function readDated<T>(path: string): Promise<{ value: T; at: number } | undefined> {
  const [text, info] = await Promise.all([readFileIfExists(path), statIfExists(path)]);
  return text === undefined || info === undefined ? undefined : { value: JSON.parse(text) as T, at: info.changedAt };
}

/**
 * Size and the later of modification and status change (a rename sets the change time: bytes renamed into place
 * count as new), or undefined when absent.
 */
async function statIfExists(path: string): Promise<{ size: number; changedAt: number } | undefined> {
  try {
    const info = await stat(path);
    return { size: info.size, changedAt: Math.max(info.mtimeMs, info.ctimeMs) };
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    (error: unknown) => (isNotFound(error) ? false : Promise.reject(error)),
  );
}
