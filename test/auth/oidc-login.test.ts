import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { githubActionsClaims, startOidcIssuer, tamperIdToken, unsignedIdToken, type OidcIssuer } from '../support/oidc-issuer.ts';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { runOk, runTool } from '../support/tools.ts';

/**
 * CI logins with OIDC ID tokens through the production path: `ocireg serve --auth` (its real token endpoint),
 * trusts made with the CLI, tokens from a real issuer on loopback (discovery, JWKS, ES256 and RS256 keys).
 */

const AUDIENCE = 'https://registry.test';
let issuer: OidcIssuer;
let stranger: OidcIssuer;
let server: RegistryServer;
const ocireg = (...args: string[]) => runOk(process.execPath, [OCIREG_CLI, ...args, '--data-dir', server.dataDir]);

beforeAll(async () => {
  [issuer, stranger] = await Promise.all([startOidcIssuer(), startOidcIssuer()]);
  server = await startRegistryServer({ serveArgs: ['--auth'] });
  await ocireg('trust', 'add', 'acme-main', '--issuer', issuer.url, '--audience', AUDIENCE, '--claim', 'repository=acme/*', '--claim', 'ref=refs/heads/main', '--grant', 'acme/*=push');
}, 60_000);
afterAll(async () => {
  await server?.stop();
  await Promise.all([issuer?.stop(), stranger?.stop()]);
});

interface TokenAnswer {
  status: number;
  body: Record<string, unknown> & { errors?: Array<{ code: string; message: string }> };
}

/** GET /token with Basic oidc:<id token>, as docker sends it. */
async function getToken(idToken: string, scope = 'repository:acme/app:pull,push', extra = ''): Promise<TokenAnswer> {
  const response = await fetch(`${server.url}/token?service=ocireg&scope=${encodeURIComponent(scope)}${extra}`, {
    headers: { authorization: `Basic ${Buffer.from(`oidc:${idToken}`).toString('base64')}` },
  });
  return { status: response.status, body: (await response.json()) as TokenAnswer['body'] };
}

/** POST /token grant_type=password, as containerd and buildkit send it. */
async function postToken(idToken: string, scope: string): Promise<TokenAnswer> {
  const form = new URLSearchParams({ grant_type: 'password', username: 'oidc', password: idToken, service: 'ocireg', scope, client_id: 'buildkit' });
  const response = await fetch(`${server.url}/token`, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  return { status: response.status, body: (await response.json()) as TokenAnswer['body'] };
}

const actions = (answer: TokenAnswer) => (decodeJwt(answer.body.token as string).access as Array<{ actions: string[] }>)[0]!.actions;
const main = () => githubActionsClaims('acme/app', 'refs/heads/main', AUDIENCE);

function expectRefused(answer: TokenAnswer, message: RegExp) {
  expect(answer.status).toBe(401);
  expect(answer.body.errors?.[0]?.code).toBe('UNAUTHORIZED');
  expect(answer.body.errors?.[0]?.message).toMatch(message);
}

describe('OIDC ID tokens at the token endpoint of ocireg serve --auth', () => {
  it('accepts a GitHub-Actions-shaped ES256 token, grants exactly the trust\'s grants and records the subject', async () => {
    const idToken = await issuer.sign(main());
    const answer = await getToken(idToken, 'repository:acme/app:pull,push,delete', '&offline_token=true&client_id=docker');
    expect(answer.status).toBe(200);
    expect(actions(answer)).toEqual(['pull', 'push']);
    expect(answer.body.refresh_token).toBeUndefined();
    expect(decodeJwt(answer.body.token as string).sub).toBe('oidc:acme-main:repo:acme/app:ref:refs/heads/main');
    expect(actions(await getToken(idToken, 'repository:other/app:pull,push'))).toEqual([]);
    expect(actions(await getToken(idToken, 'repository:acme/app/nested:pull'))).toEqual([]);
  });

  it('accepts an RS256 token through POST grant_type=password', async () => {
    const answer = await postToken(await issuer.sign(main(), { alg: 'RS256' }), 'repository:acme/tool:pull,push');
    expect(answer.status).toBe(200);
    expect(actions(answer)).toEqual(['pull', 'push']);
  });

  it('lets a registry token of an ID token use what the trust grants, and nothing else', async () => {
    const bearer = (await getToken(await issuer.sign(main()), 'repository:acme/app:pull,push')).body.token as string;
    const upload = await fetch(`${server.url}/v2/acme/app/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${bearer}` } });
    expect(upload.status).toBe(202);
    const elsewhere = (await getToken(await issuer.sign(main()), 'repository:other/app:pull,push')).body.token as string;
    const denied = await fetch(`${server.url}/v2/other/app/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${elsewhere}` } });
    expect(denied.status).toBe(403);
  });

  it('refuses a token for another audience', async () => {
    expectRefused(await getToken(await issuer.sign({ ...main(), aud: 'https://elsewhere.test' })), /no trust of .* accepts this ID token \(acme-main: audience "https:\/\/elsewhere.test" is not the trust's\)/);
  });

  it('refuses an expired token (beyond the 60 s clock skew) and accepts one just inside it', async () => {
    expectRefused(await getToken(await issuer.sign(main(), { expiresIn: -120 })), /ID token refused: it has expired/);
    expect((await getToken(await issuer.sign(main(), { expiresIn: -20 }))).status).toBe(200);
  });

  it('refuses a token that is not valid yet (nbf beyond the skew)', async () => {
    expectRefused(await getToken(await issuer.sign(main(), { notBefore: 300, expiresIn: 600 })), /not valid yet/);
  });

  it('refuses a token of an issuer no trust names, without fetching anything from it', async () => {
    expectRefused(await getToken(await stranger.sign(main())), /no trust for the ID token's issuer "http:\/\/127\.0\.0\.1:\d+"; an administrator adds one with ocireg trust add/);
    expect(stranger.requests('/.well-known/openid-configuration') + stranger.requests('/jwks')).toBe(0);
  });

  it('refuses a token whose claims do not match every rule of the trust', async () => {
    expectRefused(await getToken(await issuer.sign(githubActionsClaims('acme/app', 'refs/heads/feature', AUDIENCE))), /acme-main: claim ref="refs\/heads\/feature" does not match/);
    expectRefused(await getToken(await issuer.sign(githubActionsClaims('evil/app', 'refs/heads/main', AUDIENCE))), /claim repository="evil\/app" does not match/);
    const { repository: _dropped, ...withoutRepository } = main();
    expectRefused(await getToken(await issuer.sign(withoutRepository)), /claim repository is missing/);
  });

  it('refuses a tampered token and an unsigned (alg: none) one', async () => {
    const tampered = tamperIdToken(await issuer.sign(githubActionsClaims('acme/app', 'refs/heads/feature', AUDIENCE)), (claims) => {
      claims.ref = 'refs/heads/main';
      claims.sub = 'repo:acme/app:ref:refs/heads/main';
    });
    expectRefused(await getToken(tampered), /its signature does not verify/);
    const now = Math.floor(Date.now() / 1000);
    expectRefused(await getToken(unsignedIdToken({ ...main(), iss: issuer.url, iat: now, nbf: now, exp: now + 300 })), /its algorithm is not accepted/);
  });

  it('refuses a token signed by a key the issuer does not publish', async () => {
    expectRefused(await getToken(await issuer.sign(main(), { unpublished: true })), /signed with a key the issuer does not publish/);
  });

  it('follows a key rotation: a new kid in the JWKS is fetched once and verifies', async () => {
    expect((await getToken(await issuer.sign(main()))).status).toBe(200);
    const fetched = issuer.requests('/jwks');
    await issuer.rotate('ES256');
    const answer = await getToken(await issuer.sign(main()));
    expect(answer.status).toBe(200);
    expect(issuer.requests('/jwks')).toBe(fetched + 1);
    expect((await getToken(await issuer.sign(main()))).status).toBe(200);
    expect(issuer.requests('/jwks')).toBe(fetched + 1);
  });

  it('limits the key fetches a flood of unknown kids can cause', async () => {
    const before = issuer.requests('/jwks');
    for (let i = 0; i < 15; i++) expectRefused(await getToken(await issuer.sign(main(), { kid: `made-up-${i}` })), /key the issuer does not publish/);
    expect(issuer.requests('/jwks') - before).toBeLessThanOrEqual(3);
    expect((await getToken(await issuer.sign(main()))).status).toBe(200);
  });

  it('stops accepting tokens once the trust is removed', async () => {
    await ocireg('trust', 'add', 'temporary', '--issuer', issuer.url, '--audience', 'temp', '--claim', 'repository=acme/app', '--grant', 'temp/**=pull');
    const idToken = await issuer.sign({ ...main(), aud: 'temp' });
    expect(actions(await getToken(idToken, 'repository:temp/x:pull'))).toEqual(['pull']);
    await ocireg('trust', 'rm', 'temporary');
    expectRefused(await getToken(idToken, 'repository:temp/x:pull'), /audience "temp" is not the trust's/);
  });
});

describe('ocireg trust', () => {
  const cli = (...args: string[]) => runTool(process.execPath, [OCIREG_CLI, ...args, '--data-dir', server.dataDir]);

  it('lists trusts with their issuer, audience, claims and grants', async () => {
    expect((await ocireg('trust', 'list')).stdout).toContain(`acme-main\t${issuer.url}\t${AUDIENCE}\trepository=acme/* ref=refs/heads/main\tacme/*=push\n`);
  });

  it('refuses an http issuer that is not loopback, a trust without claims or grants, and the user name oidc', async () => {
    expect(await cli('trust', 'add', 'x', '--issuer', 'http://ci.example.com', '--audience', 'a', '--claim', 'a=b', '--grant', 'x/*=pull')).toMatchObject({ code: 2, stderr: expect.stringMatching(/--issuer must be an https:\/\/ URL/) });
    expect(await cli('trust', 'add', 'x', '--issuer', 'https://ci.example.com', '--audience', 'a', '--grant', 'x/*=pull')).toMatchObject({ code: 2, stderr: expect.stringMatching(/at least one --claim/) });
    expect(await cli('trust', 'add', 'x', '--issuer', 'https://ci.example.com', '--audience', 'a', '--claim', 'a=b')).toMatchObject({ code: 2, stderr: expect.stringMatching(/at least one --grant/) });
    expect(await cli('trust', 'add', 'x', '--issuer', 'https://ci.example.com', '--audience', 'a', '--claim', 'a=b', '--grant', 'x/*=write')).toMatchObject({ code: 2, stderr: expect.stringMatching(/pull, push, delete, admin/) });
    expect(await cli('trust', 'add', 'acme-main', '--issuer', 'https://ci.example.com', '--audience', 'a', '--claim', 'a=b', '--grant', 'x/*=pull')).toMatchObject({ code: 1, stderr: expect.stringMatching(/exists already/) });
    expect(await cli('users', 'add', 'oidc')).toMatchObject({ code: 2, stderr: expect.stringMatching(/reserved/) });
    expect(await cli('trust', 'rm', 'nothing')).toMatchObject({ code: 1, stderr: expect.stringMatching(/no trust nothing/) });
  });
});
