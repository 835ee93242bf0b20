import type { IncomingMessage, ServerResponse } from 'node:http';

/** One client request in flight through the proxy, and the log line it will end with. */
export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  /** The client's path and query (the origin is a placeholder). */
  url: URL;
  /** `http://<the Host the client used>`: where rewritten absolute Locations and realms point. */
  proxyOrigin: string;
  log: Record<string, unknown>;
  /** The client's `Authorization`; replaced when the proxy replays the client's token request mid-upload. */
  authorization: string | undefined;
}

export function exchangeOf(req: IncomingMessage, res: ServerResponse): Exchange {
  const url = new URL(req.url ?? '/', 'http://proxy');
  return {
    req,
    res,
    url,
    proxyOrigin: `http://${req.headers.host ?? 'localhost'}`,
    log: { method: req.method, path: url.pathname },
    authorization: req.headers.authorization,
  };
}
