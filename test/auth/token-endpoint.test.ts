import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { authRegistry } from '../support/auth-registry.ts';
import { call } from '../support/app-client.ts';

describe('token endpoint', () => {
  it('challenges GET /v2/ without a token with a Bearer realm and service, no scope', async () => {
    const { call } = await authRegistry();
    const response = await call('GET', '/v2/', undefined);
    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer realm="http://registry.test/token",service="ocireg"');
    expect(response.json().errors[0].code).toBe('UNAUTHORIZED');
  });

  it('challenges a repository request with its scope', async () => {
    const { call } = await authRegistry();
    const response = await call('POST', '/v2/team/app/blobs/uploads/', undefined);
    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer realm="http://registry.test/token",service="ocireg",scope="repository:team/app:pull,push"');
  });

  it('issues a JWT with the Docker claims for valid credentials (GET, Basic)', async () => {
    const { addUser, getToken } = await authRegistry();
    const alice = await addUser('alice', [['team/*', 'push']]);
    const response = await getToken(['repository:team/app:pull,push'], alice, '&account=alice&client_id=docker');
    expect(response.status).toBe(200);
    const body = response.json();
    expect(body.token).toBe(body.access_token);
    expect(body.expires_in).toBeGreaterThanOrEqual(60);
    expect(new Date(body.issued_at).toISOString()).toBe(body.issued_at);
    expect(body.refresh_token).toBeUndefined();
    const claims = decodeJwt(body.token);
    expect(claims).toMatchObject({ iss: 'ocireg', sub: 'alice', aud: 'ocireg', access: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }] });
    for (const claim of ['exp', 'nbf', 'iat', 'jti']) expect(claims[claim]).toBeDefined();
    expect(decodeProtectedHeader(body.token)).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    expect(decodeProtectedHeader(body.token).kid).toBeTruthy();
  });

  it('grants only the subset the caller holds, without an error', async () => {
    const { addUser, getToken } = await authRegistry();
    const bob = await addUser('bob', [['team/app', 'pull']]);
    const response = await getToken(['repository:team/app:pull,push,delete', 'repository:other/x:pull'], bob);
    expect(response.status).toBe(200);
    expect(decodeJwt(response.json().token).access).toEqual([
      { type: 'repository', name: 'team/app', actions: ['pull'] },
      { type: 'repository', name: 'other/x', actions: [] },
    ]);
  });

  it('refuses a wrong password with 401 UNAUTHORIZED', async () => {
    const { addUser, getToken } = await authRegistry();
    const alice = await addUser('alice');
    const response = await getToken([], { name: 'alice', token: alice.token.slice(0, -1) + (alice.token.endsWith('A') ? 'B' : 'A') });
    expect(response.status).toBe(401);
    expect(response.json().errors[0].code).toBe('UNAUTHORIZED');
  });

  it("refuses another user's token", async () => {
    const { addUser, getToken } = await authRegistry();
    const alice = await addUser('alice');
    await addUser('bob');
    expect((await getToken([], { name: 'bob', token: alice.token })).status).toBe(401);
  });

  it('returns a refresh token for offline_token=true that works through POST grant_type=refresh_token (docker login)', async () => {
    const { addUser, getToken, app } = await authRegistry();
    const alice = await addUser('alice', [['team/**', 'push']]);
    const login = await getToken([], alice, '&offline_token=true&client_id=docker');
    const refresh = login.json().refresh_token as string;
    expect(refresh).toBeTruthy();
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh, service: 'ocireg', client_id: 'docker', scope: 'repository:team/a/b:pull,push' });
    const response = await call(app, 'POST', '/token', { body: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(response.status).toBe(200);
    expect(decodeJwt(response.json().access_token).access).toEqual([{ type: 'repository', name: 'team/a/b', actions: ['pull', 'push'] }]);
  });

  it('refuses a refresh token used as a bearer token, and a bearer token used as a refresh token', async () => {
    const { addUser, getToken, app, call: callWith } = await authRegistry();
    const alice = await addUser('alice', [['**', 'pull']]);
    const login = (await getToken(['repository:a:pull'], alice, '&offline_token=true')).json();
    expect((await callWith('GET', '/v2/', login.refresh_token)).status).toBe(401);
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: login.token });
    expect((await call(app, 'POST', '/token', { body: form.toString() })).status).toBe(401);
  });

  it('accepts POST grant_type=password (containerd, buildkit)', async () => {
    const { addUser, app } = await authRegistry();
    const alice = await addUser('alice', [['team/*', 'pull']]);
    const form = new URLSearchParams({ grant_type: 'password', username: 'alice', password: alice.token, service: 'ocireg', scope: 'repository:team/app:pull', client_id: 'containerd' });
    const response = await call(app, 'POST', '/token', { body: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(response.status).toBe(200);
    expect(decodeJwt(response.json().token).access).toEqual([{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
  });

  it('stops a revoked token from logging in or refreshing', async () => {
    const { addUser, getToken, identities, app } = await authRegistry();
    const alice = await addUser('alice');
    const refresh = (await getToken([], alice, '&offline_token=true')).json().refresh_token;
    await identities.deleteToken(alice.tokenId);
    expect((await getToken([], alice)).status).toBe(401);
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh });
    expect((await call(app, 'POST', '/token', { body: form.toString() })).status).toBe(401);
  });

  it('refuses an expired access token', async () => {
    const { addUser, getToken } = await authRegistry();
    const alice = await addUser('alice', [], { expiresAt: Date.now() - 1000 });
    expect((await getToken([], alice)).status).toBe(401);
  });

  it('locks out a user after repeated failures with 429 TOOMANYREQUESTS, even for the right password', async () => {
    const { addUser, getToken } = await authRegistry({ maxFailures: 3 });
    const alice = await addUser('alice');
    for (let i = 0; i < 3; i++) expect((await getToken([], { name: 'alice', token: 'wrong' })).status).toBe(401);
    const locked = await getToken([], alice);
    expect(locked.status).toBe(429);
    expect(locked.json().errors[0].code).toBe('TOOMANYREQUESTS');
    expect(locked.headers['retry-after']).toBe('900');
  });

  it('lets the lock-out expire after the window', async () => {
    let now = Date.now();
    const { addUser, getToken } = await authRegistry({ maxFailures: 2, now: () => now });
    const alice = await addUser('alice');
    for (let i = 0; i < 2; i++) await getToken([], { name: 'alice', token: 'wrong' });
    expect((await getToken([], alice)).status).toBe(429);
    now += 901_000;
    expect((await getToken([], alice)).status).toBe(200);
  });

  it('issues an anonymous token without credentials, granting pull on public repositories only', async () => {
    const { getToken, identities } = await authRegistry();
    await identities.setPublic('public/*', true);
    const response = await getToken(['repository:public/app:pull,push', 'repository:private/app:pull']);
    expect(response.status).toBe(200);
    const claims = decodeJwt(response.json().token);
    expect(claims.sub).toBe('');
    expect(claims.access).toEqual([
      { type: 'repository', name: 'public/app', actions: ['pull'] },
      { type: 'repository', name: 'private/app', actions: [] },
    ]);
  });
});
