import type { Server } from 'node:http';

/**
 * Runs a server until SIGTERM or SIGINT, then closes it: in-flight requests get `graceMs` to finish before their
 * connections are cut (an unfinished upload stays resumable).
 */
export function runUntilSignal(running: { server: Server; close(): Promise<void> }, log: (entry: Record<string, unknown>) => void, graceMs = 10_000): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log({ msg: 'shutting down', signal });
      setTimeout(() => running.server.closeAllConnections(), graceMs).unref();
      running.close().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
