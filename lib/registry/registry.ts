import { BlobUploads, type BlobUploadsOptions } from './blob-uploads.ts';
import { digestOf, isDigest, parseDigest } from './digest.ts';
import { blobUnknown, digestInvalid, manifestBlobUnknown, manifestUnknown, OciError, sizeInvalid, unsupported } from './errors.ts';
import { readAll } from './bytes.ts';
import { listReferrers, listRepositories, listTags } from './listings.ts';
import { parseManifest, readManifestBody } from './manifest.ts';
import { assertName, assertTag, isValidName, isValidTag } from './names.ts';
import { putManifestWithPolicy } from './immutable-tags.ts';
import { pulledToday } from './last-pull.ts';
import type { PolicyCache } from './policy-cache.ts';
import type { BlobRead, BlobStore, MetadataStore, UsageStore } from './ports.ts';
import { QuotaGuard } from './quota.ts';
import { UsageReports } from './usage-reports.ts';
import { TagVersions, type TagVersionsOptions } from './tag-versions.ts';
import type { ChangeContext } from './tag-history.ts';
import { copiedElsewhere, type PullThroughCache } from './pull-through-cache.ts';
import type { BlobInFlight, BlobRecord, ByteRange, ByteSource, Descriptor, Page, PageRequest, StoredManifest } from './types.ts';

export interface RegistryOptions extends BlobUploadsOptions, Omit<TagVersionsOptions, 'metadata'> {
  /** Repositories under a cache rule's prefix are filled from their upstream on a miss, and read-only. */
  cache?: PullThroughCache;
  /** Told when recording a pull failed (the pull is answered anyway; the next pull tries again). */
  onPullNotRecorded?: (error: unknown, pull: { name: string; reference: string; digest: string }) => void;
  /** Usage reports (`GET /v2/_ocireg/usage`) and, with `policies`, repository quotas. */
  usage?: UsageStore;
  /** Reports carry the estimated monthly storage cost at this price (AWS; usage-cost.ts). */
  pricePerGbMonthUsd?: number;
}

export interface ManifestPutResult {
  digest: string;
  subject?: string;
}

/**
 * The registry: every operation of the OCI Distribution Spec v1.1, over the storage ports.
 * Transport-free: `lib/http` maps requests onto these methods and errors onto statuses. Uploads are their own
 * unit ({@link BlobUploads}); listings are one bounded page each (listings.ts).
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md
 */
export class Registry {
  readonly #blobs: BlobStore;
  readonly #metadata: MetadataStore;
  readonly #cache: PullThroughCache | undefined;
  readonly #now: () => number;
  readonly #onPullNotRecorded: NonNullable<RegistryOptions['onPullNotRecorded']>;
  readonly #quota: QuotaGuard | undefined;
  /** Blob uploads: POST, PATCH, PUT, GET and DELETE on an upload. */
  readonly uploads: BlobUploads;
  /** Tag history, rollback, promotion and events (tag-versions.ts). */
  readonly versions: TagVersions;
  /** Storage usage per repository (usage-reports.ts); undefined without a usage store. */
  readonly usage: UsageReports | undefined;

  constructor(options: RegistryOptions) {
    this.#blobs = options.blobs;
    this.#metadata = options.metadata;
    this.#cache = options.cache;
    this.#now = options.now ?? Date.now;
    this.#onPullNotRecorded = options.onPullNotRecorded ?? (() => undefined);
    const policies = options.policies;
    this.#quota = policies && options.usage ? new QuotaGuard(policies, options.usage) : undefined;
    this.uploads = new BlobUploads({ ...options, ...(this.#quota ? { quota: this.#quota } : {}) });
    this.usage = options.usage
      ? new UsageReports({
          metadata: options.metadata,
          usage: options.usage,
          policies: async () => (policies ? policies.policies() : []),
          ...(options.pricePerGbMonthUsd !== undefined ? { pricePerGbMonthUsd: options.pricePerGbMonthUsd } : {}),
        })
      : undefined;
    this.versions = new TagVersions(options);
  }

  /** The largest chunk one request may carry, or undefined when unlimited. */
  get maxChunkLength(): number | undefined {
    return this.#blobs.maxChunkLength;
  }

  // ---- blobs ---------------------------------------------------------------------------------------------------

  /**
   * The blob as linked in `name`, or a pull-through cache blob still being copied elsewhere (a HEAD answers its size
   * all the same); BLOB_UNKNOWN when the repository does not reference it.
   */
  async statBlob(name: string, digest: string): Promise<BlobRecord | BlobInFlight> {
    assertName(name);
    parseDigest(digest);
    const record = (await this.#metadata.getLinkedBlob(name, digest)) ?? (await this.#cache?.getBlob(name, digest));
    if (!record) throw blobUnknown(name, digest);
    return record;
  }

  /**
   * A whole-blob GET: the blob as linked in `name` and how its bytes travel; on a pull-through cache miss, the
   * upstream's bytes as they are being stored. BLOB_UNKNOWN when neither has it.
   */
  async pullBlob(name: string, digest: string): Promise<{ record: Pick<BlobRecord, 'digest' | 'size'>; read: BlobRead }> {
    assertName(name);
    parseDigest(digest);
    const linked = await this.#metadata.getLinkedBlob(name, digest);
    if (linked) return { record: linked, read: await this.#blobs.read(linked.location) };
    const missed = await this.#cache?.openBlob(name, digest);
    if (!missed) throw blobUnknown(name, digest);
    return missed;
  }

  /** DENIED when `name` is a pull-through cache (read-only); the HTTP layer asks before every write. */
  async assertWritable(name: string): Promise<void> {
    await this.#cache?.assertWritable(name);
  }

  /**
   * Reads a blob found by {@link statBlob}, whole or a range the caller checked against `record.size` (a range needs
   * the size first, so the pull path stats, then reads: still one metadata read). A blob in flight is read where
   * the cache points clients meanwhile (the upstream's URL, which takes the client's Range itself), else UNAVAILABLE.
   */
  async readBlob(name: string, record: BlobRecord | BlobInFlight, range?: ByteRange): Promise<BlobRead> {
    if (record.location === undefined) {
      if (record.read === undefined) throw record.refused ?? copiedElsewhere(name, record.digest);
      return record.read;
    }
    return this.#blobs.read(record.location, range);
  }

  /**
   * The bytes of a small blob of `name`, read here even where a pull is a redirect (the console reads image configs
   * so: its page may not follow a redirect to S3). BLOB_UNKNOWN as for a pull; SIZE_INVALID over `maxBytes`, decided
   * from the record before any byte is read. The bytes are checked against `digest` (UNKNOWN when storage changed
   * them): a browser reading them does not verify them as a registry client would.
   */
  async readSmallBlob(name: string, digest: string, maxBytes: number): Promise<Uint8Array> {
    const record = await this.statBlob(name, digest);
    if (record.size > maxBytes) throw sizeInvalid(`blob ${digest} has ${record.size} bytes; at most ${maxBytes} are read here`, { digest, size: record.size, maxBytes });
    if (record.location === undefined) throw copiedElsewhere(name, digest);
    const bytes = this.#blobs.readBytes ? await this.#blobs.readBytes(record.location) : await this.#readStreamed(record.location, digest);
    const actual = digestOf(bytes, parseDigest(digest).algorithm);
    if (actual !== digest) throw new OciError('UNKNOWN', `the stored bytes of blob ${digest} do not match its digest`, { name, digest, actual });
    return bytes;
  }

  /** A blob's bytes through `read`, for a store without `readBytes`: its reads must stream, not redirect. */
  async #readStreamed(location: string, digest: string): Promise<Uint8Array> {
    const read = await this.#blobs.read(location);
    if (read.kind === 'redirect') throw unsupported('this storage cannot read a blob here; pull it instead', { digest });
    return readAll(read.body);
  }

  /** Where a HEAD of a blob found by {@link statBlob} is redirected, or undefined to answer it from the record. */
  async blobHeadRedirect(record: BlobRecord): Promise<string | undefined> {
    return this.#blobs.headRedirect?.(record.location);
  }

  /** Removes the blob from the repository. Its bytes stay until garbage collection: other repositories may link it. */
  async deleteBlob(name: string, digest: string): Promise<void> {
    assertName(name);
    parseDigest(digest);
    if (!(await this.#metadata.unlinkBlob(name, digest))) throw blobUnknown(name, digest);
  }

  // ---- uploads -------------------------------------------------------------------------------------------------

  /**
   * Cross-repository mount: links `digest` from `from` into `name`. Without `from`, any stored copy is mounted
   * (automatic content discovery). Returns undefined when nothing can be mounted; the caller then opens an upload.
   * `mayReadFrom` lets the access layer refuse a source the caller cannot pull.
   * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#mounting-a-blob-from-another-repository
   */
  async mountBlob(
    name: string,
    digest: string,
    from: string | undefined,
    mayReadFrom: (from: string) => boolean = () => true,
  ): Promise<BlobRecord | undefined> {
    assertName(name);
    parseDigest(digest);
    let record: BlobRecord | undefined;
    if (from !== undefined) {
      if (!isValidName(from) || !mayReadFrom(from)) return undefined;
      record = await this.#metadata.getLinkedBlob(from, digest);
    } else {
      record = await this.#metadata.getBlob(digest);
    }
    if (!record) return undefined;
    const found = record;
    const link = () => this.#metadata.linkBlob(name, found);
    // A record garbage collection is deleting (or has replaced) is not mounted: the client uploads the blob.
    // Over the quota: DENIED, rather than an upload that the same quota refuses at its end.
    const linked = this.#quota ? await this.#quota.admit(name, digest, record.size, link) : await link();
    return linked ? record : undefined;
  }

  // ---- manifests -----------------------------------------------------------------------------------------------

  /** A manifest by tag or digest; MANIFEST_UNKNOWN when absent. */
  async getManifest(name: string, reference: string): Promise<StoredManifest> {
    assertName(name);
    const stored = () => byReference(reference, (digest) => this.#metadata.getManifest(name, digest), (tag) => this.#metadata.resolveTag(name, tag));
    const local = { cached: stored, store: (fetched: StoredManifest, tags: string[], context: ChangeContext) => this.versions.recordFill(name, fetched, tags, context) };
    const manifest = (await this.#cache?.getManifest(name, reference, local)) ?? (await stored());
    if (!manifest) throw manifestUnknown(name, reference);
    return manifest;
  }

  /**
   * A manifest GET: {@link getManifest}, and the pull recorded for the retention rules (`--expire-unpulled`) and
   * `ocireg ls`, at most once per record and day, decided from what the read returned (last-pull.ts). A failed
   * record is reported to `onPullNotRecorded`, never to the client.
   */
  async pullManifest(name: string, reference: string): Promise<StoredManifest> {
    const manifest = await this.getManifest(name, reference);
    const now = this.#now();
    if (!pulledToday(manifest.pulledAt, now)) {
      try {
        await this.#metadata.recordPull(name, reference, manifest.digest, now);
      } catch (error) {
        this.#onPullNotRecorded(error, { name, reference, digest: manifest.digest });
      }
    }
    return manifest;
  }

  /**
   * Stores a manifest under a tag or its digest. Validates JSON and media type, requires every referenced blob
   * and child manifest to be in the repository, and verifies a digest reference against the content.
   * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#pushing-manifests
   */
  async putManifest(name: string, reference: string, body: ByteSource, contentType: string | undefined, length?: number, context?: ChangeContext): Promise<ManifestPutResult> {
    assertName(name);
    const content = await readManifestBody(body, length);
    let digest: string;
    const tags: string[] = [];
    if (isDigest(reference)) {
      const expected = parseDigest(reference);
      digest = digestOf(content, expected.algorithm);
      if (digest !== reference) throw digestInvalid('manifest content does not match the digest in the URL', { expected: reference, actual: digest });
    } else {
      assertTag(reference);
      digest = digestOf(content);
      tags.push(reference);
    }
    const parsed = parseManifest(content, contentType);
    const references = { blobs: parsed.blobs, manifests: parsed.manifests };
    // A cheap read first, for the common miss; the write checks again, atomically (garbage collection: gc/collector.ts).
    const [missing] = await this.#metadata.missingReferences(name, references);
    if (missing !== undefined) throw manifestBlobUnknown(missing);
    const stored: StoredManifest = { digest, mediaType: parsed.mediaType, content };
    if (parsed.subject !== undefined) stored.subject = parsed.subject;
    if (parsed.artifactType !== undefined) stored.artifactType = parsed.artifactType;
    if (parsed.annotations !== undefined) stored.annotations = parsed.annotations;
    await this.versions.putManifest(name, stored, tags, references, context);
    return parsed.subject !== undefined ? { digest, subject: parsed.subject } : { digest };
  }

  /** By digest: deletes the manifest and its tags. By tag: deletes the tag only. */
  async deleteManifest(name: string, reference: string, context?: ChangeContext): Promise<void> {
    assertName(name);
    const deleted = await byReference(
      reference,
      (digest) => this.versions.deleteManifest(name, digest, context),
      (tag) => this.versions.deleteTag(name, tag, context),
    );
    if (!deleted) throw manifestUnknown(name, reference);
  }

  // ---- listings ------------------------------------------------------------------------------------------------

  /** One bounded page of tags (see listings.ts); NAME_UNKNOWN when the repository holds no manifest. */
  listTags(name: string, page: PageRequest): Promise<Page<string>> {
    return listTags(this.#metadata, name, page);
  }

  /** One bounded page of repositories; with `visible`, only those it accepts. */
  listRepositories(page: PageRequest, visible?: (name: string) => boolean): Promise<Page<string>> {
    return listRepositories(this.#metadata, page, visible);
  }

  /**
   * One bounded page of the manifests whose subject is `digest`, optionally of one artifact type. Never NAME_UNKNOWN
   * or 404 for a well-formed digest: an unknown subject simply has no referrers.
   * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#listing-referrers
   */
  async listReferrers(name: string, digest: string, page: PageRequest, artifactType?: string): Promise<Page<Descriptor>> {
    assertName(name);
    parseDigest(digest);
    return listReferrers(this.#metadata, name, digest, page, artifactType);
  }
}

/**
 * A manifest reference is a digest (validated: DIGEST_INVALID or UNSUPPORTED when malformed) or a tag. A string that
 * is neither names nothing: undefined, which the callers answer with MANIFEST_UNKNOWN like an absent manifest.
 */
function byReference<T>(reference: string, byDigest: (digest: string) => Promise<T>, byTag: (tag: string) => Promise<T>): Promise<T | undefined> {
  if (isDigest(reference)) {
    parseDigest(reference);
    return byDigest(reference);
  }
  return isValidTag(reference) ? byTag(reference) : Promise.resolve(undefined);
}
