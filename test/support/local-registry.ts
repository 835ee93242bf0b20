import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type RunningServer } from '../../lib/server/serve.ts';

/** `ocireg serve` in-process on a loopback port with a temp data dir, with its request log collected. */
export interface LocalRegistry {
  url: string;
  host: string;
  server: RunningServer;
  log: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startLocalRegistry(options: { maxChunkLength?: number; auth?: boolean } = {}): Promise<LocalRegistry> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ocireg-client-'));
  const log: Array<Record<string, unknown>> = [];
  const server = await serve({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    ...(options.maxChunkLength !== undefined ? { maxChunkLength: options.maxChunkLength } : {}),
    ...(options.auth ? { auth: true } : {}),
    writeLog: (line) => log.push(JSON.parse(line) as Record<string, unknown>),
  });
  return {
    url: server.url,
    host: new URL(server.url).host,
    server,
    log,
    close: async () => {
      server.server.closeAllConnections();
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
