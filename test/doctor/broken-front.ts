import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import { listen } from '../../lib/server/listen.ts';

/**
 * A deliberately broken front for the doctor's tests: a loopback HTTP proxy that forwards every request unchanged
 * (Host included, so the registry's challenge names the front) and alters the responses' headers on the way
 * back, as a misconfigured gateway might.
 */
export type HeaderAlteration = (method: string, status: number, headers: IncomingHttpHeaders) => IncomingHttpHeaders;

/** What the issue fears from an HTTP API: `Content-Length: 0` on every HEAD response. */
export const zeroHeadContentLength: HeaderAlteration = (method, _status, headers) => (method === 'HEAD' ? { ...headers, 'content-length': '0' } : headers);

/** What a REST API does to a Lambda's challenge: the header survives only as x-amzn-Remapped-WWW-Authenticate. */
export const remapWwwAuthenticate: HeaderAlteration = (_method, _status, headers) => {
  const { 'www-authenticate': challenge, ...rest } = headers;
  return challenge === undefined ? headers : { ...rest, 'x-amzn-remapped-www-authenticate': challenge };
};

/** A front that changes nothing. */
export const unchanged: HeaderAlteration = (_method, _status, headers) => headers;

/** `delayMs` holds every answer that long: a slow gateway, so that a test can act while a run is under way. */
export async function startBrokenFront(upstream: string, alter: HeaderAlteration, delayMs = 0): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const forwarded = request(new URL(req.url ?? '/', upstream), { method: req.method, headers: req.headers }, (answer) => {
      setTimeout(() => {
        res.writeHead(answer.statusCode ?? 502, alter(req.method ?? 'GET', answer.statusCode ?? 502, answer.headers));
        answer.pipe(res);
      }, delayMs);
    });
    forwarded.on('error', () => res.destroy());
    req.pipe(forwarded);
  });
  const listening = await listen(server, 0, '127.0.0.1');
  return {
    url: listening.url,
    close: () => {
      const closed = listening.close();
      server.closeAllConnections();
      return closed;
    },
  };
}
