import { chmod, mkdir, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { GcReport } from '../registry/gc/gc-report.ts';
import type { FsKeys } from '../storage/fs/keys.ts';
import { errorMessage } from '../registry/errors.ts';

/**
 * The data dir's owner. One process owns a data dir (the fs store's compare-and-set and garbage-collection marks
 * are in-process), and it listens on `<data-dir>/control.sock` (mode 0600: whoever may write the data dir). Another
 * `ocireg serve` on the same dir refuses to start; `ocireg gc` sends its run to the owner instead of opening the
 * store itself. Chosen over an admin route on the registry port: nothing new is reachable over the network, and
 * the socket's file permissions are the access control.
 */

export interface ControlHandlers {
  gc(request: GcRequest): Promise<GcReport>;
}

export interface GcRequest {
  dryRun: boolean;
  graceMs?: number;
}

export class DataDirInUseError extends Error {}

/**
 * Claims the data dir: listens on its control socket. Throws DataDirInUseError when a live process owns it; a
 * socket file left by a process that died is replaced.
 */
export async function claimDataDir(keys: FsKeys, handlers: ControlHandlers): Promise<{ close(): Promise<void> }> {
  const path = keys.controlSocket;
  if ((await callOwner(keys, '/ping')) !== undefined) throw new DataDirInUseError(`another ocireg process owns ${keys.root} (it listens on ${path})`);
  await mkdir(keys.root, { recursive: true });
  await rm(path, { force: true });
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const answer = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      };
      if (req.method === 'GET' && req.url === '/ping') return answer(200, { pid: process.pid });
      if (req.method === 'POST' && req.url === '/gc') {
        let parsed: GcRequest;
        try {
          parsed = parseGcRequest(JSON.parse(body));
        } catch (error) {
          return answer(400, { error: String((error as Error).message) });
        }
        handlers.gc(parsed).then(
          (report) => answer(200, report),
          (error: unknown) => answer(500, { error: errorMessage(error) }),
        );
        return;
      }
      answer(404, { error: `no ${req.method} ${req.url}` });
    });
  });
  await listenOn(server, path);
  await chmod(path, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

/** Calls the data dir's owner; undefined when no live process owns it (no socket, or a dead one's). */
export async function callOwner(keys: FsKeys, path: string, body?: unknown): Promise<{ status: number; value: unknown } | undefined> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: keys.controlSocket, path, method: body === undefined ? 'GET' : 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 500, value: text === '' ? undefined : JSON.parse(text) }));
      res.on('error', reject);
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') resolve(undefined);
      else reject(error);
    });
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

function parseGcRequest(value: unknown): GcRequest {
  const { dryRun, graceMs } = (value ?? {}) as { dryRun?: unknown; graceMs?: unknown };
  if (typeof dryRun !== 'boolean') throw new Error('dryRun must be a boolean');
  if (graceMs !== undefined && (typeof graceMs !== 'number' || !Number.isInteger(graceMs) || graceMs < 0)) throw new Error('graceMs must be a non-negative integer');
  return graceMs === undefined ? { dryRun } : { dryRun, graceMs };
}

function listenOn(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      server.unref();
      resolve();
    });
  });
}
