import { base64url, importPKCS8, SignJWT } from 'jose';
import { expect, it } from 'vitest';
import type { AccessLevel } from '../../lib/auth/identity.ts';
import { MediaType } from '../../lib/registry/manifest.ts';
import { imageManifest, randomBlob } from '../support/builders.ts';

/** A way to send requests to a registry under test: in-process, or over HTTP to a running server. */
export interface MatrixTarget {
  request(method: string, path: string, options?: { headers?: Record<string, string>; body?: Uint8Array | string }): Promise<{ status: number; headers: Record<string, string>; body: Buffer }>;
  /** Creates a user with grants and an access token; returns the credentials. */
  addUser(name: string, grants: Array<[string, AccessLevel]>, options?: { admin?: boolean }): Promise<{ name: string; token: string; tokenId: string }>;
  revokeToken(tokenId: string): Promise<void>;
  /** Creates a team with grants and members (existing users). */
  addTeam(name: string, grants: Array<[string, AccessLevel]>, members: string[]): Promise<void>;
  removeTeamMember(team: string, user: string): Promise<void>;
  setPublic(glob: string): Promise<void>;
  /** The registry's token signing key (PKCS#8 PEM), to mint a correctly signed but expired token. */
  signingKeyPem: string;
  /** What an allowed blob GET answers: 200 with the bytes, or 307 to storage (S3). Default 200. */
  blobGetStatus?: number;
}

/** `MatrixTarget.request` over real HTTP, redirects not followed (a 307 to S3 is the answer). */
export function httpRequest(baseUrl: string): MatrixTarget['request'] {
  return async (method, path, options = {}) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: options.headers ?? {},
      redirect: 'manual',
      ...(options.body !== undefined ? { body: options.body as BodyInit } : {}),
    });
    return { status: response.status, headers: Object.fromEntries(response.headers), body: Buffer.from(await response.arrayBuffer()) };
  };
}

type Principal =
  | 'no token'
  | 'anonymous'
  | 'no-grant user'
  | 'puller'
  | 'pusher'
  | 'deleter'
  | 'admin'
  | 'pusher through a team'
  | 'puller in a deleting team'
  | 'user removed from a pushing team'
  | 'expired JWT'
  | 'revoked token'
  | 'tampered JWT'
  | 'alg:none JWT';
type Outcome = 'ok' | 401 | 403;
type Level = 'base' | 'catalog' | 'pull' | 'push' | 'delete';

interface Endpoint {
  name: string;
  level: Level;
  /** Prepared with an admin token; returns the request to make. */
  prepare(
    admin: (method: string, path: string, body?: Uint8Array | string, headers?: Record<string, string>) => Promise<{ status: number; headers: Record<string, string> }>,
    target: MatrixTarget,
  ): Promise<{ method: string; path: string; body?: Uint8Array | string; headers?: Record<string, string>; okStatus: number }>;
}

const REPO = 'team/app';

async function pushImage(admin: Parameters<Endpoint['prepare']>[0], repo: string, tag: string) {
  const [config, layer] = [randomBlob(64), randomBlob(256)];
  for (const blob of [config, layer]) expect((await admin('POST', `/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, blob.bytes)).status).toBe(201);
  const manifest = imageManifest(config, [layer]);
  expect((await admin('PUT', `/v2/${repo}/manifests/${tag}`, manifest.bytes, { 'content-type': MediaType.ociManifest })).status).toBe(201);
  return { config, layer, manifest };
}

const ENDPOINTS: Endpoint[] = [
  { name: 'GET /v2/', level: 'base', prepare: async () => ({ method: 'GET', path: '/v2/', okStatus: 200 }) },
  { name: 'GET /v2/_catalog', level: 'catalog', prepare: async () => ({ method: 'GET', path: '/v2/_catalog', okStatus: 200 }) },
  { name: 'GET tags/list', level: 'pull', prepare: async (admin) => (await pushImage(admin, REPO, 't1'), { method: 'GET', path: `/v2/${REPO}/tags/list`, okStatus: 200 }) },
  { name: 'GET manifest', level: 'pull', prepare: async (admin) => (await pushImage(admin, REPO, 't2'), { method: 'GET', path: `/v2/${REPO}/manifests/t2`, okStatus: 200 }) },
  { name: 'HEAD manifest', level: 'pull', prepare: async (admin) => (await pushImage(admin, REPO, 't3'), { method: 'HEAD', path: `/v2/${REPO}/manifests/t3`, okStatus: 200 }) },
  {
    name: 'GET blob',
    level: 'pull',
    prepare: async (admin, target) => {
      const { layer } = await pushImage(admin, REPO, 't4');
      return { method: 'GET', path: `/v2/${REPO}/blobs/${layer.digest}`, okStatus: target.blobGetStatus ?? 200 };
    },
  },
  {
    name: 'HEAD blob',
    level: 'pull',
    prepare: async (admin) => {
      const { layer } = await pushImage(admin, REPO, 't5');
      return { method: 'HEAD', path: `/v2/${REPO}/blobs/${layer.digest}`, okStatus: 200 };
    },
  },
  {
    name: 'GET referrers',
    level: 'pull',
    prepare: async (admin) => {
      const { manifest } = await pushImage(admin, REPO, 't6');
      return { method: 'GET', path: `/v2/${REPO}/referrers/${manifest.digest}`, okStatus: 200 };
    },
  },
  { name: 'POST upload', level: 'push', prepare: async () => ({ method: 'POST', path: `/v2/${REPO}/blobs/uploads/`, okStatus: 202 }) },
  {
    name: 'PATCH upload',
    level: 'push',
    prepare: async (admin) => {
      const location = (await admin('POST', `/v2/${REPO}/blobs/uploads/`)).headers.location!;
      return { method: 'PATCH', path: location, body: randomBlob(100).bytes, okStatus: 202 };
    },
  },
  {
    name: 'GET upload status',
    level: 'push',
    prepare: async (admin) => {
      const location = (await admin('POST', `/v2/${REPO}/blobs/uploads/`)).headers.location!;
      return { method: 'GET', path: location, okStatus: 204 };
    },
  },
  {
    name: 'PUT upload',
    level: 'push',
    prepare: async (admin) => {
      const blob = randomBlob(100);
      const location = (await admin('POST', `/v2/${REPO}/blobs/uploads/`)).headers.location!;
      return { method: 'PUT', path: `${location}?digest=${blob.digest}`, body: blob.bytes, okStatus: 201 };
    },
  },
  {
    name: 'DELETE upload',
    level: 'push',
    prepare: async (admin) => {
      const location = (await admin('POST', `/v2/${REPO}/blobs/uploads/`)).headers.location!;
      return { method: 'DELETE', path: location, okStatus: 204 };
    },
  },
  {
    name: 'PUT manifest',
    level: 'push',
    prepare: async (admin) => {
      const { config, layer } = await pushImage(admin, REPO, 't7');
      const manifest = imageManifest(config, [layer], { annotations: { x: String(Math.random()) } });
      return { method: 'PUT', path: `/v2/${REPO}/manifests/new`, body: manifest.bytes, headers: { 'content-type': MediaType.ociManifest }, okStatus: 201 };
    },
  },
  {
    name: 'DELETE manifest',
    level: 'delete',
    prepare: async (admin) => {
      const { manifest } = await pushImage(admin, REPO, 't8');
      return { method: 'DELETE', path: `/v2/${REPO}/manifests/${manifest.digest}`, okStatus: 202 };
    },
  },
  { name: 'DELETE tag', level: 'delete', prepare: async (admin) => (await pushImage(admin, REPO, 't9'), { method: 'DELETE', path: `/v2/${REPO}/manifests/t9`, okStatus: 202 }) },
  {
    name: 'DELETE blob',
    level: 'delete',
    prepare: async (admin) => {
      const { layer } = await pushImage(admin, REPO, 't10');
      return { method: 'DELETE', path: `/v2/${REPO}/blobs/${layer.digest}`, okStatus: 202 };
    },
  },
];

const LEVEL_ORDER: Level[] = ['pull', 'push', 'delete'];

function expected(principal: Principal, level: Level): Outcome {
  switch (principal) {
    case 'no token':
    case 'expired JWT':
    case 'revoked token':
    case 'tampered JWT':
    case 'alg:none JWT':
      return 401;
    case 'anonymous':
      return level === 'base' || level === 'catalog' ? 'ok' : 401;
    case 'admin':
      return 'ok';
    default: {
      if (level === 'base' || level === 'catalog') return 'ok';
      const held: Record<string, number> = {
        'no-grant user': -1,
        'user removed from a pushing team': -1,
        puller: 0,
        pusher: 1,
        'pusher through a team': 1,
        deleter: 2,
        'puller in a deleting team': 2,
      };
      return held[principal]! >= LEVEL_ORDER.indexOf(level) ? 'ok' : 403;
    }
  }
}

function scopeFor(level: Level): string[] {
  switch (level) {
    case 'base':
      return [];
    case 'catalog':
      return ['registry:catalog:*'];
    case 'pull':
      return [`repository:${REPO}:pull`];
    case 'push':
      return [`repository:${REPO}:pull,push`];
    case 'delete':
      return [`repository:${REPO}:delete`];
  }
}

export const PRINCIPALS: Principal[] = [
  'no token',
  'anonymous',
  'no-grant user',
  'puller',
  'pusher',
  'deleter',
  'admin',
  'pusher through a team',
  'puller in a deleting team',
  'user removed from a pushing team',
  'expired JWT',
  'revoked token',
  'tampered JWT',
  'alg:none JWT',
];

/** Principals whose rights come (or came) from a team: [the team's grants, whether they leave it before the test]. */
const TEAMS: Partial<Record<Principal, { grants: Array<[string, AccessLevel]>; removed: boolean }>> = {
  'pusher through a team': { grants: [['team/*', 'push']], removed: false },
  'puller in a deleting team': { grants: [['team/**', 'delete']], removed: false },
  'user removed from a pushing team': { grants: [['team/*', 'push']], removed: true },
};

/**
 * The authorisation matrix: every principal × every endpoint, each expected outcome asserted.
 * `makeTarget` gives a fresh registry with auth on (called once per principal).
 */
export function authorizationMatrix(makeTarget: () => Promise<MatrixTarget>): void {
  for (const principal of PRINCIPALS) {
    it(`enforces access for ${principal} on all ${ENDPOINTS.length} endpoints`, async () => {
      const target = await makeTarget();
      const tokenFor = async (scopes: string[], credentials?: { name: string; token: string }) => {
        const query = scopes.map((scope) => `scope=${encodeURIComponent(scope)}`).join('&');
        const headers: Record<string, string> = credentials ? { authorization: `Basic ${Buffer.from(`${credentials.name}:${credentials.token}`).toString('base64')}` } : {};
        return target.request('GET', `/token?service=ocireg&${query}`, { headers });
      };
      const admin = await target.addUser(`admin-${Math.random().toString(36).slice(2, 8)}`, [], { admin: true });
      const adminToken = (await tokenFor([`repository:${REPO}:pull,push,delete`], admin)).body;
      const adminBearer = JSON.parse(adminToken.toString()).token as string;
      const asAdmin = (method: string, path: string, body?: Uint8Array | string, headers: Record<string, string> = {}) =>
        target.request(method, path, { headers: { ...headers, authorization: `Bearer ${adminBearer}` }, ...(body !== undefined ? { body } : {}) });

      const grants: Partial<Record<Principal, Array<[string, AccessLevel]>>> = {
        puller: [['team/*', 'pull']],
        pusher: [['team/*', 'push']],
        deleter: [['team/**', 'delete']],
        'puller in a deleting team': [['team/app', 'pull']],
        'tampered JWT': [['team/*', 'pull']],
      };
      let credentials: { name: string; token: string; tokenId: string } | undefined;
      if (!['no token', 'anonymous', 'alg:none JWT'].includes(principal)) {
        credentials = await target.addUser(`u-${Math.random().toString(36).slice(2, 8)}`, grants[principal] ?? [], { admin: principal === 'admin' });
      }
      const team = TEAMS[principal];
      if (team) {
        const teamName = `t-${Math.random().toString(36).slice(2, 8)}`;
        await target.addTeam(teamName, team.grants, [credentials!.name]);
        if (team.removed) await target.removeTeamMember(teamName, credentials!.name);
      }
      if (principal === 'revoked token') {
        await target.revokeToken(credentials!.tokenId);
        expect((await tokenFor([`repository:${REPO}:pull`], credentials)).status, 'a revoked token cannot log in').toBe(401);
      }

      const outcomes: string[] = [];
      const wanted: string[] = [];
      for (const endpoint of ENDPOINTS) {
        const request = await endpoint.prepare(asAdmin, target);
        let bearer: string | undefined;
        const scopes = scopeFor(endpoint.level);
        switch (principal) {
          case 'no token':
            break;
          case 'revoked token':
            // It cannot get a registry token (checked above; trying again per endpoint would trip the lock-out).
            break;
          case 'anonymous':
            bearer = JSON.parse((await tokenFor(scopes)).body.toString()).token;
            break;
          case 'expired JWT':
            bearer = await expiredJwt(JSON.parse((await tokenFor(scopes, credentials)).body.toString()).token, target.signingKeyPem);
            break;
          case 'tampered JWT':
            bearer = tamper(JSON.parse((await tokenFor(scopes, credentials)).body.toString()).token);
            break;
          case 'alg:none JWT':
            bearer = algNone(scopes);
            break;
          default:
            bearer = JSON.parse((await tokenFor(scopes, credentials)).body.toString()).token;
        }
        const response = await target.request(request.method, request.path, {
          headers: { ...(request.headers ?? {}), ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
          ...(request.body !== undefined ? { body: request.body } : {}),
        });
        const want = expected(principal, endpoint.level);
        wanted.push(`${endpoint.name}: ${want === 'ok' ? request.okStatus : want}`);
        outcomes.push(`${endpoint.name}: ${response.status}`);
        if (response.status === 401) expect(response.headers['www-authenticate'], endpoint.name).toMatch(/^Bearer realm="[^"]+\/token",service="ocireg"/);
      }
      expect(outcomes).toEqual(wanted);
    });
  }

  it('lets anyone pull a public repository but never push to it', async () => {
    const target = await makeTarget();
    const admin = await target.addUser(`root-${Math.random().toString(36).slice(2, 8)}`, [], { admin: true });
    const adminBearer = JSON.parse((await target.request('GET', '/token?scope=repository:pub/app:pull,push', { headers: { authorization: `Basic ${Buffer.from(`${admin.name}:${admin.token}`).toString('base64')}` } })).body.toString()).token;
    const asAdmin = (method: string, path: string, body?: Uint8Array | string, headers: Record<string, string> = {}) =>
      target.request(method, path, { headers: { ...headers, authorization: `Bearer ${adminBearer}` }, ...(body !== undefined ? { body } : {}) });
    await pushImage(asAdmin, 'pub/app', 'latest');
    await target.setPublic('pub/*');
    const anonymous = JSON.parse((await target.request('GET', '/token?scope=repository:pub/app:pull,push')).body.toString()).token;
    expect((await target.request('GET', '/v2/pub/app/manifests/latest', { headers: { authorization: `Bearer ${anonymous}` } })).status).toBe(200);
    expect((await target.request('POST', '/v2/pub/app/blobs/uploads/', { headers: { authorization: `Bearer ${anonymous}` } })).status).toBe(401);
    const catalog = await target.request('GET', '/v2/_catalog', { headers: { authorization: `Bearer ${JSON.parse((await target.request('GET', '/token?scope=registry:catalog:*')).body.toString()).token}` } });
    expect(JSON.parse(catalog.body.toString()).repositories).toEqual(['pub/app']);
  });

  it('falls back to an upload when the mount source is not pullable by the caller', async () => {
    const target = await makeTarget();
    const admin = await target.addUser(`root-${Math.random().toString(36).slice(2, 8)}`, [], { admin: true });
    const basic = (user: { name: string; token: string }) => ({ authorization: `Basic ${Buffer.from(`${user.name}:${user.token}`).toString('base64')}` });
    const adminBearer = JSON.parse((await target.request('GET', '/token?scope=repository:secret/x:pull,push', { headers: basic(admin) })).body.toString()).token;
    const asAdmin = (method: string, path: string, body?: Uint8Array | string, headers: Record<string, string> = {}) =>
      target.request(method, path, { headers: { ...headers, authorization: `Bearer ${adminBearer}` }, ...(body !== undefined ? { body } : {}) });
    const { layer } = await pushImage(asAdmin, 'secret/x', 'v1');
    const pusher = await target.addUser(`carol-${Math.random().toString(36).slice(2, 8)}`, [['team/*', 'push']]);
    const bearer = JSON.parse((await target.request('GET', `/token?scope=repository:team/app:pull,push&scope=repository:secret/x:pull`, { headers: basic(pusher) })).body.toString()).token;
    const mount = await target.request('POST', `/v2/team/app/blobs/uploads/?mount=${layer.digest}&from=secret/x`, { headers: { authorization: `Bearer ${bearer}` } });
    expect(mount.status).toBe(202);
    const auto = await target.request('POST', `/v2/team/app/blobs/uploads/?mount=${layer.digest}`, { headers: { authorization: `Bearer ${bearer}` } });
    expect(auto.status).toBe(202);
  });
}

/** The same claims, signed with the registry's own key, but expired an hour ago (past the 30 s clock tolerance). */
async function expiredJwt(valid: string, pem: string): Promise<string> {
  const [header, payload] = valid.split('.') as [string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  const kid = JSON.parse(Buffer.from(header, 'base64url').toString()).kid;
  const past = Math.floor(Date.now() / 1000) - 3600;
  return new SignJWT({ ...claims, iat: past - 300, nbf: past - 300, exp: past }).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid }).sign(await importPKCS8(pem, 'ES256'));
}

/** Makes itself admin with every action: the payload changes, the signature stays. */
function tamper(valid: string): string {
  const [header, payload, signature] = valid.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  claims.sub = 'admin';
  claims.access = (claims.access as Array<{ actions: string[] }>).map((entry) => ({ ...entry, actions: ['pull', 'push', 'delete', '*'] }));
  return `${header}.${base64url.encode(JSON.stringify(claims))}.${signature}`;
}

function algNone(scopes: string[]): string {
  const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
  const now = Math.floor(Date.now() / 1000);
  const access = scopes.map((scope) => {
    const [type, rest] = [scope.slice(0, scope.indexOf(':')), scope.slice(scope.indexOf(':') + 1)];
    return { type, name: rest.slice(0, rest.lastIndexOf(':')), actions: ['pull', 'push', 'delete', '*'] };
  });
  const payload = base64url.encode(JSON.stringify({ iss: 'ocireg', sub: 'admin', aud: 'ocireg', iat: now, nbf: now, exp: now + 300, access }));
  return `${header}.${payload}.`;
}
