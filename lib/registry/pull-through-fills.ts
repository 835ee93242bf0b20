import { createHash } from 'node:crypto';
import type { ClientFeed } from './client-feed.ts';
import { parseDigest, type ParsedDigest } from './digest.ts';
import { blobUnknown, digestInvalid, errorMessage, isOciError } from './errors.ts';
import type { CacheLinks } from './cache-links.ts';
import type { BlobStore, MetadataStore, Upstream } from './ports.ts';
import { QuotaExceededError } from './quota.ts';
import type { BlobRecord, ByteSource } from './types.ts';

export interface BlobFillsOptions {
  blobs: BlobStore;
  metadata: MetadataStore;
  /** Receives a line when a blob is refused (a streamed client sees only its connection break). */
  log?: ((entry: Record<string, unknown>) => void) | undefined;
  /** Links into the cached repository, within its quota: a blob over it is served but not stored. */
  links: CacheLinks;
  now: () => number;
}

/** A blob the quota kept out of storage: its client got the upstream's bytes (verified), nothing was stored. */
export interface NotKept {
  digest: string;
  size: number;
  location?: undefined;
  refused: QuotaExceededError;
}

/** One blob being copied from an upstream: its declared size, then its stored record (or why it was not stored). */
export interface Fill {
  size: Promise<number | undefined>;
  record: Promise<BlobRecord | NotKept>;
}

/**
 * The blob copies of a pull-through cache (pull-through-cache.ts) in this process: upstream → store, teed to the
 * client that missed, verified by the store before anything is recorded. Concurrent misses of one blob share one
 * fill, found by {@link running}.
 */
export class BlobFills {
  readonly #options: BlobFillsOptions;
  /** Fills in progress, by digest: concurrent misses of one blob in this process share one upstream copy. */
  readonly #fills = new Map<string, Fill>();
  /** Numbers this process's cache uploads, so two never share an upload id. */
  #uploads = 0;

  constructor(options: BlobFillsOptions) {
    this.#options = options;
  }

  /** The fill of `digest` in progress in this process, if any. */
  running(digest: string): Fill | undefined {
    return this.#fills.get(digest);
  }

  /**
   * Registers and starts the fill of `digest` (synchronously, so a concurrent miss finds it). `size` settles when
   * the upstream answered (its Content-Length; BLOB_UNKNOWN when it has no such blob), `record` once the blob is
   * stored, verified and linked into `name`, or {@link NotKept} when `name`'s quota has no room for it.
   */
  start(upstream: Upstream, upstreamName: string, name: string, digest: string, feed: ClientFeed): Fill {
    const opening = upstream.openBlob(upstreamName, digest);
    const record = opening
      .then((opened) => {
        if (!opened) throw blobUnknown(name, digest);
        return this.#admitted(name, parseDigest(digest), opened, feed);
      })
      .catch((error: unknown) => {
        feed.end(error);
        // A streamed client only sees its connection break: say why here.
        if (!isOciError(error, 'BLOB_UNKNOWN')) {
          this.#options.log?.({ level: 'warn', msg: 'upstream blob not cached', name, digest, code: isOciError(error) ? error.code : 'UNKNOWN', cause: errorMessage(error) });
        }
        throw error;
      })
      .finally(() => this.#fills.delete(digest));
    // Whoever awaits the fill sees its failure; the client of a streamed fill sees it through the feed.
    record.catch(() => undefined);
    const fill: Fill = {
      size: opening.then((opened) => {
        if (!opened) throw blobUnknown(name, digest);
        return opened.size;
      }),
      record,
    };
    fill.size.catch(() => undefined);
    this.#fills.set(digest, fill);
    return fill;
  }

  /**
   * The copy within `name`'s quota (quota.ts), decided from the upstream's Content-Length before a byte is stored.
   * Over the quota the pull still works: the client gets the upstream's bytes straight through (verified all the
   * same, {@link #passThrough}), nothing is stored, and the log says so; the next pull asks the upstream again.
   * Harbor counts proxy-cache projects against their quota but fails such pulls; a cache that breaks `docker pull`
   * to save storage breaks deploys. Without a declared size the check happens at the link, like an upload's.
   */
  async #admitted(name: string, digest: ParsedDigest, opened: { size: number | undefined; body: ByteSource }, feed: ClientFeed): Promise<BlobRecord | NotKept> {
    const { quota } = this.#options.links;
    if (!quota || opened.size === undefined) return this.#copy(name, digest, opened, feed);
    const size = opened.size;
    let started = false;
    try {
      return await quota.admit(name, digest.digest, size, () => {
        started = true;
        return this.#copy(name, digest, opened, feed);
      });
    } catch (error) {
      if (started || !(error instanceof QuotaExceededError)) throw error;
      this.#options.links.overQuota(name, { digest: digest.digest, size }, error, 'cache fill over quota: served from the upstream, not stored');
      if (feed.gone) await opened.body[Symbol.asyncIterator]().return?.();
      else await this.#passThrough(name, digest, { size, body: opened.body }, feed);
      return { digest: digest.digest, size, refused: error };
    }
  }

  /**
   * Hands the upstream's bytes to the client without storing them, checking size and digest as the store would:
   * the last chunk is held back until the whole body matched, so a client never holds all the bytes of a bad blob.
   */
  async #passThrough(name: string, digest: ParsedDigest, opened: { size: number; body: ByteSource }, feed: ClientFeed): Promise<void> {
    const hash = createHash(digest.algorithm);
    const upstream = heldBack(name, digest, opened, feed);
    for await (const chunk of upstream.chunks) {
      hash.update(chunk);
      // The client went away: nobody needs the rest (the loop's exit closes the upstream's answer).
      if (feed.gone) return;
    }
    const received = upstream.received();
    if (received !== opened.size) throw digestInvalid('the upstream sent fewer bytes than its Content-Length', { name, digest: digest.digest, size: opened.size, received });
    if (hash.digest('hex') !== digest.hex) throw digestInvalid('the upstream sent bytes that do not match the digest', { name, digest: digest.digest });
    await upstream.release();
  }

  /**
   * Copies one blob upstream → store while handing the same chunks to the client (a tee through `feed`), verified
   * by the store before anything is recorded. The client's last chunk is held back until the blob is stored: a
   * client never holds all the bytes of a blob that was refused.
   *
   * One miss, streamed (the race "cache fill vs pull"):
   *
   *   client A (GET, miss)        fill (upstream → store, tee)               client B (GET, same blob)   storage
   *   200, Content-Length = N     openBlob: the upstream's head                -                           -
   *   chunk 1 … k-1        <───   chunk i: to A (one behind), to the store     getBlob: no record          upload file
   *   .                           .                                            awaits this fill            .
   *   (waits for chunk k)         upstream ends; store commit: digest check,   .                           bytes at their
   *                               rename                                       .                           location
   *   .                           putBlob (first wins), linkBlob               .                           record + link
   *   chunk k, end         <───   feed.end()                                   reads the stored blob       -
   *
   * - Digest mismatch, more bytes than the Content-Length, or the upstream breaks off: the store's commit throws
   *   (DIGEST_INVALID) or the copy fails, the upload is discarded, no record is written; A's body fails before its
   *   last chunk (the adapter breaks the connection) and B gets the error.
   * - A goes away mid-copy: the feed drops it and the copy carries on for the store alone, so the blob is stored
   *   (verified) as if A had stayed, and B, and A's retry, get it from storage.
   * - In another process (or Lambda), B copies too: both commit the same verified bytes, each at a location of its
   *   own, and `putBlob` keeps the first record, which both serve; the other copy is unreferenced and garbage
   *   collection deletes it.
   * Until `putBlob`, no reader can see the blob.
   */
  async #copy(name: string, digest: ParsedDigest, opened: { size: number | undefined; body: ByteSource }, feed: ClientFeed): Promise<BlobRecord> {
    const { metadata } = this.#options;
    const upstream = heldBack(name, digest, opened, feed);
    let stored: { location: string; size: number };
    try {
      stored = await this.#store(digest, upstream.chunks, opened.size);
    } catch (error) {
      // A store that failed before reading the body leaves the upstream's answer open: close it.
      await opened.body[Symbol.asyncIterator]().return?.();
      throw error;
    }
    const { location, size } = stored;
    if (opened.size !== undefined && size !== opened.size) {
      throw digestInvalid('the upstream sent fewer bytes than its Content-Length', { name, digest: digest.digest, size: opened.size, received: size });
    }
    const put = await metadata.putBlob({ digest: digest.digest, size, location });
    // Known size: this runs inside the quota's admission (#admitted), so only the link is left. Unknown: admitted at
    // the link, like an upload; over the quota the stored copy is served unlinked.
    const record = opened.size === undefined ? await this.#options.links.link(name, put) : await this.#linked(name, put);
    await upstream.release();
    return record;
  }

  /** Writes `body` as the blob `digest`, verified by the store; a refused copy leaves nothing behind. */
  async #store(digest: ParsedDigest, body: ByteSource, declaredLength: number | undefined): Promise<{ location: string; size: number }> {
    const { blobs } = this.#options;
    if (blobs.commitWhole) return blobs.commitWhole(digest, body, declaredLength);
    const state = await blobs.startUpload(`cache-${digest.hex.slice(0, 16)}-${this.#options.now()}-${++this.#uploads}`);
    try {
      const appended = await blobs.append(state, 0, body, declaredLength);
      return { location: await blobs.commit(appended.state, digest, appended.size), size: appended.size };
    } catch (error) {
      await blobs.abort(state).catch(() => undefined);
      throw error;
    }
  }

  async #linked(name: string, record: BlobRecord): Promise<BlobRecord> {
    await this.#options.metadata.linkBlob(name, record);
    return record;
  }
}

/**
 * The upstream's chunks as they arrive, each handed to the client one behind: the last one stays held until the
 * caller has verified the whole blob and calls `release` (then the client's body ends). A body that fails before
 * that breaks the client's connection short of its last chunk, so a client never holds every byte of a refused blob.
 * More bytes than the declared Content-Length fail at once (DIGEST_INVALID).
 */
function heldBack(
  name: string,
  digest: ParsedDigest,
  opened: { size: number | undefined; body: ByteSource },
  feed: ClientFeed,
): { chunks: ByteSource; received(): number; release(): Promise<void> } {
  let held: Uint8Array | undefined;
  let seen = 0;
  async function* chunks(): ByteSource {
    for await (const chunk of opened.body) {
      // An empty chunk held back would hold nothing back: a stream may end with one (chunk boundaries follow the
      // sockets), and the client would then have every byte of a blob that goes on to be refused.
      if (chunk.byteLength === 0) continue;
      seen += chunk.byteLength;
      if (opened.size !== undefined && seen > opened.size) {
        throw digestInvalid('the upstream sent more bytes than its Content-Length', { name, digest: digest.digest, size: opened.size });
      }
      if (held) await feed.put(held);
      held = chunk;
      yield chunk;
    }
  }
  return {
    chunks: chunks(),
    received: () => seen,
    release: async () => {
      if (held) await feed.put(held);
      feed.end();
    },
  };
}
