import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type RunningServer } from '../../lib/server/serve.ts';

let dir: string;
let running: RunningServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ocireg-adapter-'));
  running = await serve({ host: '127.0.0.1', port: 0, dataDir: dir, maxChunkLength: 1024, writeLog: () => undefined });
});
afterAll(async () => {
  await running.close();
  await rm(dir, { recursive: true, force: true });
});

/** One raw HTTP/1.1 exchange: status and the Connection header the server chose. */
function exchange(method: string, path: string, body?: Buffer): Promise<{ status: number; connection: string | undefined }> {
  const url = new URL(path, running.url);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: body ? { 'content-length': String(body.byteLength) } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('node:http adapter', () => {
  it('keeps the connection alive for bodiless requests (GET, HEAD)', async () => {
    expect(await exchange('GET', '/v2/')).toEqual({ status: 200, connection: 'keep-alive' });
    expect(await exchange('HEAD', '/v2/')).toEqual({ status: 200, connection: 'keep-alive' });
  });

  it('leaves a keep-alive connection usable after refusing a body it did not read', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = (method: string, path: string, body?: Buffer) =>
      new Promise<{ status: number; location?: string; socket: unknown }>((resolve, reject) => {
        const req = request(new URL(path, running.url), { method, agent, headers: body ? { 'content-length': String(body.byteLength) } : {} }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, ...(res.headers.location ? { location: res.headers.location } : {}), socket: req.socket }));
        });
        req.on('error', reject);
        req.end(body);
      });
    const started = await send('POST', '/v2/team/app/blobs/uploads/');
    const refused = await send('PATCH', started.location!, Buffer.alloc(4096, 1));
    const after = await send('GET', started.location!);
    agent.destroy();
    expect(refused.status).toBe(413);
    expect(after.status).toBe(204);
    expect(after.socket).toBe(started.socket);
  });
});
