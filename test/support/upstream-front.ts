import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback HTTP front for an upstream registry (`host:port`), as a pull-through cache rule's upstream: it relays
 * every request, records them (method and path), and can misbehave on blob bodies the way networks and upstreams do:
 * - `corrupt`: flips the first byte of every blob body (same length, another digest);
 * - `pause(bytes)`: relays the first `bytes` of each blob body, then holds the rest until `release()`.
 */
export interface UpstreamFront {
  url: string;
  /** `METHOD /path` of every request so far. */
  requests(): string[];
  /** Holds every blob body after its first `bytes` from now on, until `release()`. */
  pause(bytes: number): void;
  /** Lets held blob bodies go on (and stops holding new ones). */
  release(): void;
  /** Blob bodies now held after their first bytes. */
  held(): number;
  close(): Promise<void>;
}

const BLOB_PATH = /\/blobs\/sha(256|512):[0-9a-f]+$/;

export async function upstreamFront(target: string, options: { corrupt?: boolean } = {}): Promise<UpstreamFront> {
  const seen: string[] = [];
  let pauseAfter: number | undefined;
  let waiting: Array<() => void> = [];
  let held = 0;
  const server: Server = createServer((incoming, outgoing) => {
    const path = incoming.url ?? '/';
    seen.push(`${incoming.method} ${path.split('?')[0]}`);
    const forwarded = request(`http://${target}${path}`, { method: incoming.method, headers: { ...incoming.headers, host: target } }, (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      const isBlob = BLOB_PATH.test(path.split('?')[0]!) && answer.statusCode === 200;
      const limit = isBlob ? pauseAfter : undefined;
      let sent = 0;
      let first = true;
      void (async () => {
        try {
          for await (const chunk of answer as AsyncIterable<Buffer>) {
            let rest = chunk;
            if (isBlob && options.corrupt && first && rest.length > 0) {
              rest = Buffer.from(rest);
              rest[0] = rest[0]! ^ 0xff;
            }
            first = false;
            if (limit !== undefined && sent < limit && sent + rest.length >= limit && pauseAfter !== undefined) {
              const before = rest.subarray(0, limit - sent);
              outgoing.write(before);
              sent += before.length;
              rest = rest.subarray(before.length);
              held++;
              await new Promise<void>((resolve) => waiting.push(resolve));
              held--;
            }
            sent += rest.length;
            if (rest.length > 0 && !outgoing.write(rest)) await new Promise((resolve) => outgoing.once('drain', resolve));
          }
          outgoing.end();
        } catch {
          outgoing.destroy();
        }
      })();
    });
    forwarded.on('error', () => outgoing.destroy());
    incoming.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => [...seen],
    pause(bytes) {
      pauseAfter = bytes;
    },
    release() {
      pauseAfter = undefined;
      const resume = waiting;
      waiting = [];
      for (const go of resume) go();
    },
    held: () => held,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
