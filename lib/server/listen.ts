import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Listening {
  /** `scheme://host:port` as bound (port 0 resolved; IPv6 in brackets). */
  url: string;
  /** Stops accepting, closes idle keep-alive connections, resolves when the last request has ended. */
  close(): Promise<void>;
}

/** Binds a node:http(s) server and reports its URL; rejects on a bind error (EADDRINUSE). */
export async function listen(server: Server, port: number, host: string, scheme: 'http' | 'https' = 'http'): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const bound = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `${scheme}://${bound}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
