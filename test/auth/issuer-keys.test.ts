import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IssuerKeys } from '../../lib/auth/issuer-keys.ts';
import { verifyIdToken } from '../../lib/auth/oidc-login.ts';
import type { Trust } from '../../lib/auth/trust.ts';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.ts';

/** The issuer key cache against a real loopback issuer, on a clock the test moves. */

let issuer: OidcIssuer;
let now: number;
let keys: IssuerKeys;
let trusts: Trust[];

beforeEach(async () => {
  issuer = await startOidcIssuer();
  now = Date.now();
  keys = new IssuerKeys({ now: () => now });
  trusts = [{ name: 'ci', issuer: issuer.url, audience: 'reg', claims: [{ claim: 'repository', glob: 'acme/*' }], grants: [{ glob: 'acme/*', level: 'push' }], createdAt: 0 }];
});
afterEach(async () => {
  await issuer.stop();
});

/** Tokens valid for two hours, so the moved clock stays inside them. */
const token = (options: Parameters<OidcIssuer['sign']>[1] = {}) => issuer.sign({ aud: 'reg', sub: 'job', repository: 'acme/app' }, { expiresIn: 7200, ...options });
const verify = async (idToken: string) => verifyIdToken(idToken, trusts, keys, now);
const fetches = () => issuer.requests('/jwks');

describe('IssuerKeys', () => {
  it('fetches discovery and keys once for many tokens, also when they arrive together', async () => {
    await Promise.all(Array.from({ length: 10 }, async () => verify(await token())));
    await verify(await token({ alg: 'RS256' }));
    expect(issuer.requests('/.well-known/openid-configuration')).toBe(1);
    expect(fetches()).toBe(1);
  });

  it('fetches again after 10 minutes, so a withdrawn key stops verifying', async () => {
    const oldToken = await token();
    await verify(oldToken);
    const newKid = await issuer.rotate('ES256');
    issuer.withdraw(JSON.parse(Buffer.from(oldToken.split('.')[0]!, 'base64url').toString()).kid);
    now += 9 * 60_000;
    await expect(verify(oldToken)).resolves.toMatchObject({ subject: 'oidc:ci:job' });
    now += 2 * 60_000;
    await expect(verify(oldToken)).rejects.toThrow(/key the issuer does not publish/);
    expect(newKid).toMatch(/^es256-/);
    await expect(verify(await token())).resolves.toMatchObject({ grants: [{ glob: 'acme/*', level: 'push' }] });
  });

  it('keeps the cached keys when a periodic refresh fails (issuer briefly down)', async () => {
    const idToken = await token();
    await verify(idToken);
    await issuer.stop();
    now += 11 * 60_000;
    await expect(verify(idToken)).resolves.toMatchObject({ subject: 'oidc:ci:job' });
    issuer = await startOidcIssuer();
  });

  it('allows 3 fetches for unknown kids at once, then one a minute', async () => {
    await verify(await token());
    for (let i = 0; i < 10; i++) await expect(verify(await token({ kid: `unknown-${i}` }))).rejects.toThrow(/does not publish/);
    expect(fetches()).toBe(3);
    now += 60_000;
    await expect(verify(await token({ kid: 'unknown-late' }))).rejects.toThrow(/does not publish/);
    await expect(verify(await token({ kid: 'unknown-later' }))).rejects.toThrow(/does not publish/);
    expect(fetches()).toBe(4);
    const rotated = await issuer.rotate('RS256');
    now += 60_000;
    await expect(verify(await token({ alg: 'RS256' }))).resolves.toMatchObject({ subject: 'oidc:ci:job' });
    expect(fetches()).toBe(5);
    expect(rotated).toMatch(/^rs256-/);
  });

  it('refuses an issuer whose discovery document names another issuer', async () => {
    const impostor: Trust[] = [{ ...trusts[0]!, issuer: `${issuer.url}/` }];
    const idToken = await token({ iss: `${issuer.url}/` });
    await expect(verifyIdToken(idToken, impostor, keys, now)).rejects.toThrow(/names issuer "http:\/\/127\.0\.0\.1:\d+", not http:\/\/127\.0\.0\.1:\d+\//);
  });
});
