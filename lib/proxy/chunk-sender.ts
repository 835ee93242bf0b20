import { NetworkError, type HttpResult } from '../client/http-transport.ts';
import { uploadRange } from '../http/ranges.ts';
import { UpstreamAnswer } from './client-answers.ts';
import type { Exchange } from './exchange.ts';
import type { TrackedUpload, UploadTracker } from './upload-tracker.ts';
import type { UpstreamAddress } from './upstream-address.ts';
import { isTransientStatus, type UpstreamCaller } from './upstream-caller.ts';

/**
 * Sends the chunks of a reshaped upload: each a PATCH with `Content-Range` from the upload's offset, repeated
 * until the upstream holds the whole chunk, then the upload's offset is the chunk's end.
 *
 * A retry must survive the answer being lost after the upstream stored the bytes, so before sending again the
 * proxy asks where the upload stands, and sends only what is missing, from the chunk it still holds:
 *
 * ```
 * proxy                                        upstream
 * PATCH 8388608-12582911 ───────────────────▶  stores the chunk: offset 12582912
 *            ╳ the connection drops before the 202 arrives (or a gateway answers 5xx)
 * (backoff)
 * GET <location> ───────────────────────────▶  204 Range: 0-12582911
 *   offset ≥ the chunk's end: it arrived; a 202 is made from the GET's answer and the next chunk goes
 *   offset inside the chunk: PATCH <offset>-12582911, the part the upstream lacks
 *   offset before the chunk: those bytes are gone from the proxy too → 502, the client pushes again
 * ```
 *
 * Sending the same bytes again without asking would be refused with 416 (out of order): a 416 therefore counts
 * as transient here, it sends the proxy to ask. A 401 stores nothing; the client's token expired during the
 * upload, so its token request is replayed and the same bytes go again:
 *
 * ```
 * PATCH chunk n   (Bearer token-1) ─────────▶  401
 * GET <realm>?…   (the client's Basic credentials, replayed) ─▶  200 {"token":"token-2"}
 * PATCH chunk n   (Bearer token-2) ─────────▶  202; the later chunks and the closing PUT carry token-2
 * ```
 */
export class ChunkSender {
  readonly #caller: UpstreamCaller;
  readonly #tracker: UploadTracker;
  readonly #address: UpstreamAddress;

  constructor(caller: UpstreamCaller, tracker: UploadTracker, address: UpstreamAddress) {
    this.#caller = caller;
    this.#tracker = tracker;
    this.#address = address;
  }

  /** Sends one chunk that starts at the upload's (known) offset; returns the answer that completed it. */
  async send(exchange: Exchange, upload: TrackedUpload, chunk: Buffer): Promise<HttpResult> {
    const chunkStart = offsetOf(upload);
    const chunkEnd = chunkStart + chunk.byteLength;
    let failures = 0;
    let replayed = false;
    for (;;) {
      const start = offsetOf(upload);
      const data = chunk.subarray(start - chunkStart);
      const end = start + data.byteLength - 1;
      let result: HttpResult | undefined;
      let failure: unknown;
      try {
        result = await this.#caller.call(exchange, 'PATCH', this.#address.resolve(upload.location), {
          'content-type': 'application/octet-stream',
          'content-range': `${start}-${end}`,
          'content-length': String(data.byteLength),
        }, data);
      } catch (error) {
        if (!(error instanceof NetworkError)) throw error;
        failure = error;
      }
      if (result?.status === 202) {
        this.#tracker.accepted(upload, result.headers, end + 1);
        const offset = offsetOf(upload);
        if (offset >= chunkEnd) return result;
        if (offset < chunkStart) throw new UpstreamAnswer(result);
        replayed = false;
        continue; // the upstream kept less than it was sent: send the rest
      }
      if (result?.status === 401 && !replayed && (await this.#caller.refreshToken(exchange))) {
        replayed = true;
        continue;
      }
      const transient = result === undefined || isTransientStatus(result.status) || result.status === 416;
      if (!transient || ++failures >= this.#caller.retry.attempts) {
        if (result) throw new UpstreamAnswer(result);
        throw failure;
      }
      await this.#caller.backoff(failures - 1);
      await this.resync(exchange, upload);
      const offset = offsetOf(upload);
      if (offset >= chunkEnd) return { status: 202, headers: { location: upload.location, range: uploadRange(offset) }, body: Buffer.alloc(0), url: this.#address.resolve(upload.location) };
      if (offset < chunkStart) throw new Error(`upstream lost bytes of the upload (it holds ${offset}, the proxy no longer holds bytes before ${chunkStart})`);
    }
  }

  /** Asks the upstream where an upload stands (GET: its Range and Location). */
  async resync(exchange: Exchange, upload: TrackedUpload): Promise<void> {
    const result = await this.#caller.retried(exchange, 'GET', this.#address.resolve(upload.location), {});
    if (result.status !== 204 && result.status !== 200) throw new UpstreamAnswer(result);
    this.#tracker.accepted(upload, result.headers);
  }
}

function offsetOf(upload: TrackedUpload): number {
  if (upload.offset === undefined) throw new Error(`upstream answered an upload Range the proxy cannot read (upload ${upload.location})`);
  return upload.offset;
}
