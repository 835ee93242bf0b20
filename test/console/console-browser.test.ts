import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_ASSETS } from '../../lib/console/assets.ts';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { requireTools, runOk } from '../support/tools.ts';

/**
 * The web console in a real browser (Debian chromium, headless, driven by puppeteer-core) against
 * `ocireg serve --auth`: sign in, browse, search, a denied repository, the anonymous view of a public one.
 */

let server: RegistryServer;
let browser: Browser;
const users: Record<string, string> = {};
const ocireg = (...args: string[]) => runOk(process.execPath, [OCIREG_CLI, ...args, '--data-dir', server.dataDir]);

const sha256 = (bytes: Uint8Array) => 'sha256:' + createHash('sha256').update(bytes).digest('hex');

/** Pushes a one-layer image through the API with `user`'s token, as any client would. */
async function push(user: string, name: string, tag: string): Promise<void> {
  const basic = 'Basic ' + Buffer.from(`${user}:${users[user]}`).toString('base64');
  const tokenRes = await fetch(`${server.url}/token?service=ocireg&scope=repository:${name}:pull,push`, { headers: { authorization: basic } });
  const { token } = (await tokenRes.json()) as { token: string };
  const auth = { authorization: `Bearer ${token}` };
  const blob = async (bytes: Uint8Array) => {
    const digest = sha256(bytes);
    const res = await fetch(`${server.url}/v2/${name}/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: new Uint8Array(bytes) });
    expect(res.status).toBe(201);
    return { digest, size: bytes.byteLength };
  };
  const config = await blob(new TextEncoder().encode(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })));
  const layer = await blob(gzipSync(Buffer.from(`${name}:${tag}`)));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
  });
  const res = await fetch(`${server.url}/v2/${name}/manifests/${tag}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
  expect(res.status).toBe(201);
}

async function open(path: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(server.url + path);
  return page;
}

async function signIn(page: Page, user: string, secret: string): Promise<void> {
  await page.goto(server.url + '/#/sign-in');
  await page.waitForSelector('#sign-in');
  await page.type('#user', user);
  await page.type('#secret', secret);
  await page.click('#sign-in button[type=submit]');
}

const repositoryNames = (page: Page) => page.$$eval('#repositories tbody tr:not([hidden])', (rows) => rows.map((r) => (r as HTMLElement).dataset.name));

beforeAll(async () => {
  await requireTools('chromium');
  server = await startRegistryServer({ serveArgs: ['--auth'] });
  await ocireg('users', 'add', 'alice');
  await ocireg('grants', 'set', 'alice', 'team/**', 'push');
  await ocireg('grants', 'set', 'alice', 'pub/**', 'push');
  users.alice = (await ocireg('tokens', 'create', 'alice')).stdout.trim();
  await ocireg('users', 'add', 'bob');
  await ocireg('grants', 'set', 'bob', 'other/**', 'push');
  users.bob = (await ocireg('tokens', 'create', 'bob')).stdout.trim();
  await ocireg('repos', 'public', 'pub/**');
  await push('alice', 'team/app', 'v1');
  await push('alice', 'team/app', 'v2');
  await push('alice', 'team/web', 'latest');
  await push('alice', 'pub/tool', '1.0');
  browser = await puppeteer.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe('web console in chromium against ocireg serve --auth', () => {
  it('serves its assets with a CSP that forbids inline script, under 100 KB gzipped', async () => {
    const res = await fetch(server.url + '/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await res.text()).not.toMatch(/<script>/);
    const gzipped = Object.values(CONSOLE_ASSETS).reduce((sum, asset) => sum + gzipSync(asset.body).byteLength, 0);
    expect(gzipped).toBeLessThan(100 * 1024);
    expect((await fetch(server.url + '/console/nope.js')).status).toBe(404);
    expect((await fetch(server.url + '/console/app.js', { method: 'POST' })).status).toBe(405);
  });

  it('anonymous visitors see public repositories only', async () => {
    const page = await open('/');
    await page.waitForSelector('#repositories');
    expect(await repositoryNames(page)).toEqual(['pub/tool']);
    await page.close();
  });

  it('signs in, lists, searches and browses a repository; signs out', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await signIn(page, 'alice', users.alice!);
    await page.waitForSelector('#sign-out');
    await page.waitForSelector('#repositories');
    expect(await repositoryNames(page)).toEqual(['pub/tool', 'team/app', 'team/web']);
    await page.waitForFunction(() => document.querySelector('#repositories tr[data-name="team/app"] td.num')?.textContent === '2');
    await page.type('#search', 'web');
    expect(await repositoryNames(page)).toEqual(['team/web']);
    await page.goto(server.url + '/#/r/team/app');
    await page.waitForSelector('#tags');
    await page.waitForFunction(() => [...document.querySelectorAll('#tags td.num')].every((td) => td.textContent!.endsWith('B')));
    const pulls = await page.$$eval('#tags code', (codes) => codes.map((c) => c.textContent));
    expect(pulls).toEqual([`docker pull ${server.host}/team/app:v1`, `docker pull ${server.host}/team/app:v2`]);
    expect(await page.evaluate(() => document.cookie)).toBe('');
    await page.click('#sign-out');
    await page.waitForSelector('#sign-in-link');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a repository the user may not pull is refused by the server, and the sign-in with a wrong token fails', async () => {
    const page = await browser.newPage();
    await signIn(page, 'bob', users.bob!);
    await page.waitForSelector('#repositories');
    expect(await repositoryNames(page)).toEqual(['pub/tool']);
    await page.goto(server.url + '/#/r/team/app');
    await page.waitForSelector('[role=alert]');
    expect(await page.$eval('[role=alert]', (e) => e.textContent)).toMatch(/^Cannot show team\/app: /);
    expect(await page.$('#tags')).toBeNull();
    await page.evaluate(() => sessionStorage.clear());
    await signIn(page, 'bob', 'wrong');
    await page.waitForFunction(() => document.querySelector('#sign-in [role=alert]')?.textContent?.startsWith('Sign-in failed'));
    await page.close();
  });
});
