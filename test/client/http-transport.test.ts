import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpTransport, NetworkError } from '../../lib/client/http-transport.ts';

/** A server whose answers each test scripts; `held` are answers begun and left open. */
let server: Server;
let base: string;
let handle: (path: string, res: ServerResponse) => void;
let transport: HttpTransport;
const held: ServerResponse[] = [];

beforeAll(async () => {
  server = createServer((req, res) => handle(req.url!, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(() => {
  transport.close();
  for (const res of held.splice(0)) res.destroy();
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('HttpTransport.open', () => {
  it('resolves with the answer\'s head while its body is still coming, and streams the body', async () => {
    // Prepare: the server sends the head and a first piece, and the rest only when told
    transport = new HttpTransport();
    let finish: () => void = () => undefined;
    handle = (_path, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write('first ');
      finish = () => res.end('last');
    };

    // Act
    const response = await transport.open({ method: 'GET', url: new URL('/blob', base) });
    const firstPiece = String(await new Promise((resolve) => response.once('data', resolve)));
    finish();
    let rest = '';
    for await (const piece of response) rest += String(piece);

    // Assess
    expect(response.statusCode).toBe(200);
    expect(firstPiece).toBe('first ');
    expect(rest).toBe('last');
  });

  it('fails with a NetworkError when no head comes within the idle timeout, but lets a body wait past it', async () => {
    transport = new HttpTransport({ idleTimeoutMs: 100 });
    handle = (path, res) => {
      held.push(res);
      if (path === '/slow-body') {
        res.writeHead(200).flushHeaders();
        setTimeout(() => res.end('late'), 300);
      }
    };

    await expect(transport.open({ method: 'GET', url: new URL('/no-head', base) })).rejects.toMatchObject({ name: 'NetworkError', code: 'ETIMEDOUT' });
    const response = await transport.open({ method: 'GET', url: new URL('/slow-body', base) });
    let body = '';
    for await (const piece of response) body += String(piece);
    expect(body).toBe('late');
  });

  it('ends the exchange when its signal aborts before the answer', async () => {
    transport = new HttpTransport();
    handle = (_path, res) => held.push(res);
    const abort = new AbortController();

    const opened = transport.open({ method: 'GET', url: new URL('/never', base), signal: abort.signal });
    abort.abort();

    await expect(opened).rejects.toBeInstanceOf(NetworkError);
  });
});

describe('HttpTransport.send', () => {
  it('still times out a body that stops coming', async () => {
    transport = new HttpTransport({ idleTimeoutMs: 100 });
    handle = (_path, res) => {
      held.push(res);
      res.writeHead(200);
      res.write('part');
    };

    await expect(transport.send({ method: 'GET', url: new URL('/stalls', base) })).rejects.toMatchObject({ name: 'NetworkError', code: 'ETIMEDOUT' });
  });
});
