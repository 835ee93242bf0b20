import { randomUUID } from 'node:crypto';
import { limitBytes, readAll } from './bytes.ts';
import { digestOf, isDigest, parseDigest } from './digest.ts';
import {
  blobUnknown,
  blobUploadUnknown,
  digestInvalid,
  isOciError,
  manifestBlobUnknown,
  manifestUnknown,
  payloadTooLarge,
  rangeInvalid,
  UploadRangeError,
  type UploadPosition,
} from './errors.ts';
import { listReferrers, listRepositories, listTags } from './listings.ts';
import { MAX_MANIFEST_BYTES, parseManifest } from './manifest.ts';
import { assertName, assertTag, isValidName, isValidTag } from './names.ts';
import type { BlobRead, BlobStore, MetadataStore } from './ports.ts';
import type {
  BlobRecord,
  ByteRange,
  ByteSource,
  Descriptor,
  Page,
  PageRequest,
  StoredManifest,
  UploadSession,
} from './types.ts';

export interface RegistryOptions {
  blobs: BlobStore;
  metadata: MetadataStore;
  /** Uploads idle longer than this are unknown (and their storage may be reclaimed). Default 24 h. */
  uploadTtlMs?: number;
  now?: () => number;
}

/** Where a chunk claims to go: the parsed Content-Range and Content-Length of a PATCH or final PUT. */
export interface ChunkInfo {
  /** Parsed `Content-Range` (inclusive); absent for a streamed PATCH, and when `rawRange` could not be parsed. */
  range?: ByteRange;
  /** Raw `Content-Range`, for error details; set without `range` when malformed (416, with the upload's position). */
  rawRange?: string;
  /** `Content-Length`, when the client sent one. */
  length?: number;
}

export interface ManifestPutResult {
  digest: string;
  subject?: string;
}

const DEFAULT_UPLOAD_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * The registry: every operation of the OCI Distribution Spec v1.1, over the storage ports.
 * Transport-free: `lib/http` maps requests onto these methods and errors onto statuses.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md
 */
export class Registry {
  readonly #blobs: BlobStore;
  readonly #metadata: MetadataStore;
  readonly #uploadTtlMs: number;
  readonly #now: () => number;

  constructor(options: RegistryOptions) {
    this.#blobs = options.blobs;
    this.#metadata = options.metadata;
    this.#uploadTtlMs = options.uploadTtlMs ?? DEFAULT_UPLOAD_TTL_MS;
    this.#now = options.now ?? Date.now;
  }

  /** The largest chunk one request may carry, or undefined when unlimited. */
  get maxChunkLength(): number | undefined {
    return this.#blobs.maxChunkLength;
  }

  // ---- blobs ---------------------------------------------------------------------------------------------------

  /** The blob as linked in `name`; BLOB_UNKNOWN when the repository does not reference it. */
  async statBlob(name: string, digest: string): Promise<BlobRecord> {
    assertName(name);
    parseDigest(digest);
    const record = await this.#metadata.getLinkedBlob(name, digest);
    if (!record) throw blobUnknown(name, digest);
    return record;
  }

  /**
   * Reads a blob found by {@link statBlob}, whole or a range the caller checked against `record.size` (a range needs
   * the size first, so the pull path stats, then reads: still one metadata read).
   */
  async readBlob(record: BlobRecord, range?: ByteRange): Promise<BlobRead> {
    return this.#blobs.read(record.location, range);
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
    await this.#metadata.linkBlob(name, record);
    return record;
  }

  /** Opens an upload session (POST /blobs/uploads/). */
  async startUpload(name: string): Promise<UploadSession> {
    assertName(name);
    const uploadId = randomUUID();
    const session: UploadSession = {
      name,
      uploadId,
      offset: 0,
      version: 0,
      createdAt: this.#now(),
      storage: await this.#blobs.startUpload(uploadId),
    };
    await this.#metadata.createUpload(session);
    return session;
  }

  /** Single-request upload (POST ?digest= with the body): verified and committed, no session kept. */
  async uploadMonolithic(name: string, digest: string, body: ByteSource, length?: number): Promise<BlobRecord> {
    assertName(name);
    const parsed = parseDigest(digest);
    if (this.#blobs.commitWhole) {
      const whole = await this.#blobs.commitWhole(parsed, this.#limited(body, length), length);
      return this.#recordBlob(name, { digest, size: whole.size, location: whole.location });
    }
    const storage = await this.#blobs.startUpload(randomUUID());
    try {
      const appended = await this.#blobs.append(storage, 0, this.#limited(body, length), length);
      const location = await this.#blobs.commit(appended.state, parsed, appended.size);
      return await this.#recordBlob(name, { digest, size: appended.size, location });
    } catch (error) {
      await this.#blobs.abort(storage).catch(() => undefined);
      throw error;
    }
  }

  /** The session of an upload in progress; BLOB_UPLOAD_UNKNOWN when absent, expired or of another repository. */
  async getUpload(name: string, uploadId: string): Promise<UploadSession> {
    assertName(name);
    const session = await this.#metadata.getUpload(name, uploadId);
    if (!session || session.name !== name || this.#now() - session.createdAt > this.#uploadTtlMs) {
      throw blobUploadUnknown(name, uploadId);
    }
    return session;
  }

  /**
   * Appends a chunk (PATCH). With a Content-Range it must start at the session's offset (spec: chunks in order,
   * else 416); without one it is a streamed chunk appended at the current offset.
   */
  async appendUpload(name: string, uploadId: string, body: ByteSource, chunk: ChunkInfo): Promise<UploadSession> {
    const session = await this.getUpload(name, uploadId);
    return this.#append(session, body, chunk);
  }

  /**
   * Completes an upload (PUT ?digest=), with an optional last chunk in the body. The digest is verified by the
   * blob store before anything becomes visible; on mismatch the upload is discarded and DIGEST_INVALID thrown.
   */
  async completeUpload(name: string, uploadId: string, digest: string | undefined, body: ByteSource, chunk: ChunkInfo): Promise<BlobRecord> {
    let session = await this.getUpload(name, uploadId);
    assertReadableRange(session, chunk);
    if (digest === undefined) throw digestInvalid('the digest query parameter is required to complete an upload');
    const parsed = parseDigest(digest);
    const whole = this.#wholeBlobIn(session, chunk);
    if (whole) this.#checkChunk(session, chunk);
    else if (chunk.length !== 0) session = await this.#append(session, body, chunk);
    let committed: { location: string; size: number };
    try {
      committed = whole
        ? await whole(parsed, this.#limited(body, chunk.length), chunk.length)
        : { location: await this.#blobs.commit(session.storage, parsed, session.offset), size: session.offset };
    } catch (error) {
      if (isOciError(error, 'DIGEST_INVALID')) await this.#discard(session);
      throw error;
    }
    const record = await this.#recordBlob(name, { digest, size: committed.size, location: committed.location });
    await this.#metadata.deleteUpload(name, uploadId);
    return record;
  }

  /** Cancels an upload (DELETE on the upload URL). */
  async cancelUpload(name: string, uploadId: string): Promise<void> {
    await this.#discard(await this.getUpload(name, uploadId));
  }

  /**
   * The store's `commitWhole` when this closing request carries the whole blob (containerd's POST then PUT): the
   * blob goes straight to the store, with no session update in between. A Content-Range without a Content-Length
   * takes the append path, which checks the body's size against the range.
   */
  #wholeBlobIn(session: UploadSession, chunk: ChunkInfo): BlobStore['commitWhole'] {
    if (session.offset !== 0 || chunk.length === 0 || (chunk.range !== undefined && chunk.length === undefined)) return undefined;
    return this.#blobs.commitWhole?.bind(this.#blobs);
  }

  /** A chunk must start where the upload stands (spec: in order, else 416) and its Content-Length match its range. */
  #checkChunk(session: UploadSession, chunk: ChunkInfo): void {
    assertReadableRange(session, chunk);
    if (chunk.range) {
      const expected = chunk.range.end - chunk.range.start + 1;
      if (chunk.range.start !== session.offset || chunk.range.end < chunk.range.start) {
        throw rangeInvalid(positionOf(session), chunk.rawRange ?? `${chunk.range.start}-${chunk.range.end}`);
      }
      if (chunk.length !== undefined && chunk.length !== expected) {
        const message = `Content-Range ${chunk.rawRange} covers ${expected} bytes but Content-Length is ${chunk.length}`;
        throw new UploadRangeError(message, positionOf(session), { contentRange: chunk.rawRange, contentLength: chunk.length });
      }
    }
  }

  async #append(session: UploadSession, body: ByteSource, chunk: ChunkInfo): Promise<UploadSession> {
    this.#checkChunk(session, chunk);
    const appended = await this.#blobs.append(session.storage, session.offset, this.#limited(body, chunk.length), chunk.length);
    if (chunk.range && appended.size !== chunk.range.end + 1) {
      // The body was shorter than its Content-Range: keep the session as it was, the client resends from the offset.
      throw rangeInvalid(positionOf(session), `${chunk.rawRange} but ${appended.size - session.offset} bytes received`);
    }
    const next: UploadSession = { ...session, offset: appended.size, storage: appended.state, version: session.version + 1 };
    try {
      await this.#metadata.updateUpload(next);
    } catch (error) {
      throw await this.#withPosition(error, session);
    }
    return next;
  }

  /**
   * A lost compare-and-set (another PATCH of this upload won) is a 416 like an out-of-order chunk: it reports the
   * position the winner left, read again, so the client resumes from there.
   */
  async #withPosition(error: unknown, session: UploadSession): Promise<unknown> {
    if (!isOciError(error, 'RANGE_INVALID') || error instanceof UploadRangeError) return error;
    const current = await this.getUpload(session.name, session.uploadId).catch(() => undefined);
    return current ? new UploadRangeError(error.message, positionOf(current), error.detail, { cause: error }) : error;
  }

  /** Enforces the blob store's per-request limit, up front when the length is declared, else while streaming. */
  #limited(body: ByteSource, length: number | undefined): ByteSource {
    const max = this.#blobs.maxChunkLength;
    if (max === undefined) return body;
    const tooLarge = (size: number): never => {
      throw payloadTooLarge(
        `request body of ${size} bytes exceeds this registry's limit of ${max} bytes per request. ` +
          `Push large layers as chunked uploads (PATCH with Content-Range, at most ${max} bytes each, as advertised in OCI-Chunk-Max-Length), ` +
          'for example with `ocireg push`, or push through `ocireg proxy`.',
        { size, max },
      );
    };
    if (length !== undefined && length > max) tooLarge(length);
    return limitBytes(body, max, tooLarge);
  }

  async #discard(session: UploadSession): Promise<void> {
    await this.#blobs.abort(session.storage);
    await this.#metadata.deleteUpload(session.name, session.uploadId);
  }

  /** Records a verified blob globally (first record wins: a duplicate upload's bytes are dropped) and links it. */
  async #recordBlob(name: string, uploaded: BlobRecord): Promise<BlobRecord> {
    const record = await this.#metadata.putBlob(uploaded);
    if (record.location !== uploaded.location) await this.#blobs.delete(uploaded.location);
    await this.#metadata.linkBlob(name, record);
    return record;
  }

  // ---- manifests -----------------------------------------------------------------------------------------------

  /** A manifest by tag or digest; MANIFEST_UNKNOWN when absent. */
  async getManifest(name: string, reference: string): Promise<StoredManifest> {
    assertName(name);
    const manifest = await byReference(reference, (digest) => this.#metadata.getManifest(name, digest), (tag) => this.#metadata.resolveTag(name, tag));
    if (!manifest) throw manifestUnknown(name, reference);
    return manifest;
  }

  /**
   * Stores a manifest under a tag or its digest. Validates JSON and media type, requires every referenced blob
   * and child manifest to be in the repository, and verifies a digest reference against the content.
   * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#pushing-manifests
   */
  async putManifest(name: string, reference: string, body: ByteSource, contentType: string | undefined, length?: number): Promise<ManifestPutResult> {
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
    const [missing] = await this.#metadata.missingReferences(name, { blobs: parsed.blobs, manifests: parsed.manifests });
    if (missing !== undefined) throw manifestBlobUnknown(missing);
    const stored: StoredManifest = { digest, mediaType: parsed.mediaType, content };
    if (parsed.subject !== undefined) stored.subject = parsed.subject;
    if (parsed.artifactType !== undefined) stored.artifactType = parsed.artifactType;
    if (parsed.annotations !== undefined) stored.annotations = parsed.annotations;
    await this.#metadata.putManifest(name, stored, tags);
    return parsed.subject !== undefined ? { digest, subject: parsed.subject } : { digest };
  }

  /** By digest: deletes the manifest and its tags. By tag: deletes the tag only. */
  async deleteManifest(name: string, reference: string): Promise<void> {
    assertName(name);
    const deleted = await byReference(reference, (digest) => this.#metadata.deleteManifest(name, digest), (tag) => this.#metadata.deleteTag(name, tag));
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

/**
 * Reads a manifest body, refusing one over {@link MAX_MANIFEST_BYTES}: up front when its length is declared, else
 * as soon as the stream passes the limit (never buffering more).
 */
async function readManifestBody(body: ByteSource, length: number | undefined): Promise<Uint8Array> {
  const tooLarge = (size: number): never => {
    throw payloadTooLarge(`manifest of ${size} bytes exceeds the limit of ${MAX_MANIFEST_BYTES} bytes`, { size, max: MAX_MANIFEST_BYTES });
  };
  if (length !== undefined && length > MAX_MANIFEST_BYTES) tooLarge(length);
  return readAll(limitBytes(body, MAX_MANIFEST_BYTES, tooLarge));
}

function positionOf(session: UploadSession): UploadPosition {
  return { name: session.name, uploadId: session.uploadId, offset: session.offset };
}

/** A Content-Range the HTTP layer could not parse is refused with where the upload stands, like an out-of-order one. */
function assertReadableRange(session: UploadSession, chunk: ChunkInfo): void {
  if (chunk.rawRange !== undefined && chunk.range === undefined) {
    throw new UploadRangeError('malformed Content-Range', positionOf(session), { contentRange: chunk.rawRange });
  }
}
