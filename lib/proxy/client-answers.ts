import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { HttpResult } from '../client/http-transport.ts';
import { renderError } from '../http/error-response.ts';
import { errorMessage, OciError } from '../registry/errors.ts';
import type { Exchange } from './exchange.ts';
import { returnableHeaders, type UpstreamAddress } from './upstream-address.ts';

/** An upstream answer that ends the client's request, thrown from deep in an upload: relayed as it is (rewritten). */
export class UpstreamAnswer extends Error {
  readonly result: HttpResult;
  constructor(result: HttpResult) {
    super(`upstream answered ${result.status}`);
    this.result = result;
  }
}

/**
 * What goes back to the client: upstream headers with `Location` and token `realm` pointed at the proxy, buffered
 * answers, and the proxy's own failures as OCI error JSON. Remembers the realm paths it rewrote, since requests to
 * them are token requests (see TokenReplay).
 */
export class ClientAnswers {
  readonly #address: UpstreamAddress;
  readonly #realmPaths = new Set<string>();

  constructor(address: UpstreamAddress) {
    this.#address = address;
  }

  /** Whether a path is a token endpoint the proxy pointed a client at. */
  isRealm(path: string): boolean {
    return this.#realmPaths.has(path);
  }

  /** The upstream's response headers for the client: hop-by-hop ones dropped, Location and realm rewritten. */
  headers(upstream: IncomingHttpHeaders, exchange: Exchange): OutgoingHttpHeaders {
    const headers = returnableHeaders(upstream);
    if (typeof headers.location === 'string') headers.location = this.#address.rewriteLocation(headers.location, exchange.proxyOrigin);
    const challenge = headers['www-authenticate'];
    if (challenge !== undefined) {
      const values = Array.isArray(challenge) ? challenge : [String(challenge)];
      headers['www-authenticate'] = values.map((value) => {
        const rewritten = this.#address.rewriteChallenge(value, exchange.proxyOrigin);
        if (rewritten.realmPath !== undefined) this.#realmPaths.add(rewritten.realmPath);
        return rewritten.header;
      });
    }
    return headers;
  }

  /** Sends a buffered upstream answer to the client. */
  relay(exchange: Exchange, result: HttpResult): void {
    if (exchange.res.headersSent) return;
    const headers = this.headers(result.headers, exchange);
    headers['content-length'] = String(result.body.byteLength);
    end(exchange, result.status, headers, result.body);
  }

  /**
   * Ends the exchange after a failure: an {@link UpstreamAnswer} is relayed; anything else is the proxy's own
   * failure to reach or follow the upstream, a 502 whose OCI error names it (the proxy runs beside its user, so the
   * message helps more than it leaks). A response already under way can only be cut off.
   */
  fail(exchange: Exchange, error: unknown): void {
    if (error instanceof UpstreamAnswer) return this.relay(exchange, error.result);
    const message = errorMessage(error);
    exchange.log.error = message;
    if (exchange.res.headersSent) {
      exchange.res.destroy();
      return;
    }
    const { response } = renderError(new OciError('UNKNOWN', `ocireg proxy: ${message}`), {}, exchange.req.method);
    // 502, not the renderer's 500 for UNKNOWN: the failure lies upstream or on the way there (RFC 9110 §15.6.3).
    end(exchange, 502, { ...response.headers }, response.body instanceof Uint8Array ? response.body : undefined);
  }
}

/** Writes a whole answer. A request body the client is still sending is abandoned: the connection closes after. */
function end(exchange: Exchange, status: number, headers: OutgoingHttpHeaders, body: Uint8Array | undefined): void {
  const { req, res } = exchange;
  if (!req.complete) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
  if (!req.complete) res.on('finish', () => req.destroy());
}
