import { randomUUID, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { importPKCS8, SignJWT, type CryptoKey } from 'jose';
import { runOk } from './tools.ts';

/**
 * A Docker token server on loopback, the way Docker Hub splits it (registry-1.docker.io challenges, auth.docker.io
 * issues): `GET /token?service=…&scope=…` with Basic credentials or none, answered with an ES256 JWT in
 * distribution's format (`spec/auth/jwt.md`: iss, sub, aud, exp, nbf, iat, jti, access) whose header carries the
 * signing certificate (`x5c`). Its key and self-signed certificate are made with openssl at start; distribution's
 * `auth: token` trusts it through `rootcertbundle: <certificate>`.
 *
 * Grants: `users` with their password get the actions they ask for on any repository (`pushers` also push);
 * anonymous callers get `pull` on `pub/*` only; a wrong password is a 401. Missing rights are not an error: the
 * token lists what is granted, as real token servers do.
 */
export interface TokenServer {
  /** The realm: `http://127.0.0.1:PORT/token`. */
  realm: string;
  service: string;
  issuer: string;
  /** The PEM certificate distribution verifies tokens against. */
  certificate: string;
  /** Token requests so far: the account (or `anonymous`) and whether they were granted. */
  requests(): Array<{ account: string; status: number }>;
  stop(): Promise<void>;
}

export async function startTokenServer(dir: string, options: { users: Record<string, string>; pushers?: string[] }): Promise<TokenServer> {
  const keyPath = join(dir, 'token-key.pem');
  const certificate = join(dir, 'token-cert.pem');
  await runOk('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certificate, '-days', '2', '-subj', '/CN=ocireg test token issuer']);
  const key: CryptoKey = await importPKCS8(await readFile(keyPath, 'utf8'), 'ES256');
  const der = new X509Certificate(await readFile(certificate)).raw.toString('base64');
  const service = 'upstream-registry';
  const issuer = 'ocireg-test-token-issuer';
  const seen: Array<{ account: string; status: number }> = [];

  const server: Server = createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? '/', 'http://token.test');
      const basic = /^Basic (.+)$/i.exec(request.headers.authorization ?? '');
      let account = '';
      if (basic) {
        const [user, ...rest] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
        if (options.users[user!] === undefined || options.users[user!] !== rest.join(':')) {
          seen.push({ account: user!, status: 401 });
          response.writeHead(401, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ details: 'incorrect username or password' }));
          return;
        }
        account = user!;
      }
      const access = url.searchParams.getAll('scope').flatMap((scope) => {
        const parts = scope.split(':');
        const actions = parts.pop()!.split(',');
        const [type, ...name] = parts;
        const repository = name.join(':');
        const allowed = actions.filter((action) =>
          account ? action === 'pull' || (action === 'push' && (options.pushers ?? []).includes(account)) : action === 'pull' && /^pub\/[^/]+$/.test(repository),
        );
        return type === 'repository' && allowed.length > 0 ? [{ type, name: repository, actions: allowed }] : [];
      });
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ access })
        .setProtectedHeader({ alg: 'ES256', typ: 'JWT', x5c: [der] })
        .setIssuer(issuer)
        .setSubject(account)
        .setAudience(url.searchParams.get('service') ?? service)
        .setIssuedAt(now)
        .setNotBefore(now - 5)
        .setExpirationTime(now + 300)
        .setJti(randomUUID())
        .sign(key);
      seen.push({ account: account || 'anonymous', status: 200 });
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date(now * 1000).toISOString() }));
    })().catch(() => response.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certificate,
    requests: () => [...seen],
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
