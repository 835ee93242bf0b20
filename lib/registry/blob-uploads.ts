import { randomUUID } from 'node:crypto';
import { limitBytes } from './bytes.ts';
import { parseDigest } from './digest.ts';
import { blobUploadInvalid, blobUploadUnknown, digestInvalid, isOciError, payloadTooLarge, rangeInvalid, UploadRangeError, type UploadPosition } from './errors.ts';
import { assertName } from './names.ts';
import type { BlobStore, MetadataStore } from './ports.ts';
import { QuotaExceededError, type QuotaGuard } from './quota.ts';
import type { BlobRecord, ByteRange, ByteSource, UploadSession } from './types.ts';

/** Where a chunk claims to go: the parsed Content-Range and Content-Length of a PATCH or final PUT. */
export interface ChunkInfo {
  /** Parsed `Content-Range` (inclusive); absent for a streamed PATCH, and when `rawRange` could not be parsed. */
  range?: ByteRange;
  /** Raw `Content-Range`, for error details; set without `range` when malformed (416, with the upload's position). */
  rawRange?: string;
  /** `Content-Length`, when the client sent one. */
  length?: number;
}

export interface BlobUploadsOptions {
  blobs: BlobStore;
  metadata: MetadataStore;
  /** Uploads idle longer than this are unknown (and their storage may be reclaimed). Default 24 h. */
  uploadTtlMs?: number;
  /** Repository quotas, checked when a blob is about to be committed into a repository. */
  quota?: QuotaGuard;
  now?: () => number;
}

const DEFAULT_UPLOAD_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Blob uploads over the storage ports: sessions, chunks in order, verification on completion.
 *
 * ```
 * POST ──▶ session (offset 0) ──PATCH <offset>-<end>──▶ session (offset end+1) ──PUT ?digest=──▶ verified blob, linked
 *             │                      │ a chunk that does not start at the offset, or a lost compare-and-set:
 *             │                      └─▶ 416 (UploadRangeError with the position to resume from); session unchanged
 *             ├── DELETE, or a digest mismatch at PUT ──▶ discarded (bytes and session)
 *             └── idle past uploadTtlMs ──▶ unknown (404 BLOB_UPLOAD_UNKNOWN); its storage may be reclaimed
 * ```
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#pushing-blobs
 */
export class BlobUploads {
  readonly #blobs: BlobStore;
  readonly #metadata: MetadataStore;
  readonly #uploadTtlMs: number;
  readonly #quota: QuotaGuard | undefined;
  readonly #now: () => number;

  constructor(options: BlobUploadsOptions) {
    this.#blobs = options.blobs;
    this.#metadata = options.metadata;
    this.#uploadTtlMs = options.uploadTtlMs ?? DEFAULT_UPLOAD_TTL_MS;
    this.#quota = options.quota;
    this.#now = options.now ?? Date.now;
  }

  /** Opens an upload session (POST /blobs/uploads/). */
  async start(name: string): Promise<UploadSession> {
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
  async monolithic(name: string, digest: string, body: ByteSource, length?: number): Promise<BlobRecord> {
    assertName(name);
    const parsed = parseDigest(digest);
    if (this.#blobs.commitWhole) {
      const commitWhole = this.#blobs.commitWhole.bind(this.#blobs);
      const commit = () => commitWhole(parsed, this.#limited(body, length), length);
      return this.#commitAdmitted(name, digest, length, commit, async () => undefined);
    }
    const storage = await this.#blobs.startUpload(randomUUID());
    try {
      const appended = await this.#blobs.append(storage, 0, this.#limited(body, length), length);
      const commit = async () => ({ location: await this.#blobs.commit(appended.state, parsed, appended.size), size: appended.size });
      return await this.#commitAdmitted(name, digest, appended.size, commit, async () => undefined);
    } catch (error) {
      await this.#blobs.abort(storage).catch(() => undefined);
      throw error;
    }
  }

  /** The session of an upload in progress; BLOB_UPLOAD_UNKNOWN when absent, expired or of another repository. */
  async get(name: string, uploadId: string): Promise<UploadSession> {
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
  async append(name: string, uploadId: string, body: ByteSource, chunk: ChunkInfo): Promise<UploadSession> {
    const session = await this.get(name, uploadId);
    return this.#append(session, body, chunk);
  }

  /**
   * Completes an upload (PUT ?digest=), with an optional last chunk in the body. The digest is verified by the
   * blob store before anything becomes visible; on mismatch the upload is discarded and DIGEST_INVALID thrown.
   */
  async complete(name: string, uploadId: string, digest: string | undefined, body: ByteSource, chunk: ChunkInfo): Promise<BlobRecord> {
    let session = await this.get(name, uploadId);
    assertReadableRange(session, chunk);
    if (digest === undefined) throw digestInvalid('the digest query parameter is required to complete an upload');
    const parsed = parseDigest(digest);
    const whole = this.#wholeBlobIn(session, chunk);
    if (whole) this.#checkChunk(session, chunk);
    else if (chunk.length !== 0) session = await this.#append(session, body, chunk);
    const commit = async (): Promise<{ location: string; size: number }> => {
      try {
        return whole
          ? await whole(parsed, this.#limited(body, chunk.length), chunk.length)
          : { location: await this.#blobs.commit(session.storage, parsed, session.offset), size: session.offset };
      } catch (error) {
        if (isOciError(error, 'DIGEST_INVALID')) await this.#discard(session);
        throw error;
      }
    };
    const record = await this.#commitAdmitted(name, digest, whole ? chunk.length : session.offset, commit, () => this.#discard(session));
    await this.#metadata.deleteUpload(name, uploadId);
    return record;
  }

  /** Cancels an upload (DELETE on the upload URL). */
  async cancel(name: string, uploadId: string): Promise<void> {
    await this.#discard(await this.get(name, uploadId));
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
    const current = await this.get(session.name, session.uploadId).catch(() => undefined);
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

  /**
   * Commits a blob (`commit`) and records it in repository `name`, within the repository's quota (quota.ts). With
   * the size known beforehand, a refused blob is never committed (`discard` drops the upload); a blob streamed in
   * whole without a Content-Length is sized by its commit, then checked, and its bytes deleted on refusal before any
   * record names them.
   */
  async #commitAdmitted(name: string, digest: string, size: number | undefined, commit: () => Promise<{ location: string; size: number }>, discard: () => Promise<unknown>): Promise<BlobRecord> {
    const record = (committed: { location: string; size: number }) => this.#recordBlob(name, { digest, size: committed.size, location: committed.location });
    const quota = this.#quota;
    if (!quota) return record(await commit());
    try {
      if (size !== undefined) return await quota.admit(name, digest, size, async () => record(await commit()));
      const committed = await commit();
      try {
        return await quota.admit(name, digest, committed.size, () => record(committed));
      } catch (error) {
        // Refused before any record named these bytes: nobody else can be reading them.
        if (error instanceof QuotaExceededError) await this.#blobs.delete(committed.location).catch(() => undefined);
        throw error;
      }
    } catch (error) {
      if (error instanceof QuotaExceededError) await discard().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Records a verified blob globally (first record wins: a duplicate upload's bytes are dropped) and links it. The
   * link fails only if garbage collection doomed the record between the two writes, which its grace period and
   * clock tolerance rule out unless this process stalled longer than both: the client uploads again.
   */
  async #recordBlob(name: string, uploaded: BlobRecord): Promise<BlobRecord> {
    const record = await this.#metadata.putBlob(uploaded);
    if (record.location !== uploaded.location) await this.#blobs.delete(uploaded.location);
    if (!(await this.#metadata.linkBlob(name, record))) {
      throw blobUploadInvalid('the blob was garbage-collected while this upload completed; upload it again', { digest: record.digest });
    }
    return record;
  }
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
