import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { DEFAULT_CHUNK_SIZE } from '../client/blob-uploader.ts';
import { HttpTransport } from '../client/http-transport.ts';
import { DEFAULT_RETRY, type RetryPolicy } from '../client/retry.ts';
import { listen } from '../server/listen.ts';
import { ChunkSender } from './chunk-sender.ts';
import { ClientAnswers } from './client-answers.ts';
import { exchangeOf, type Exchange } from './exchange.ts';
import { Forwarder } from './forwarder.ts';
import { ReshapedUploads } from './reshaped-uploads.ts';
import { TokenReplay } from './token-replay.ts';
import { UploadTracker } from './upload-tracker.ts';
import { UpstreamAddress } from './upstream-address.ts';
import { UpstreamCaller } from './upstream-caller.ts';

export interface PushProxyOptions {
  /** The registry to forward to, e.g. `https://abc.execute-api.eu-west-1.amazonaws.com` or `http://127.0.0.1:5000`. */
  upstream: string;
  /** Chunk size for uploads whose POST answer advertised no `OCI-Chunk-Max-Length` (default 4 MiB). */
  defaultChunkSize?: number;
  /** Retries of chunks and upload steps after transient failures (default: the push tool's, 6 attempts). */
  retry?: RetryPolicy;
  /** One entry per client request (default: none). */
  log?: (entry: Record<string, unknown>) => void;
}

const DEFAULTS: Required<Omit<PushProxyOptions, 'upstream'>> = { defaultChunkSize: DEFAULT_CHUNK_SIZE, retry: DEFAULT_RETRY, log: () => undefined };

/**
 * `ocireg proxy`: a local registry address for unmodified clients (docker, containerd, skopeo, crane, oras) in
 * front of a registry that refuses request bodies over a few MiB (API Gateway + Lambda).
 *
 * Every request is forwarded as it is, streamed both ways, with `Location` and token `realm` pointed at the proxy
 * ({@link Forwarder}, {@link ClientAnswers}); the answers that pass teach the {@link UploadTracker} where each
 * upload stands. Only uploads whose body may exceed the upstream's limit are reshaped into chunks
 * ({@link ReshapedUploads}), sent, retried and resumed by the {@link ChunkSender}; a token that expires during a
 * long upload is renewed by replaying the client's own token request ({@link TokenReplay}). All of it goes
 * through one HTTP client, keep-alive connections that stream bodies both ways (`HttpTransport`).
 */
export class PushProxy {
  readonly upstream: UpstreamAddress;
  readonly #transport = new HttpTransport({ maxSockets: 64 });
  readonly #answers: ClientAnswers;
  readonly #tokens: TokenReplay;
  readonly #forwarder: Forwarder;
  readonly #uploads: ReshapedUploads;
  readonly #log: (entry: Record<string, unknown>) => void;

  constructor(options: PushProxyOptions) {
    const { defaultChunkSize, retry, log } = { ...DEFAULTS, ...options };
    this.upstream = new UpstreamAddress(options.upstream);
    this.#log = log;
    this.#answers = new ClientAnswers(this.upstream);
    this.#tokens = new TokenReplay(this.#transport);
    const tracker = new UploadTracker(this.upstream, defaultChunkSize);
    const caller = new UpstreamCaller(this.#transport, this.#tokens, retry);
    const sender = new ChunkSender(caller, tracker, this.upstream);
    this.#forwarder = new Forwarder(this.#transport, this.upstream, this.#answers, tracker);
    this.#uploads = new ReshapedUploads(caller, sender, tracker, this.upstream, this.#answers);
  }

  /** The node:http request listener. */
  readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const exchange = exchangeOf(req, res);
    this.#handle(exchange)
      .catch((error: unknown) => this.#answers.fail(exchange, error))
      .finally(() => {
        exchange.log.status = res.statusCode;
        exchange.log.durationMs = Math.round(performance.now() - started);
        this.#log(exchange.log);
      });
  };

  close(): void {
    this.#transport.close();
  }

  async #handle(exchange: Exchange): Promise<void> {
    if (this.#answers.isRealm(exchange.url.pathname)) {
      return this.#answers.relay(exchange, await this.#tokens.forward(exchange, this.upstream));
    }
    const reshape = this.#uploads.route(exchange);
    return reshape ? reshape() : this.#forwarder.forward(exchange);
  }
}

export interface RunningProxy {
  url: string;
  server: Server;
  proxy: PushProxy;
  close(): Promise<void>;
}

/** Starts the proxy on `host:port` (port 0: any free port). */
export async function startPushProxy(options: PushProxyOptions & { host: string; port: number }): Promise<RunningProxy> {
  const proxy = new PushProxy(options);
  // Uploads of large layers take as long as they take; headers must still arrive promptly.
  const server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 }, proxy.listener);
  const listening = await listen(server, options.port, options.host);
  return {
    url: listening.url,
    server,
    proxy,
    close: () => {
      const closed = listening.close();
      proxy.close();
      return closed;
    },
  };
}
