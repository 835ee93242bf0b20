import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { base64url, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

/**
 * A real OIDC issuer on loopback, as CI providers run one: a discovery document at
 * `/.well-known/openid-configuration`, a JWKS at `/jwks`, and ID tokens signed with its own keys (ES256 and RS256,
 * generated at start). `rotate()` publishes a new key and signs with it from then on, as issuers do.
 */

export type IssuerAlgorithm = 'ES256' | 'RS256';

interface SigningKey {
  kid: string;
  alg: IssuerAlgorithm;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export interface SignOptions {
  alg?: IssuerAlgorithm;
  /** Seconds from now; negative for an expired token. Default 300. */
  expiresIn?: number;
  /** Seconds from now for `nbf` (and `iat` when in the past). Default 0. */
  notBefore?: number;
  /** Sign with a key the JWKS does not publish (an attacker's, or one not yet rotated in). */
  unpublished?: boolean;
  /** Overrides the header's kid. */
  kid?: string;
  /** Overrides `iss` (default: this issuer's URL). */
  iss?: string;
}

export interface OidcIssuer {
  /** The `iss` of its tokens: `http://127.0.0.1:PORT`. */
  url: string;
  /** Requests served, by path. */
  requests(path: '/.well-known/openid-configuration' | '/jwks'): number;
  /** An ID token with these claims (plus iss, iat, nbf, exp). */
  sign(claims: JWTPayload, options?: SignOptions): Promise<string>;
  /** Publishes a new key of `alg` and signs with it from now on; returns its kid. */
  rotate(alg?: IssuerAlgorithm): Promise<string>;
  /** Stops publishing a key (a withdrawn key). */
  withdraw(kid: string): void;
  stop(): Promise<void>;
}

async function newKey(alg: IssuerAlgorithm): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `${alg.toLowerCase()}-${randomBytes(4).toString('hex')}`;
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export async function startOidcIssuer(): Promise<OidcIssuer> {
  const published: SigningKey[] = [await newKey('ES256'), await newKey('RS256')];
  const current: Record<IssuerAlgorithm, SigningKey> = { ES256: published[0]!, RS256: published[1]! };
  const stranger = await newKey('ES256');
  const counts = new Map<string, number>();
  let url = '';

  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const json = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (path === '/.well-known/openid-configuration') {
      json(200, {
        issuer: url,
        jwks_uri: `${url}/jwks`,
        subject_types_supported: ['public', 'pairwise'],
        response_types_supported: ['id_token'],
        id_token_signing_alg_values_supported: ['RS256', 'ES256'],
        claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'repository', 'ref'],
      });
    } else if (path === '/jwks') {
      json(200, { keys: published.map((key) => key.publicJwk) });
    } else {
      json(404, { error: 'not found' });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests: (path) => counts.get(path) ?? 0,
    async sign(claims, options = {}) {
      const key = options.unpublished ? stranger : current[options.alg ?? 'ES256'];
      const now = Math.floor(Date.now() / 1000);
      const nbf = now + (options.notBefore ?? 0);
      return new SignJWT({ ...claims })
        .setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: options.kid ?? key.kid })
        .setIssuer(options.iss ?? url)
        .setIssuedAt(Math.min(now, nbf))
        .setNotBefore(nbf)
        .setExpirationTime(now + (options.expiresIn ?? 300))
        .sign(key.privateKey);
    },
    async rotate(alg = 'ES256') {
      const key = await newKey(alg);
      published.push(key);
      current[alg] = key;
      return key.kid;
    },
    withdraw(kid) {
      const index = published.findIndex((key) => key.kid === kid);
      if (index >= 0) published.splice(index, 1);
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The claims GitHub Actions puts in an ID token (token.actions.githubusercontent.com), for a push to `ref`. */
export function githubActionsClaims(repository: string, ref: string, audience: string): JWTPayload {
  const [owner] = repository.split('/');
  return {
    aud: audience,
    sub: `repo:${repository}:ref:${ref}`,
    repository,
    repository_owner: owner,
    repository_visibility: 'private',
    ref,
    ref_type: 'branch',
    sha: randomBytes(20).toString('hex'),
    workflow: 'release',
    job_workflow_ref: `${repository}/.github/workflows/release.yml@${ref}`,
    event_name: 'push',
    actor: 'octocat',
    run_id: String(Date.now()),
    runner_environment: 'github-hosted',
  };
}

/** The same token with a changed payload and the original signature. */
export function tamperIdToken(token: string, change: (claims: JWTPayload) => void): string {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as JWTPayload;
  change(claims);
  return `${header}.${base64url.encode(JSON.stringify(claims))}.${signature}`;
}

/** An unsigned token (`alg: none`) with these claims. */
export function unsignedIdToken(claims: JWTPayload): string {
  return `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url.encode(JSON.stringify(claims))}.`;
}
