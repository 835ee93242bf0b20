import type { HttpResult } from '../client/http-transport.ts';
import { parseContentRange } from '../http/ranges.ts';
import type { ChunkSender } from './chunk-sender.ts';
import { chunksOf } from './chunker.ts';
import { UpstreamAnswer, type ClientAnswers } from './client-answers.ts';
import type { Exchange } from './exchange.ts';
import { uploadPathKind, type TrackedUpload, type UploadTracker } from './upload-tracker.ts';
import type { UpstreamAddress } from './upstream-address.ts';
import type { UpstreamCaller } from './upstream-caller.ts';

/**
 * Uploads whose body may exceed the upstream's limit, reshaped into requests it accepts, holding at most one
 * chunk of the body at a time. The client gets the answer it would have had for its one request:
 *
 * ```
 * client                                   proxy                                       upstream
 * POST /uploads/                  ──────▶  forwarded; the tracker learns Location and OCI-Chunk-Max-Length
 * PATCH <loc> (whole layer, streamed) ──▶  PATCH <loc> Content-Range 0-4194303            ──▶ 202
 *                                          PATCH <loc> Content-Range 4194304-…            ──▶ 202 …
 *                                  ◀────── 202 Range 0-<last> (the last upstream answer)
 * PUT <loc>?digest= (empty)       ──────▶  forwarded                                      ──▶ 201
 *
 * PUT <loc>?digest= (whole layer)  ─────▶  PATCH … PATCH …, then PUT <loc>?digest= (empty) ──▶ 201
 * POST /uploads/?digest= (whole)   ─────▶  POST, PATCH …, PUT ?digest=                     ──▶ 201
 * ```
 */
export class ReshapedUploads {
  readonly #caller: UpstreamCaller;
  readonly #sender: ChunkSender;
  readonly #tracker: UploadTracker;
  readonly #address: UpstreamAddress;
  readonly #answers: ClientAnswers;

  constructor(caller: UpstreamCaller, sender: ChunkSender, tracker: UploadTracker, address: UpstreamAddress, answers: ClientAnswers) {
    this.#caller = caller;
    this.#sender = sender;
    this.#tracker = tracker;
    this.#address = address;
    this.#answers = answers;
  }

  /**
   * How to reshape a request, or undefined to forward it as it is: only upload requests whose body is streamed
   * (no Content-Length) or longer than the upload's limit.
   */
  route(exchange: Exchange): (() => Promise<void>) | undefined {
    const { req, url } = exchange;
    const length = declaredLength(exchange);
    const kind = uploadPathKind(url.pathname);
    const known = kind === 'session' ? this.#tracker.get(url.pathname) : undefined;
    const limit = this.#tracker.limitFor(known);
    const streamed = length === undefined && req.headers['transfer-encoding'] !== undefined;
    if (!streamed && !(length !== undefined && length > limit)) return undefined;
    const digest = url.searchParams.has('digest');
    if (kind === 'session' && req.method === 'PATCH') return () => this.#patch(exchange, known ?? this.#tracker.adopt(url, limit), limit);
    if (kind === 'session' && req.method === 'PUT' && digest) return () => this.#put(exchange, known ?? this.#tracker.adopt(url, limit), limit);
    if (kind === 'start' && req.method === 'POST' && digest) return () => this.#post(exchange);
    return undefined;
  }

  /** A PATCH whose body may exceed the limit: chunks upstream; the client gets the last chunk's 202. */
  async #patch(exchange: Exchange, upload: TrackedUpload, limit: number): Promise<void> {
    const contentRange = exchange.req.headers['content-range'];
    if (contentRange !== undefined) {
      try {
        upload.offset = parseContentRange(contentRange).start;
      } catch {
        // Not a range: the upload's own offset stands, and the upstream judges the bytes.
      }
    }
    const last = await this.#sendChunks(exchange, upload, limit);
    if (last) return this.#answers.relay(exchange, last);
    // An empty body: an empty PATCH, for the upstream's own answer.
    const result = await this.#caller.call(exchange, 'PATCH', this.#address.resolve(upload.location), { 'content-length': '0' });
    this.#tracker.observe('PATCH', exchange.url.pathname, result.status, result.headers);
    this.#answers.relay(exchange, result);
  }

  /** A monolithic `PUT ?digest=` with the whole blob (containerd, buildkit, oras): PATCHes, then an empty PUT. */
  async #put(exchange: Exchange, upload: TrackedUpload, limit: number): Promise<void> {
    await this.#sendChunks(exchange, upload, limit);
    await this.#complete(exchange, upload);
  }

  /** `POST /uploads/?digest=` with the whole blob: a new upload, PATCHes, then an empty PUT. */
  async #post(exchange: Exchange): Promise<void> {
    const { url } = exchange;
    const query = new URLSearchParams(url.searchParams);
    query.delete('digest');
    const started = await this.#caller.call(exchange, 'POST', this.#address.resolve(`${url.pathname}${query.size > 0 ? `?${query}` : ''}`), { 'content-length': '0' });
    const upload = this.#tracker.observe('POST', url.pathname, started.status, started.headers);
    if (!upload) throw new UpstreamAnswer(started);
    await this.#sendChunks(exchange, upload, upload.maxChunk);
    await this.#complete(exchange, upload);
  }

  /** The closing empty `PUT <location>?digest=`, with the client's query (its digest) on the upload's Location. */
  async #complete(exchange: Exchange, upload: TrackedUpload): Promise<void> {
    const target = this.#address.resolve(upload.location);
    for (const [name, value] of exchange.url.searchParams) target.searchParams.set(name, value);
    const path = new URL(upload.location, 'http://proxy').pathname;
    const result = await this.#caller.retried(exchange, 'PUT', target, { 'content-length': '0' });
    this.#tracker.observe('PUT', path, result.status, result.headers);
    this.#answers.relay(exchange, result);
  }

  /** Sends the client's body in chunks of at most `limit` bytes; the last chunk's answer, none for an empty body. */
  async #sendChunks(exchange: Exchange, upload: TrackedUpload, limit: number): Promise<HttpResult | undefined> {
    if (upload.offset === undefined) await this.#sender.resync(exchange, upload);
    let last: HttpResult | undefined;
    let chunks = 0;
    let bytes = 0;
    for await (const chunk of chunksOf(exchange.req, limit, declaredLength(exchange))) {
      last = await this.#sender.send(exchange, upload, chunk);
      chunks++;
      bytes += chunk.byteLength;
    }
    exchange.log.chunks = chunks;
    exchange.log.bytes = bytes;
    return last;
  }
}

function declaredLength(exchange: Exchange): number | undefined {
  const header = exchange.req.headers['content-length'];
  return header === undefined ? undefined : Number(header);
}
