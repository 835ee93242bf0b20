import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { dockerCredentials, parseCredentials, registryHost } from '../../lib/client/docker-credentials.ts';
import { parseChallenges, RegistryClient } from '../../lib/client/registry-client.ts';
import { tempDirs } from '../support/temp-dirs.ts';

const temp = tempDirs('ocireg-dockercfg-');
afterAll(() => temp.cleanUp());

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  body: string;
}

/** A registry with token auth in miniature: /v2/ needs `Bearer good-<n>`; /token issues one for alice:secret. */
async function tokenRegistry(): Promise<{ host: string; seen: Seen[]; server: Server; expireTokens(): void }> {
  const seen: Seen[] = [];
  let issued = 0;
  let valid = new Set<string>();
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization, body });
    const origin = `http://${req.headers.host}`;
    if (req.url!.startsWith('/token')) {
      const form = new URLSearchParams(body);
      const basicOk = req.headers.authorization === `Basic ${Buffer.from('alice:secret').toString('base64')}`;
      const refreshOk = req.method === 'POST' && form.get('grant_type') === 'refresh_token' && form.get('refresh_token') === 'refresh-me';
      if (!basicOk && !refreshOk) return res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}');
      const token = `good-${++issued}`;
      valid.add(token);
      return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer || !valid.has(bearer)) {
      return res
        .writeHead(401, { 'www-authenticate': `Bearer realm="${origin}/token",service="svc",scope="repository:team/app:pull"`, 'content-type': 'application/json' })
        .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server, expireTokens: () => (valid = new Set()) };
}

let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

describe('RegistryClient authentication', () => {
  it('answers a Bearer challenge with a token fetched with Basic credentials for the challenge and its own scopes', async () => {
    // Prepare
    const registry = await tokenRegistry();
    server = registry.server;
    const client = new RegistryClient({ registry: registry.host, plainHttp: true, credentials: { username: 'alice', password: 'secret' }, scopes: ['repository:team/app:pull,push'] });

    // Act
    await client.ping();
    await client.request('GET', '/v2/team/app/tags/list');

    // Assess: one token for both requests
    const tokenRequests = registry.seen.filter((seen) => seen.url.startsWith('/token'));
    expect(tokenRequests).toHaveLength(1);
    const query = new URL(tokenRequests[0]!.url, 'http://x').searchParams;
    expect(query.get('service')).toBe('svc');
    expect(query.getAll('scope')).toEqual(['repository:team/app:pull', 'repository:team/app:pull,push']);
    expect(query.get('account')).toBe('alice');
    expect(registry.seen.at(-1)!.authorization).toBe('Bearer good-1');
  });

  it('gets a new token when the registry stops accepting the old one', async () => {
    const registry = await tokenRegistry();
    server = registry.server;
    const client = new RegistryClient({ registry: registry.host, plainHttp: true, credentials: { username: 'alice', password: 'secret' } });
    await client.ping();
    registry.expireTokens();
    await client.ping();
    expect(registry.seen.at(-1)!.authorization).toBe('Bearer good-2');
  });

  it('uses docker\'s identity token with a refresh_token POST', async () => {
    const registry = await tokenRegistry();
    server = registry.server;
    const client = new RegistryClient({ registry: registry.host, plainHttp: true, credentials: { username: '<token>', identityToken: 'refresh-me' } });
    await client.ping();
    const post = registry.seen.find((seen) => seen.url.startsWith('/token'))!;
    expect(post.method).toBe('POST');
    expect(Object.fromEntries(new URLSearchParams(post.body))).toMatchObject({ grant_type: 'refresh_token', refresh_token: 'refresh-me', service: 'svc', scope: 'repository:team/app:pull' });
  });

  it('reports refused credentials and missing ones in words', async () => {
    const registry = await tokenRegistry();
    server = registry.server;
    await expect(new RegistryClient({ registry: registry.host, plainHttp: true, credentials: { username: 'alice', password: 'wrong' } }).ping()).rejects.toThrow(
      /refused the credentials of alice: .*401: UNAUTHORIZED bad credentials/,
    );
    await expect(new RegistryClient({ registry: registry.host, plainHttp: true }).ping()).rejects.toThrow(/none given: use --creds or docker login/);
  });

  it('answers a Basic challenge with the credentials', async () => {
    const seen: Array<string | undefined> = [];
    server = createServer((req, res) => {
      seen.push(req.headers.authorization);
      if (req.headers.authorization !== `Basic ${Buffer.from('bob:pw:with:colons').toString('base64')}`) return res.writeHead(401, { 'www-authenticate': 'Basic realm="registry"' }).end();
      res.writeHead(200).end('{}');
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const client = new RegistryClient({ registry: `127.0.0.1:${(server.address() as AddressInfo).port}`, plainHttp: true, credentials: parseCredentials('bob:pw:with:colons') });
    await client.ping();
    expect(seen).toHaveLength(2);
  });
});

describe('WWW-Authenticate parsing', () => {
  it('reads quoted parameters containing commas and several challenges', () => {
    expect(parseChallenges('Bearer realm="https://r.example/token",service="r.example",scope="repository:a/b:pull,push repository:c:pull",error="invalid_token"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://r.example/token', service: 'r.example', scope: 'repository:a/b:pull,push repository:c:pull', error: 'invalid_token' } },
    ]);
    expect(parseChallenges('Basic realm="x", Bearer realm="y",service=z')).toEqual([
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { realm: 'y', service: 'z' } },
    ]);
  });
});

describe('docker credentials', () => {
  it('reads auths entries written as host, https://host or https://host/v1/, and identity tokens', async () => {
    const dir = await temp.make();
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        auths: {
          'https://registry.example.com/v1/': { auth: Buffer.from('carol:p:w').toString('base64') },
          'localhost:5000': { auth: Buffer.from('dave:x').toString('base64'), identitytoken: 'tok' },
        },
      }),
    );
    const env = { DOCKER_CONFIG: dir };
    expect(await dockerCredentials('registry.example.com', env)).toEqual({ username: 'carol', password: 'p:w' });
    expect(await dockerCredentials('localhost:5000', env)).toEqual({ username: 'dave', identityToken: 'tok' });
    expect(await dockerCredentials('other:1', env)).toBeUndefined();
    expect(await dockerCredentials('x', { DOCKER_CONFIG: join(dir, 'absent') })).toBeUndefined();
    expect(registryHost('http://127.0.0.1:5000')).toBe('127.0.0.1:5000');
    expect(() => parseCredentials('nocolon')).toThrow(/user:password/);
  });
});
