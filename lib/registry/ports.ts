import type { BlobRecord, ByteRange, ByteSource, Descriptor, Json, Page, PageRequest, StoredManifest, UploadSession } from './types.ts';
import type { GcEntry, ScanPage } from './gc/gc-entries.ts';
import type { ParsedDigest } from './digest.ts';
import type { RepositoryPolicy } from './policy.ts';
import type { RepositoryFacts, UsageSummary } from './usage.ts';
import type { HistoryWrite } from './tag-history.ts';

/**
 * The storage ports: everything the core needs from a backend, and nothing about how it is done.
 * Implementations: lib/storage/{memory,fs,s3,dynamodb}. Every implementation passes test/storage/*.contract.ts.
 * Over 300 lines on purpose: declarations only (no code), every port and its contract in one file, so that a new
 * backend is written against one page.
 */

/** How a blob's bytes reach the client. */
export type BlobRead =
  /** The client is sent elsewhere (a presigned S3 URL): 307, the bytes never pass through us. */
  | { kind: 'redirect'; url: string }
  /** The bytes of the requested range (or the whole blob). */
  | { kind: 'stream'; body: ByteSource };

/**
 * Bytes: blob contents and uploads in progress. Content-addressing and verification happen here because
 * only the store knows how to hash what it holds (re-reading a file, or a SHA-256 state saved between Lambda calls).
 */
export interface BlobStore {
  /**
   * The largest body one `append` accepts, or undefined for no limit. The S3 store sets it below the Lambda
   * payload limit; the core answers larger bodies with 413 and advertises it as `OCI-Chunk-Max-Length`.
   */
  readonly maxChunkLength: number | undefined;

  /** Opens storage for a new upload; returns the state to keep in the session. */
  startUpload(uploadId: string): Promise<Json>;

  /**
   * Appends `body` at `offset` (the session's current size) and returns the new state and size.
   * The caller has checked the order; the store must not let a failed or concurrent append corrupt bytes
   * already acknowledged. `declaredLength` is the Content-Length when the client sent one.
   */
  append(state: Json, offset: number, body: ByteSource, declaredLength?: number): Promise<{ state: Json; size: number }>;

  /**
   * Verifies that the `size` bytes uploaded hash to `digest` and makes them a committed blob.
   * Throws DIGEST_INVALID (and keeps nothing visible) on mismatch. Returns the blob's location.
   */
  commit(state: Json, digest: ParsedDigest, size: number): Promise<string>;

  /**
   * A blob whose bytes all arrive in one request (POST `?digest=` with the body, or the PUT `?digest=` of an upload
   * that holds nothing yet): verifies `body` against `digest` and stores it as a committed blob under a location
   * of its own, never shared with an upload (two such requests for one upload cannot overwrite each other). Throws
   * DIGEST_INVALID, keeping nothing, on mismatch. Optional: without it the core appends, then commits; a store
   * that can write a blob straight to its final place saves the intermediate copy. Pushes reach it with at most
   * `maxChunkLength` bytes (the core's limit); a pull-through cache copy streams a blob of any size through it, so
   * it must not hold the body in memory (S3: a multipart upload, part by part).
   */
  commitWhole?(digest: ParsedDigest, body: ByteSource, declaredLength?: number): Promise<{ location: string; size: number }>;

  /** Discards an upload's storage. Idempotent. */
  abort(state: Json): Promise<void>;

  /** Reads a committed blob, whole or a range already checked against its size. */
  read(location: string, range?: ByteRange): Promise<BlobRead>;

  /**
   * Where a blob HEAD is sent instead of being answered from metadata (a presigned S3 HEAD URL, so the size comes
   * from S3 itself), or undefined: answer it here. Absent or undefined means unsupported, as for distribution's
   * `RedirectURL`. No storage call is needed to decide.
   */
  headRedirect?(location: string): Promise<string | undefined>;

  /**
   * A committed blob's bytes, read by this process where `read` would send the client elsewhere: for the few small
   * blobs the registry reads itself (an image config for the console). Absent: `read` streams them.
   */
  readBytes?(location: string): Promise<Uint8Array>;

  /** Deletes a committed blob's bytes. Idempotent. Only garbage collection calls it. */
  delete(location: string): Promise<void>;
}

/**
 * Manifest bytes that a metadata store cannot keep in its own records (a DynamoDB item holds 400 KB), by digest.
 * Content-addressed: one body per digest, shared by every repository that holds the manifest.
 */
export interface ManifestBodyStore {
  /** Stores `content` under `digest`, which the caller has verified. Idempotent: one digest, one content. */
  put(digest: string, content: Uint8Array, mediaType: string): Promise<void>;
  /** The bytes stored under `digest`; undefined when absent. */
  get(digest: string): Promise<Uint8Array | undefined>;
  /** Deletes the body of `digest`. Idempotent. Only garbage collection calls it (GcStore.dropManifestBody). */
  delete(digest: string): Promise<void>;
}

/**
 * Everything but blob bytes: blob records and repository links, manifests, tags, referrers, uploads.
 * Writes that can race are conditional: `putBlob` keeps the first record, `updateUpload` is a compare-and-set.
 */
export interface MetadataStore {
  /** The global record of a committed blob, or undefined. */
  getBlob(digest: string): Promise<BlobRecord | undefined>;
  /**
   * Records a committed blob unless one exists; returns the record in force (the earlier one wins). A record doomed
   * by garbage collection is replaced (its bytes are being deleted; the new upload's are elsewhere).
   */
  putBlob(record: BlobRecord): Promise<BlobRecord>;

  /** The blob as linked into repository `name` (pull path: one read). Undefined when not linked. */
  getLinkedBlob(name: string, digest: string): Promise<BlobRecord | undefined>;
  /**
   * Links a committed blob into a repository, replacing a link that garbage collection has doomed. Idempotent.
   * False, and nothing linked, when the global record is absent, doomed (its bytes are going) or at another location
   * than `record`'s (it was collected and uploaded again): upload it again.
   * The check and the link are one write (see lib/registry/gc/collector.ts for the race).
   */
  linkBlob(name: string, record: BlobRecord): Promise<boolean>;
  /** Removes a repository's link to a blob; false when there was none. */
  unlinkBlob(name: string, digest: string): Promise<boolean>;

  /**
   * The digests among `blobs` (linked into `name`) and `manifests` (of `name`) that are absent, in the order given
   * (repeats once); empty when all exist. A manifest push checks its references with it, in one round trip where
   * the backend can.
   */
  missingReferences(name: string, references: { blobs: string[]; manifests: string[] }): Promise<string[]>;

  /** A manifest of the repository by digest. */
  getManifest(name: string, digest: string): Promise<StoredManifest | undefined>;
  /** The manifest a tag points at (pull path: one read). */
  resolveTag(name: string, tag: string): Promise<StoredManifest | undefined>;
  /**
   * Stores a manifest, indexes its subject, and points each of `tags` at it (last writer wins per tag). Tags also in
   * `options.fixedTags` are set only when absent or already at this digest, atomically against concurrent pushes of
   * the tag; otherwise nothing of the push is visible and {@link TagFixedConflict} is thrown. `options.references`
   * (the blobs linked into `name` and the child manifests of `name` it needs) are checked in the same write: one that
   * is absent or doomed by garbage collection throws MANIFEST_BLOB_UNKNOWN and stores nothing.
   */
  putManifest(name: string, manifest: StoredManifest, tags: string[], options?: PutManifestOptions): Promise<void>;
  /**
   * Deletes a manifest, the tags pointing at it and its referrers entry; false when absent. With `options.history`,
   * each tag's `deleted` change is written with the tag's delete, atomically.
   */
  deleteManifest(name: string, digest: string, options?: DeleteOptions): Promise<boolean>;
  /**
   * Deletes a tag only; false when absent. With `digest`, only while the tag points at it, atomically against a
   * concurrent push of the tag (retention expires a tag it saw at `digest`, never one pushed since to another).
   * With `options.history`, its `deleted` change goes in the same write.
   */
  deleteTag(name: string, tag: string, digest?: string, options?: DeleteOptions): Promise<boolean>;
  /** Tags in lexical order; undefined when the repository has no manifests. */
  listTags(name: string, page: PageRequest): Promise<Page<string> | undefined>;
  /** Repositories that hold at least one manifest, in lexical order. */
  listRepositories(page: PageRequest): Promise<Page<string>>;
  /** Manifests of repository `name` whose subject is `subject`. */
  listReferrers(name: string, subject: string): Promise<Descriptor[]>;

  /**
   * Records that a pull read manifest `digest` of `name` through `reference` (a tag pointing at it, or the digest) at
   * `at`: at most one write per record and UTC day (lib/registry/last-pull.ts). The caller decides from the
   * `pulledAt` its read returned, so a pull stays one read; the write is conditional (not yet recorded that day, the
   * record still there and, by tag, still at `digest`), so concurrent pulls of a stale record write once and a pull
   * never brings back a deleted manifest or tag. True when written. A store may keep the pull on the record read (the
   * DynamoDB tag item embeds its manifest) or on the manifest itself: {@link manifestActivity} merges them.
   */
  recordPull(name: string, reference: string, digest: string, at: number): Promise<boolean>;
  /**
   * Every manifest of `name` (by digest) with what retention, usage and `ocireg ls` call its activity: the last
   * recorded pull through any record (the digest, or a tag pointing at it now) and when a push last wrote the
   * manifest (each undefined where not recorded: never pulled, or pushed before the backend dated pushes).
   */
  manifestActivity(name: string): Promise<Map<string, ManifestActivity>>;

  /** Creates an upload session; it must not exist yet. */
  createUpload(session: UploadSession): Promise<void>;
  getUpload(name: string, uploadId: string): Promise<UploadSession | undefined>;
  /**
   * Compare-and-set: stores `next` only if the stored session still has `next.version - 1`;
   * otherwise throws the core's uploadConflict (RANGE_INVALID).
   */
  updateUpload(next: UploadSession): Promise<void>;
  /** Idempotent. */
  deleteUpload(name: string, uploadId: string): Promise<void>;
}

/** See {@link MetadataStore.manifestActivity}. Epoch ms. */
export interface ManifestActivity {
  pulledAt?: number;
  pushedAt?: number;
}

export interface PutManifestOptions {
  /** Tags (among those pushed) that must not move to another manifest: immutable tags. */
  fixedTags?: string[];
  /** What the manifest needs in the repository, checked atomically with the write (garbage collection). */
  references?: ManifestReferences;
  /** Record each tag created or moved in the tag history, in the same atomic write as the tag (tag-history.ts). */
  history?: HistoryWrite;
}

export interface DeleteOptions {
  /** Record each tag deleted in the tag history, in the same atomic write as the delete. */
  history?: HistoryWrite;
}

/** A manifest's blobs (linked into its repository) and child manifests (of its repository). */
export interface ManifestReferences {
  blobs: string[];
  manifests: string[];
}

/** Thrown by {@link MetadataStore.putManifest} when a fixed tag points at another manifest. Not an OciError: the core names the rule. */
export class TagFixedConflict extends Error {
  readonly tag: string;
  /** The digest the tag keeps pointing at. */
  readonly current: string;

  constructor(tag: string, current: string) {
    super(`tag ${tag} points at ${current}`);
    this.name = 'TagFixedConflict';
    this.tag = tag;
    this.current = current;
  }
}

/**
 * Storage policies (policy.ts), one per repository glob. Small and rarely written: readers list them all and cache
 * the list briefly (policy-cache.ts), so a change takes effect in a running registry within seconds.
 */
export interface PolicyStore {
  /** Every policy, in no particular order. */
  listPolicies(): Promise<RepositoryPolicy[]>;
  /** Creates or replaces the policy of `policy.glob` whole. */
  putPolicy(policy: RepositoryPolicy): Promise<void>;
  /** Deletes the policy of `glob`; false when there was none. */
  deletePolicy(glob: string): Promise<boolean>;
}

/** A pull-through cache rule: repositories under `prefix/` are copies of the upstream's repositories. */
export interface CacheRule {
  /** A repository name prefix, e.g. `hub`: `hub/library/alpine` is `library/alpine` on the upstream. */
  prefix: string;
  /** The upstream registry's base URL, e.g. `https://registry-1.docker.io`. */
  upstream: string;
  /** Credentials for the upstream; absent (and no `credentialsSecret`): anonymous pulls. */
  credentials?: { username: string; password: string };
  /**
   * Where the credentials are kept instead, when the store keeps them outside the rule (DynamoDB: the name of a
   * Secrets Manager secret). The upstream reads them when it needs them; `credentials` is then absent.
   */
  credentialsSecret?: string;
}

/**
 * The pull-through cache rules, keyed by prefix. Credentials are secrets: the fs store keeps them in a file of
 * mode 0600, the DynamoDB store in one Secrets Manager secret per rule (listed as `credentialsSecret`). No two rules nest (`hub` and `hub/library` at once), so a repository has at most one rule.
 */
export interface CacheRuleStore {
  /** Creates or replaces the rule of `rule.prefix`; throws UNSUPPORTED when it would nest with another rule. */
  put(rule: CacheRule): Promise<void>;
  /** Every rule, by prefix in lexical order. */
  list(): Promise<CacheRule[]>;
  /** Removes the rule of `prefix` (cached content stays); false when there was none. */
  remove(prefix: string): Promise<boolean>;
}

/** A manifest as an upstream registry answered it. */
export interface UpstreamManifest {
  digest: string;
  mediaType: string;
  content: Uint8Array;
}

/**
 * One upstream registry, as the pull-through cache sees it (lib/client/upstream-registry.ts over HTTP). Absent
 * content is undefined; an upstream that cannot answer (unreachable, 5xx, 429, credentials refused) throws.
 */
export interface Upstream {
  /**
   * The digest a tag or digest resolves to, by HEAD (no manifest pull counted by Docker Hub); undefined when absent;
   * '' when the upstream did not say (no Docker-Content-Digest): the cache then fetches the manifest.
   */
  headManifest(name: string, reference: string): Promise<string | undefined>;
  /** The manifest as stored upstream; undefined when absent. The caller verifies its digest. */
  getManifest(name: string, reference: string): Promise<UpstreamManifest | undefined>;
  /**
   * The blob's declared size and, when there is one, a URL a client can GET its bytes from without this registry's
   * credentials (the upstream's redirect target, e.g. a CDN or a presigned URL, or the blob URL itself when the
   * upstream asks for no token); undefined when absent. Reads no bytes. Optional: only a miss policy asks
   * (PullThroughCacheOptions.missPolicy).
   */
  locateBlob?(name: string, digest: string): Promise<{ size: number | undefined; url?: string } | undefined>;
  /** The blob's bytes, unverified (the cache verifies while storing), and its size when declared; undefined when absent. */
  openBlob(name: string, digest: string): Promise<{ size: number | undefined; body: ByteSource } | undefined>;
}

/**
 * What garbage collection needs from a metadata store on top of {@link MetadataStore}: one paged scan of everything,
 * and conditional marks. An item is doomed by one run (`runId`) only if nothing referenced it at or after `since`;
 * every write that creates a reference (putManifest's references, linkBlob's record) refuses a doomed item in the
 * same atomic step, and the run then deletes only what it still has doomed. Timeline: lib/registry/gc/collector.ts.
 */
export interface GcStore {
  /**
   * How far apart the clocks of the writers and the collector may be, ms: `since` is taken this much before the scan
   * starts. 0 where everything runs in one process.
   */
  readonly clockToleranceMs: number;
  /**
   * One page of everything stored (manifests, links, blob records, upload sessions, stray bytes), at most about
   * `limit` entries, after `cursor` (undefined: from the start). The page's cursor is undefined at the end. An item
   * that exists for the whole scan is listed once; one written meanwhile may or may not be.
   */
  scan(cursor: string | undefined, limit: number): Promise<ScanPage<GcEntry>>;
  /**
   * Cursors that split one scan into `segments` chains the collector follows side by side, each with `scan` to its
   * end; together they list what one chain from `undefined` lists. Absent: one chain.
   */
  scanStarts?(segments: number): string[];
  /** Dooms the link unless it is absent, already doomed, or referenced at or after `since`; true when doomed. */
  doomLink(name: string, digest: string, runId: string, since: number): Promise<boolean>;
  /** Deletes the link if `runId` still dooms it (a re-link replaced it otherwise); true when deleted. */
  dropLink(name: string, digest: string, runId: string): Promise<boolean>;
  /** Dooms the global blob record unless absent, already doomed, or referenced at or after `since`; the record doomed. */
  doomBlob(digest: string, runId: string, since: number): Promise<BlobRecord | undefined>;
  /**
   * Deletes the bytes (through `deleteBytes`) and the record `runId` still dooms, in the order that is crash-safe for
   * the backend (a record never outlives its bytes while not doomed). True when the record was deleted.
   */
  dropBlob(record: BlobRecord, runId: string, deleteBytes: (location: string) => Promise<void>): Promise<boolean>;
  /** Dooms a manifest of `name` (a referrer whose subject is gone) unless referenced at or after `since`. */
  doomManifest(name: string, digest: string, runId: string, since: number): Promise<boolean>;
  /** Deletes the manifest, its tags and referrer entry, if `runId` still dooms it. */
  dropManifest(name: string, digest: string, runId: string): Promise<boolean>;
  /**
   * Stores whose scan lists `manifest-body` entries: dooms the body of `digest` unless a push stored or referenced
   * it at or after `since`.
   */
  doomManifestBody?(digest: string, runId: string, since: number): Promise<boolean>;
  /** Deletes the body `runId` still dooms; true when deleted. */
  dropManifestBody?(digest: string, runId: string): Promise<boolean>;
}

/**
 * What usage and quotas read (usage.ts, quota.ts). Per-repository reads touch only that repository's items (one
 * DynamoDB partition, one directory): a quota check costs O(links of the repository), never a table scan. The
 * registry-wide report is every repository's facts; where that is too dear per request (DynamoDB), the store keeps
 * {@link UsageStore.summaries} that a GC run or `ocireg usage` writes and the HTTP API reads.
 */
export interface UsageStore {
  /** The blobs linked into repository `name`, digest → size; empty when none. */
  repositoryBlobs(name: string): Promise<Map<string, number>>;
  /** Everything the usage report says about repository `name` (zeros when it holds nothing). */
  repositoryFacts(name: string): Promise<RepositoryFacts>;
  /** Present where the registry-wide report is read from a stored summary rather than computed per request. */
  readonly summaries?: UsageSummaryStore;
}

/** The last computed usage summary. */
export interface UsageSummaryStore {
  /** The summary last written, or undefined when none was. */
  read(): Promise<UsageSummary | undefined>;
  /** Replaces the stored summary whole; a reader sees the old one or the new one, never a mix. */
  write(summary: UsageSummary): Promise<void>;
}
