import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A forwarding HTTP server in front of a registry that breaks chosen requests mid-body, to exercise resumption:
 * `failPatch: 5` lets the fifth PATCH send half its body upstream and then resets both connections, as a dropped
 * link would. Every request is recorded with its Content-Range and body size.
 */
export interface ForwardedRequest {
  method: string;
  path: string;
  contentRange: string | undefined;
  bytes: number;
  status: number | 'reset';
}

export interface FlakyForwarder {
  url: string;
  host: string;
  requests: ForwardedRequest[];
  close(): Promise<void>;
}

export async function startFlakyForwarder(upstream: string, options: { failPatch?: number; failStatus?: { nth: number; status: number; count: number } } = {}): Promise<FlakyForwarder> {
  const target = new URL(upstream);
  const requests: ForwardedRequest[] = [];
  let patches = 0;
  let statusFailures = 0;
  let seen = 0;
  const server: Server = createServer((req, res) => {
    const record: ForwardedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', contentRange: req.headers['content-range'] as string | undefined, bytes: 0, status: 'reset' };
    requests.push(record);
    seen++;
    if (options.failStatus && seen >= options.failStatus.nth && statusFailures < options.failStatus.count) {
      statusFailures++;
      record.status = options.failStatus.status;
      req.resume();
      req.on('end', () => res.writeHead(options.failStatus!.status, { 'content-type': 'text/plain', 'retry-after': '0' }).end('try again'));
      return;
    }
    const breakThis = req.method === 'PATCH' && ++patches === options.failPatch;
    const length = Number(req.headers['content-length'] ?? 0);
    const upstreamRequest = request(new URL(req.url ?? '/', target), { method: req.method, headers: { ...req.headers, host: target.host } }, (upstreamResponse) => {
      record.status = upstreamResponse.statusCode ?? 0;
      res.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
      upstreamResponse.pipe(res);
    });
    upstreamRequest.on('error', () => res.destroy());
    req.on('data', (chunk: Buffer) => {
      record.bytes += chunk.byteLength;
      if (breakThis && record.bytes >= length / 2) {
        upstreamRequest.destroy();
        req.socket.destroy();
        return;
      }
      upstreamRequest.write(chunk);
    });
    req.on('end', () => upstreamRequest.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
