import type { IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { HttpTransport } from '../client/http-transport.ts';
import type { ClientAnswers } from './client-answers.ts';
import type { Exchange } from './exchange.ts';
import type { UploadTracker } from './upload-tracker.ts';
import { forwardableHeaders, type UpstreamAddress } from './upstream-address.ts';

/**
 * Plain forwarding: the client's request goes upstream as it is, its body streamed as it arrives, and the answer
 * comes back streamed, its headers rewritten, while the tracker learns from it. Nothing is buffered, so pulls and
 * uploads within the limit cost the proxy no memory.
 */
export class Forwarder {
  readonly #transport: HttpTransport;
  readonly #address: UpstreamAddress;
  readonly #answers: ClientAnswers;
  readonly #tracker: UploadTracker;

  constructor(transport: HttpTransport, address: UpstreamAddress, answers: ClientAnswers, tracker: UploadTracker) {
    this.#transport = transport;
    this.#address = address;
    this.#answers = answers;
    this.#tracker = tracker;
  }

  /** Resolves when the client's answer is complete or cut off; rejects, before any answer, when the upstream is unreachable. */
  async forward(exchange: Exchange): Promise<void> {
    const { req, res, url } = exchange;
    const method = req.method ?? 'GET';
    // The client going away mid-request ends the upstream request too, so its connection is not left half-used.
    const abort = new AbortController();
    req.on('error', () => abort.abort());
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    let upstream: IncomingMessage;
    try {
      upstream = await this.#transport.open({
        method,
        url: this.#address.resolve(`${url.pathname}${url.search}`),
        headers: forwardableHeaders(req.headers),
        body: () => req,
        signal: abort.signal,
      });
    } catch (error) {
      if (!abort.signal.aborted) throw error;
      res.destroy();
      return;
    }
    const status = upstream.statusCode ?? 502;
    this.#tracker.observe(method, url.pathname, status, upstream.headers);
    res.writeHead(status, this.#answers.headers(upstream.headers, exchange));
    // A failure on either side destroys both: the client sees a cut-off answer, never a wrong one.
    await pipeline(upstream, res).catch(() => undefined);
  }
}
