import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpUpstream } from '../../lib/client/upstream-registry.ts';
import { HttpTransport } from '../../lib/client/http-transport.ts';
import { retryAfterSecondsOf, type OciError } from '../../lib/registry/errors.ts';
import { freePort } from '../support/registry-server.ts';

/**
 * HttpUpstream translates what an upstream answers into the OciError a pull of uncached content gets (table in
 * lib/client/upstream-registry.ts), against a loopback server answering a fixed status.
 */

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

async function answering(status: number, headers: Record<string, string> = {}): Promise<string> {
  const server = createServer((_request, response) => {
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(JSON.stringify({ errors: [{ code: status === 429 ? 'TOOMANYREQUESTS' : 'UNKNOWN', message: 'upstream says no' }] }));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const failureOf = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error as OciError);
const upstreamAt = (url: string) => new HttpUpstream({ prefix: 'hub', upstream: url }, new HttpTransport({ idleTimeoutMs: 5_000 }));

describe('HttpUpstream failures', () => {
  it('answers TOOMANYREQUESTS with the upstream Retry-After on a 429, for manifests and blobs', async () => {
    const upstream = upstreamAt(await answering(429, { 'retry-after': '7' }));

    const manifest = await failureOf(upstream.getManifest('library/app', '1'));
    const blob = await failureOf(upstream.openBlob('library/app', `sha256:${'a'.repeat(64)}`));

    expect(manifest).toMatchObject({ code: 'TOOMANYREQUESTS', message: expect.stringContaining('is rate-limiting pulls of library/app') });
    expect(retryAfterSecondsOf(manifest!)).toBe(7);
    expect(blob).toMatchObject({ code: 'TOOMANYREQUESTS' });
  });

  it('answers TOOMANYREQUESTS with 60 s when the 429 names no Retry-After', async () => {
    const upstream = upstreamAt(await answering(429));

    const failure = await failureOf(upstream.headManifest('library/app', '1'));

    expect(retryAfterSecondsOf(failure!)).toBe(60);
  });

  it('answers UNAVAILABLE on a 5xx and when nothing listens', async () => {
    const failing = upstreamAt(await answering(502));
    const closed = upstreamAt(`http://127.0.0.1:${await freePort()}`);

    const fiveHundred = await failureOf(failing.getManifest('library/app', '1'));
    const refused = await failureOf(closed.getManifest('library/app', '1'));

    expect(fiveHundred).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('failed while fetching library/app') });
    expect(refused).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('cannot be reached while fetching library/app') });
  });

  it('answers DENIED naming the rule on a 403', async () => {
    const upstream = upstreamAt(await answering(403));

    const failure = await failureOf(upstream.getManifest('library/app', '1'));

    expect(failure).toMatchObject({ code: 'DENIED', message: expect.stringContaining('refused anonymous access (cache rule hub has no credentials') });
  });

  it('treats 404 as absent, not as a failure', async () => {
    const upstream = upstreamAt(await answering(404));

    expect(await upstream.getManifest('library/app', '1')).toBeUndefined();
    expect(await upstream.headManifest('library/app', '1')).toBeUndefined();
    expect(await upstream.openBlob('library/app', `sha256:${'b'.repeat(64)}`)).toBeUndefined();
  });

  it('turns a blob body that breaks off into UNAVAILABLE, so the cache refuses the copy with a clear error', async () => {
    // Prepare: an upstream that declares 1000 bytes, sends 10 and hangs up.
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-length': '1000' });
      response.write(Buffer.alloc(10));
      setTimeout(() => response.socket?.destroy(), 50);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const upstream = upstreamAt(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);

    // Act
    const opened = await upstream.openBlob('library/app', `sha256:${'c'.repeat(64)}`);
    let received = 0;
    const failure = await (async () => {
      for await (const chunk of opened!.body) received += chunk.byteLength;
    })().catch((error: unknown) => error);

    // Assess
    expect(opened!.size).toBe(1000);
    expect(received).toBe(10);
    expect(failure).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('while fetching library/app') });
  });

  it('abandons a blob body that stops coming after the transport\'s idle timeout, as UNAVAILABLE', async () => {
    // Prepare: an upstream that declares 1000 bytes, sends 10 and then nothing, keeping the connection open.
    const sockets: Array<{ destroy(): void }> = [];
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-length': '1000' });
      response.write(Buffer.alloc(10));
      if (response.socket) sockets.push(response.socket);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const upstream = new HttpUpstream({ prefix: 'hub', upstream: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, new HttpTransport({ idleTimeoutMs: 300 }));

    try {
      // Act
      const opened = await upstream.openBlob('library/app', `sha256:${'d'.repeat(64)}`);
      let received = 0;
      const failure = await (async () => {
        for await (const chunk of opened!.body) received += chunk.byteLength;
      })().catch((error: unknown) => error);

      // Assess
      expect(received).toBe(10);
      expect(failure).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('sent nothing of library/app@sha256:dddd') });
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });

  it('answers an empty digest for a HEAD without Docker-Content-Digest, so the cache fetches rather than keeps a stale tag', async () => {
    const upstream = upstreamAt(await answering(200));

    expect(await upstream.headManifest('library/app', '1')).toBe('');
  });
});
