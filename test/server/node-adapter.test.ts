import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
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

  it('answers a 413 before a declared body has arrived, then reads the rest, so the client sees the answer and not EPIPE', async () => {
    const location = await new Promise<string>((resolve, reject) => {
      const req = request(new URL('/v2/team/app/blobs/uploads/', running.url), { method: 'POST' }, (res) => {
        res.resume();
        resolve(res.headers.location!);
      });
      req.on('error', reject);
      req.end();
    });
    const declared = 7 * 1024 * 1024;
    const socket = connect(Number(new URL(running.url).port), '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const waitFor = async (text: string) => {
      for (let i = 0; i < 500 && !received.includes(text); i++) await new Promise((r) => setTimeout(r, 20));
      return received.includes(text);
    };
    socket.write(`PATCH ${location} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: ${declared}\r\ncontent-type: application/octet-stream\r\n\r\n`);
    socket.write(Buffer.alloc(1024 * 1024, 1));
    // The server answers while six of the seven MiB are still to come.
    expect(await waitFor('\r\n\r\n{"errors"')).toBe(true);
    expect(received).toMatch(/^HTTP\/1\.1 413 /);
    const rest = await new Promise<Error | undefined>((resolve) => socket.write(Buffer.alloc(declared - 1024 * 1024, 1), (error) => resolve(error ?? undefined)));
    expect(rest).toBeUndefined();
    // The same connection then serves the next request: nothing was cut off.
    received = '';
    socket.write('GET /v2/ HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
    expect(await waitFor('HTTP/1.1 200 ')).toBe(true);
    socket.end();
    await closed;
  });
});
