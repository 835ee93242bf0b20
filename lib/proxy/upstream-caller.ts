import { setTimeout as sleep } from 'node:timers/promises';
import { NetworkError, type HttpResult, type HttpTransport } from '../client/http-transport.ts';
import { backoffDelay, type RetryPolicy } from '../client/retry.ts';
import type { Exchange } from './exchange.ts';
import type { TokenReplay } from './token-replay.ts';

/** A 5xx or 429: the upstream may well answer the same request differently in a moment. */
export function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 429;
}

/**
 * Requests the proxy makes upstream on a client's behalf while it reshapes an upload: with the client's
 * `Authorization` and `User-Agent`, answers read whole. {@link UpstreamCaller.retried} repeats a request after
 * transient failures, and after a 401 once the client's token request has been replayed (see TokenReplay). A 401
 * to a token just replayed is final: the client lacks the rights, and a fresher token would not help.
 */
export class UpstreamCaller {
  readonly #transport: HttpTransport;
  readonly #tokens: TokenReplay;
  readonly retry: RetryPolicy;

  constructor(transport: HttpTransport, tokens: TokenReplay, retry: RetryPolicy) {
    this.#transport = transport;
    this.#tokens = tokens;
    this.retry = retry;
  }

  /** One attempt; rejects with NetworkError when no answer came. */
  call(exchange: Exchange, method: string, url: URL, headers: Record<string, string>, body?: Buffer): Promise<HttpResult> {
    const out: Record<string, string> = { ...headers };
    const agent = exchange.req.headers['user-agent'];
    if (agent !== undefined) out['user-agent'] = agent;
    if (exchange.authorization !== undefined) out.authorization = exchange.authorization;
    return this.#transport.send({ method, url, headers: out, ...(body !== undefined ? { body } : {}) });
  }

  /** For requests that are safe to repeat (GET, the closing PUT): the last answer, or the last failure. */
  async retried(exchange: Exchange, method: string, url: URL, headers: Record<string, string>): Promise<HttpResult> {
    let replayed = false;
    for (let attempt = 0; ; attempt++) {
      let result: HttpResult | undefined;
      try {
        result = await this.call(exchange, method, url, headers);
      } catch (error) {
        if (!(error instanceof NetworkError) || attempt + 1 >= this.retry.attempts) throw error;
      }
      if (result?.status === 401 && !replayed && (await this.refreshToken(exchange))) {
        replayed = true;
        continue;
      }
      if (result && (!isTransientStatus(result.status) || attempt + 1 >= this.retry.attempts)) return result;
      await this.backoff(attempt);
    }
  }

  /** Replays the client's token request; true when the exchange now carries a different token. */
  async refreshToken(exchange: Exchange): Promise<boolean> {
    const refreshed = await this.#tokens.refresh(exchange.authorization).catch(() => undefined);
    if (refreshed === undefined || refreshed === exchange.authorization) return false;
    exchange.authorization = refreshed;
    exchange.log.tokenRefreshed = true;
    return true;
  }

  /** Waits before the n-th retry (n from 0). */
  backoff(retry: number): Promise<void> {
    return sleep(backoffDelay(this.retry, retry));
  }
}
