import { randomBytes } from 'node:crypto';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startPushProxy, type RunningProxy } from '../../lib/proxy/push-proxy.ts';
import { sha256 } from '../support/digests.ts';
import { startLocalRegistry, type LocalRegistry } from '../support/local-registry.ts';

const MiB = 1024 * 1024;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request; `streamed` sends the body in 64 KiB writes with chunked transfer encoding, as docker does. */
function send(url: string, method: string, options: { headers?: Record<string, string>; body?: Buffer; streamed?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = { ...options.headers };
    if (options.body && !options.streamed) headers['content-length'] = String(options.body.byteLength);
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (options.body && options.streamed) {
      for (let at = 0; at < options.body.byteLength; at += 64 * 1024) req.write(options.body.subarray(at, at + 64 * 1024));
    } else if (options.body) {
      req.write(options.body);
    }
    req.end();
  });
}

describe('ocireg proxy in front of a registry limited to 1 MiB per request', () => {
  let registry: LocalRegistry;
  let proxy: RunningProxy;
  beforeAll(async () => {
    registry = await startLocalRegistry({ maxChunkLength: 1 * MiB });
    proxy = await startPushProxy({ upstream: registry.url, host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await proxy.close();
    await registry.close();
  });
  const patches = (uploadPath: string) => registry.log.filter((line) => line.method === 'PATCH' && line.path === uploadPath);

  it('turns one streamed PATCH of a whole layer into chunks and answers like the upstream would for one PATCH', async () => {
    // Prepare
    const blob = randomBytes(5 * MiB + 5);
    const started = await send(`${proxy.url}/v2/team/streamed/blobs/uploads/`, 'POST');
    expect(started.status).toBe(202);
    const location = started.headers.location!;
    expect(location.startsWith('/v2/team/streamed/blobs/uploads/')).toBe(true);

    // Act
    const patched = await send(`${proxy.url}${location}`, 'PATCH', { body: blob, streamed: true, headers: { 'content-type': 'application/octet-stream' } });
    const put = await send(`${proxy.url}${patched.headers.location}?digest=${sha256(blob)}`, 'PUT');

    // Assess
    expect(patched.status).toBe(202);
    expect(patched.headers.range).toBe(`0-${blob.byteLength - 1}`);
    expect(put.status).toBe(201);
    expect(patches(location)).toHaveLength(6);
    expect(registry.log.filter((line) => line.status === 413)).toEqual([]);
    const pulled = await send(`${proxy.url}/v2/team/streamed/blobs/${sha256(blob)}`, 'GET');
    expect(pulled.body.equals(blob)).toBe(true);
  });

  it('turns a monolithic PUT with the whole blob into PATCHes and an empty PUT (containerd, oras)', async () => {
    const blob = randomBytes(3 * MiB);
    const started = await send(`${proxy.url}/v2/team/monolithic/blobs/uploads/`, 'POST');
    const location = started.headers.location!;
    const put = await send(`${proxy.url}${location}?digest=${sha256(blob)}`, 'PUT', { body: blob, headers: { 'content-type': 'application/octet-stream' } });
    expect(put.status).toBe(201);
    expect(put.headers['docker-content-digest']).toBe(sha256(blob));
    expect(patches(location).map((line) => line.status)).toEqual([202, 202, 202]);
  });

  it('turns a POST ?digest= with the whole blob into a chunked upload', async () => {
    const blob = randomBytes(2 * MiB + 1);
    const posted = await send(`${proxy.url}/v2/team/posted/blobs/uploads/?digest=${sha256(blob)}`, 'POST', { body: blob });
    expect(posted.status).toBe(201);
    expect(posted.headers.location).toBe(`/v2/team/posted/blobs/${sha256(blob)}`);
    const head = await send(`${proxy.url}/v2/team/posted/blobs/${sha256(blob)}`, 'HEAD');
    expect(head.headers['content-length']).toBe(String(blob.byteLength));
  });

  it('forwards a body within the limit unchanged, and the upstream\'s errors as they are', async () => {
    const blob = randomBytes(1000);
    const started = await send(`${proxy.url}/v2/team/small/blobs/uploads/`, 'POST');
    const before = registry.log.length;
    const patched = await send(`${proxy.url}${started.headers.location}`, 'PATCH', { body: blob });
    expect(patched.status).toBe(202);
    expect(registry.log.slice(before).map((line) => line.method)).toEqual(['PATCH']);
    const wrong = await send(`${proxy.url}${patched.headers.location}?digest=${sha256(Buffer.from('other'))}`, 'PUT');
    expect(wrong.status).toBe(400);
    expect(JSON.parse(wrong.body.toString()).errors[0].code).toBe('DIGEST_INVALID');
  });
});

describe('ocireg proxy header rewriting and token refresh', () => {
  let upstream: Server;
  let upstreamUrl: string;
  let proxy: RunningProxy | undefined;
  const seen: Array<{ method: string; url: string; authorization: string | undefined; range: string | undefined; bytes: number }> = [];
  let tokensIssued = 0;
  let acceptedToken = 'token-1';
  let received = 0;

  /** A fake upstream: token auth whose token "expires" after two chunks, absolute Locations, a 307 to another host. */
  beforeAll(async () => {
    upstream = createServer(async (req, res) => {
      let bytes = 0;
      for await (const chunk of req) bytes += (chunk as Buffer).byteLength;
      seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization, range: req.headers['content-range'] as string | undefined, bytes });
      const origin = `http://${req.headers.host}`;
      if (req.url!.startsWith('/token')) {
        tokensIssued++;
        return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `token-${tokensIssued}` }));
      }
      if (req.url === '/v2/team/pull/blobs/sha256:abc') return res.writeHead(307, { location: 'https://bucket.s3.example.com/blob?X-Amz-Signature=x' }).end();
      if (req.headers.authorization !== `Bearer ${acceptedToken}`) {
        return res.writeHead(401, { 'www-authenticate': `Bearer realm="${origin}/token",service="ocireg",scope="repository:team/app:pull,push"` }).end();
      }
      if (req.method === 'POST') {
        received = 0;
        return res.writeHead(202, { location: `${origin}/v2/team/app/blobs/uploads/u1?state=0`, range: '0-0', 'oci-chunk-max-length': String(MiB) }).end();
      }
      if (req.method === 'PATCH') {
        received += bytes;
        if (seen.filter((s) => s.method === 'PATCH' && s.authorization === `Bearer ${acceptedToken}`).length === 2) acceptedToken = 'token-2'; // the first token "expires"
        return res.writeHead(202, { location: `${origin}/v2/team/app/blobs/uploads/u1?state=${received}`, range: `0-${received - 1}` }).end();
      }
      if (req.method === 'PUT') return res.writeHead(201, { location: `${origin}/v2/team/app/blobs/sha256:x`, 'docker-content-digest': 'sha256:x' }).end();
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });
  afterAll(() => upstream.close());

  /**
   * A fresh proxy, and an upload started through it with token-1, which the client fetched through the proxy with
   * Basic credentials, as docker does after the rewritten challenge.
   */
  async function uploadStartedWithToken(): Promise<{ proxyUrl: string; auth: Record<string, string>; started: Answer }> {
    acceptedToken = 'token-1';
    tokensIssued = 0;
    proxy = await startPushProxy({ upstream: upstreamUrl, host: '127.0.0.1', port: 0 });
    await send(`${proxy.url}/v2/team/app/blobs/uploads/`, 'POST');
    const token = JSON.parse((await send(`${proxy.url}/token?service=ocireg&scope=repository:team/app:pull,push`, 'GET', { headers: { authorization: 'Basic YWxpY2U6cHc=' } })).body.toString()).token as string;
    const auth = { authorization: `Bearer ${token}` };
    return { proxyUrl: proxy.url, auth, started: await send(`${proxy.url}/v2/team/app/blobs/uploads/`, 'POST', { headers: auth }) };
  }

  it('points the token realm and upload Locations at the proxy, leaves redirects to other hosts alone', async () => {
    proxy = await startPushProxy({ upstream: upstreamUrl, host: '127.0.0.1', port: 0 });
    const challenge = await send(`${proxy.url}/v2/team/app/blobs/uploads/`, 'POST');
    expect(challenge.status).toBe(401);
    expect(challenge.headers['www-authenticate']).toBe(`Bearer realm="${proxy.url}/token",service="ocireg",scope="repository:team/app:pull,push"`);
    const redirect = await send(`${proxy.url}/v2/team/pull/blobs/sha256:abc`, 'GET');
    expect(redirect.status).toBe(307);
    expect(redirect.headers.location).toBe('https://bucket.s3.example.com/blob?X-Amz-Signature=x');
  });

  it('replays the client\'s token request when a token expires in the middle of a long upload', async () => {
    // Prepare: the client gets its token through the proxy, as docker does after the rewritten challenge
    const { proxyUrl, auth, started } = await uploadStartedWithToken();
    expect(started.headers.location).toBe(`${proxyUrl}/v2/team/app/blobs/uploads/u1?state=0`);
    seen.length = 0;

    // Act
    const patched = await send(started.headers.location!, 'PATCH', { headers: auth, body: randomBytes(4 * MiB), streamed: true });

    // Assess: chunks 3 and 4 went with a new token, fetched with the client's own Basic credentials
    expect(patched.status).toBe(202);
    expect(patched.headers.range).toBe(`0-${4 * MiB - 1}`);
    expect(patched.headers.location).toBe(`${proxyUrl}/v2/team/app/blobs/uploads/u1?state=${4 * MiB}`);
    const tokenReplay = seen.find((s) => s.url.startsWith('/token'));
    expect(tokenReplay?.authorization).toBe('Basic YWxpY2U6cHc=');
    expect(seen.filter((s) => s.method === 'PATCH' && s.bytes > 0).map((s) => [s.range, s.authorization])).toEqual([
      [`0-${MiB - 1}`, 'Bearer token-1'],
      [`${MiB}-${2 * MiB - 1}`, 'Bearer token-1'],
      [`${2 * MiB}-${3 * MiB - 1}`, 'Bearer token-1'],
      [`${2 * MiB}-${3 * MiB - 1}`, 'Bearer token-2'],
      [`${3 * MiB}-${4 * MiB - 1}`, 'Bearer token-2'],
    ]);
  });

  it('answers the upstream\'s 401 when the replayed token is refused too, after one replay (the client lacks the rights)', async () => {
    // Prepare: an upload started with token-1; from then on the upstream accepts no token
    const { proxyUrl, auth, started } = await uploadStartedWithToken();
    acceptedToken = 'nobody';
    seen.length = 0;

    // Act
    const patched = await send(started.headers.location!, 'PATCH', { headers: auth, body: randomBytes(1024), streamed: true });

    // Assess
    expect(patched.status).toBe(401);
    expect(patched.headers['www-authenticate']).toContain(`realm="${proxyUrl}/token"`);
    expect(seen.map((s) => [s.method, s.url.split('?')[0], s.authorization])).toEqual([
      ['PATCH', '/v2/team/app/blobs/uploads/u1', 'Bearer token-1'],
      ['GET', '/token', 'Basic YWxpY2U6cHc='],
      ['PATCH', '/v2/team/app/blobs/uploads/u1', 'Bearer token-2'],
    ]);
  });
});

describe('ocireg proxy in front of an upstream it cannot reach', () => {
  it('answers 502 with an OCI error that names the failure', async () => {
    // Prepare: a port that was free a moment ago
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const proxy = await startPushProxy({ upstream: `http://127.0.0.1:${port}`, host: '127.0.0.1', port: 0 });

    try {
      // Act
      const answer = await send(`${proxy.url}/v2/`, 'GET');
      const head = await send(`${proxy.url}/v2/team/app/manifests/latest`, 'HEAD');

      // Assess
      expect(answer.status).toBe(502);
      expect(answer.headers['content-type']).toMatch(/^application\/json/);
      const errors = JSON.parse(answer.body.toString()).errors;
      expect(errors).toEqual([{ code: 'UNKNOWN', message: expect.stringMatching(new RegExp(`^ocireg proxy: GET http://127.0.0.1:${port}/v2/: .*ECONNREFUSED`)), detail: null }]);
      expect(head.status).toBe(502);
      expect(head.body.byteLength).toBe(0);
    } finally {
      await proxy.close();
    }
  });
});

describe('ocireg proxy forwarding', () => {
  let upstream: Server;
  let proxy: RunningProxy;
  let connections = 0;
  let release: () => void = () => undefined;
  let upstreamEnded = false;

  /** A fake upstream: `/v2/` challenges, `/token` issues, and one blob whose body ends only when the test says so. */
  beforeAll(async () => {
    upstream = createServer((req, res) => {
      const origin = `http://${req.headers.host}`;
      if (req.url === '/v2/') return res.writeHead(401, { 'www-authenticate': `Bearer realm="${origin}/token",service="ocireg"` }).end();
      if (req.url!.startsWith('/token')) return res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"t"}');
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write('first,');
      release = () => {
        upstreamEnded = true;
        res.end('last');
      };
    });
    upstream.on('connection', () => connections++);
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    proxy = await startPushProxy({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await proxy.close();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it('relays an answer as it arrives, before the upstream has finished it', async () => {
    // Act
    const first = await new Promise<{ piece: string; endedThen: boolean; rest: Promise<string> }>((resolve, reject) => {
      request(`${proxy.url}/v2/team/app/blobs/sha256:slow`, (res) => {
        res.once('data', (piece: Buffer) => {
          const rest = (async () => {
            let text = '';
            for await (const more of res) text += String(more);
            return text;
          })();
          resolve({ piece: String(piece), endedThen: upstreamEnded, rest });
        });
      })
        .on('error', reject)
        .end();
    });
    release();

    // Assess
    expect(first).toMatchObject({ piece: 'first,', endedThen: false });
    expect(await first.rest).toBe('last');
  });

  it('sends forwarded requests and its own (token requests) over one pool of kept-alive connections', async () => {
    // Prepare: a proxy of its own, so that every upstream connection counted is one it opened
    const fresh = await startPushProxy({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, host: '127.0.0.1', port: 0 });
    const before = connections;

    try {
      // Act: a forwarded GET whose challenge the proxy rewrites, the token request to the rewritten realm, and again
      const challenged = await send(`${fresh.url}/v2/`, 'GET');
      const token = await send(`${fresh.url}/token?service=ocireg`, 'GET');
      const again = await send(`${fresh.url}/v2/`, 'GET');

      // Assess
      expect([challenged.status, token.status, again.status]).toEqual([401, 200, 401]);
      expect(challenged.headers['www-authenticate']).toBe(`Bearer realm="${fresh.url}/token",service="ocireg"`);
      expect(connections - before).toBe(1);
    } finally {
      await fresh.close();
    }
  });
});
