import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLICY_CACHE_MS } from '../../lib/registry/policy-cache.ts';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { requireTools, runOk } from '../support/tools.ts';
import {
  launchChromium,
  pushImage,
  pushIndex,
  pushReferrer,
  servedGzipBytes,
  show,
  signIn,
  tableText,
  visibleRepositories,
  watchedPage,
  type Pushed,
  type Target,
  type Watched,
} from './console-fixtures.ts';

/**
 * The web console in a real browser (Debian chromium, headless, driven by puppeteer-core) against `ocireg serve
 * --auth` and `ocireg serve` without auth: sign in, browse, search, the tag page, denied views and a denied action,
 * rollback, delete, the anonymous view of a public repository, phone width and keyboard use.
 */

let browser: Browser;
const opened: Watched[] = [];

async function page(): Promise<Watched> {
  const watched = await watchedPage(browser);
  opened.push(watched);
  return watched;
}

/** Nothing failed in the page and it asked nothing of any other origin. */
function expectClean(watched: Watched, url: string): void {
  expect(watched.errors).toEqual([]);
  expect(watched.responses.filter((r) => !r.startsWith(url + '/'))).toEqual([]);
}

async function digestOf(target: Target & { token?: string }, name: string, tag: string): Promise<number | string> {
  const res = await fetch(`${target.url}/v2/${name}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json', ...(target.token ? { authorization: `Bearer ${target.token}` } : {}) },
  });
  return res.ok ? res.headers.get('docker-content-digest')! : res.status;
}

beforeAll(async () => {
  await requireTools('chromium');
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
});

describe('web console in chromium against ocireg serve --auth', () => {
  let server: RegistryServer;
  const secrets: Record<string, string> = {};
  const as = (name: string): Target => ({ url: server.url, user: { name, secret: secrets[name]! } });
  const ocireg = (...args: string[]) => runOk(process.execPath, [OCIREG_CLI, ...args, '--data-dir', server.dataDir]);
  let v1: { first: Pushed; second: Awaited<ReturnType<typeof pushImage>> };
  let policySetAt: number;

  /** A page signed in as `user`, then moved to `route`. */
  async function signedIn(user: string, route: string): Promise<Watched> {
    const w = await page();
    await signIn(w.page, server.url, user, secrets[user]!);
    await w.page.waitForSelector('#repositories');
    await show(w.page, server.url, route);
    return w;
  }

  async function adminToken(name: string): Promise<string> {
    const basic = 'Basic ' + Buffer.from(`alice:${secrets.alice}`).toString('base64');
    const res = await fetch(`${server.url}/token?service=ocireg&scope=repository:${name}:pull`, { headers: { authorization: basic } });
    return ((await res.json()) as { token: string }).token;
  }

  beforeAll(async () => {
    server = await startRegistryServer({ serveArgs: ['--auth'] });
    for (const [user, grants] of Object.entries({ alice: [['team/**', 'delete'], ['pub/**', 'push']], bob: [['other/**', 'push']], carol: [['team/**', 'pull']] })) {
      await ocireg('users', 'add', user);
      for (const [glob, level] of grants) await ocireg('grants', 'set', user, glob!, level!);
      secrets[user] = (await ocireg('tokens', 'create', user)).stdout.trim();
    }
    await ocireg('repos', 'public', 'pub/**');
    const alice = as('alice');
    v1 = { first: await pushImage(alice, 'team/app', 'v1', { seed: 'first', layerSizes: [3000, 5000] }), second: await pushImage(alice, 'team/app', 'v1', { seed: 'second', layerSizes: [4096, 1024] }) };
    await pushImage(alice, 'team/app', 'v2', { seed: 'v2' });
    await pushIndex(alice, 'team/app', 'multi', [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ]);
    await pushReferrer(alice, 'team/app', v1.second, 'application/vnd.dev.cosign.artifact.sig.v1+json');
    await pushReferrer(alice, 'team/app', v1.second, 'application/spdx+json');
    await pushImage(alice, 'team/web', 'latest');
    await pushImage(alice, 'team/locked', 'v1', { seed: 'a' });
    await pushImage(alice, 'team/locked', 'v1', { seed: 'b' });
    await pushImage(alice, 'pub/tool', '1.0');
    await pushImage(alice, 'pub/tool', 'doomed', { seed: 'doomed' });
    await ocireg('policy', 'set', 'team/app', '--keep-last', '5', '--protect', 'v*', '--quota', '1GiB');
    await ocireg('policy', 'set', 'team/locked', '--immutable');
    policySetAt = Date.now();
  }, 180_000);

  afterAll(async () => {
    for (const { page } of opened.splice(0)) await page.close().catch(() => undefined);
    await server?.stop();
  });

  it('serves its assets with a CSP that forbids inline script, ≤ 100 KB gzipped as served', async () => {
    const res = await fetch(server.url + '/');
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await res.text();
    expect(html).not.toMatch(/<script>|<script[^>]*>[^<]/);
    expect(html).not.toMatch(/https?:\/\//);
    const gzipped = await servedGzipBytes(server.url);
    console.log(`console assets: ${gzipped} bytes gzipped`);
    expect(gzipped).toBeLessThanOrEqual(100 * 1024);
    expect(await (await fetch(server.url + '/console/')).text()).toBe(html);
    expect((await fetch(server.url + '/console/nope.js')).status).toBe(404);
    expect((await fetch(server.url + '/console/app.js', { method: 'POST' })).status).toBe(405);
  });

  it('shows anonymous visitors the public repositories only, read-only', async () => {
    const w = await page();
    await w.page.goto(server.url + '/');
    await w.page.waitForSelector('#repositories');
    expect(await visibleRepositories(w.page)).toEqual(['pub/tool']);
    await show(w.page, server.url, '#/tag/pub/tool:1.0');
    await w.page.waitForSelector('#history');
    expect(await w.page.$('#rollback-step')).toBeNull();
    expect(await w.page.$('#delete-tag')).toBeNull();
    await show(w.page, server.url, '#/r/team/app');
    await w.page.waitForSelector('[role=alert]');
    expect(await w.page.$eval('[role=alert]', (e) => e.textContent)).toMatch(/^Cannot show team\/app: .*\((UNAUTHORIZED|DENIED), 40[13]\)$/);
    expectClean(w, server.url);
  });

  it('signs in, lists repositories with tag count, size and last push, searches, and signs out', async () => {
    const w = await page();
    await signIn(w.page, server.url, 'alice', secrets.alice!);
    await w.page.waitForSelector('#sign-out');
    await w.page.waitForSelector('#repositories');
    expect(await visibleRepositories(w.page)).toEqual(['pub/tool', 'team/app', 'team/locked', 'team/web']);
    await w.page.waitForFunction(() => document.querySelectorAll('#repositories tr[data-loaded]').length === 4);
    const rows = Object.fromEntries((await tableText(w.page, 'repositories')).map(([name, ...rest]) => [name, rest]));
    expect(rows['team/app']![0]).toBe('3');
    expect(rows['team/app']![1]).toMatch(/^\d+(\.\d)? KB$/);
    expect(rows['team/app']![2]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d$/);
    expect(rows['team/web']!.slice(0, 1)).toEqual(['1']);
    await w.page.type('#search', 'WEB');
    expect(await visibleRepositories(w.page)).toEqual(['team/web']);
    await w.page.type('#search', 'x');
    expect(await visibleRepositories(w.page)).toEqual([]);
    expect(await w.page.$eval('.empty[role=status]', (e) => e.textContent)).toBe('No repository matches “WEBx”.');
    expect(await w.page.evaluate(() => document.cookie)).toBe('');
    await w.page.click('#sign-out');
    await w.page.waitForSelector('#sign-in-link');
    expect(await w.page.evaluate(() => sessionStorage.length)).toBe(0);
    await w.page.waitForFunction(() => document.querySelectorAll('#repositories tbody tr').length === 1);
    expectClean(w, server.url);
  });

  it('shows a repository: digest, size, platforms, pushed, last pulled, pushed by, and the docker pull command', async () => {
    // A client pulls v2 (a manifest GET records the pull).
    const pulled = await fetch(`${server.url}/v2/team/app/manifests/v2`, { headers: { authorization: `Bearer ${await adminToken('team/app')}`, accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(pulled.status).toBe(200);
    const w = await signedIn('alice', '#/r/team/app');
    await w.page.waitForSelector('#tags');
    await w.page.waitForFunction(() => [...document.querySelectorAll('#tags tbody tr')].every((r) => !r.textContent!.includes('…')));
    const rows = Object.fromEntries((await tableText(w.page, 'tags')).map(([tag, ...rest]) => [tag, rest]));
    expect(Object.keys(rows)).toEqual(['multi', 'v1', 'v2']);
    const [digest, size, platforms, pushed, lastPulled, by, pull] = rows.v1!;
    expect(digest).toBe(v1.second.digest.slice(7, 19));
    // The manifest, its config and its layers (4096 + 1024 bytes).
    expect(size).toBe(((v1.second.size + v1.second.config.size + 4096 + 1024) / 1024).toFixed(1) + ' KB');
    expect(platforms).toBe('linux/amd64');
    expect(pushed).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d$/);
    expect(lastPulled).toBe('—');
    expect(by).toBe('alice');
    expect(pull).toBe(`docker pull ${server.host}/team/app:v1Copy`);
    expect(rows.multi![2]).toBe('linux/amd64, linux/arm64');
    expect(rows.v2![4]!.slice(0, 10)).toBe(new Date().toISOString().slice(0, 10));
    expectClean(w, server.url);
  });

  it('shows a tag: layers with sizes, the config, referrers and history; an index: its platforms', async () => {
    const w = await signedIn('alice', '#/tag/team/app:v1');
    await w.page.waitForSelector('#layers');
    expect(await w.page.$eval('#digest', (e) => e.textContent)).toBe(v1.second.digest);
    expect((await tableText(w.page, 'layers')).map((r) => [r[0], r[1], r[3]])).toEqual([
      ['1', v1.second.layers[0]!.digest.slice(7, 19), '4.0 KB'],
      ['2', v1.second.layers[1]!.digest.slice(7, 19), '1.0 KB'],
    ]);
    await w.page.waitForSelector('#config dl');
    const config = await w.page.$eval('#config dl', (dl) => dl.textContent);
    expect(config).toContain('Created2026-11-27 10:00');
    expect(config).toContain('Entrypoint/usr/bin/app--serve');
    expect(config).toContain('SEED=second');
    expect(config).toContain('org.opencontainers.image.source=https://example.test/app');
    await w.page.waitForSelector('#referrers');
    expect((await tableText(w.page, 'referrers')).map((r) => [r[0], r[1]]).sort()).toEqual([
      ['SBOM', 'application/spdx+json'],
      ['signature', 'application/vnd.dev.cosign.artifact.sig.v1+json'],
    ]);
    await w.page.waitForSelector('#history');
    const history = await tableText(w.page, 'history');
    expect(history.map((r) => [r[1], r[2], r[3], r[4]])).toEqual([
      ['moved', v1.second.digest.slice(7, 19), v1.first.digest.slice(7, 19), 'alice'],
      ['created', v1.first.digest.slice(7, 19), '—', 'alice'],
    ]);
    await show(w.page, server.url, '#/tag/team/app:multi');
    await w.page.waitForSelector('#platforms');
    expect((await tableText(w.page, 'platforms')).map((r) => r[0])).toEqual(['linux/amd64', 'linux/arm64']);
    await w.page.click('#platforms tbody tr:nth-child(2) a');
    await w.page.waitForSelector('#layers');
    expect(await w.page.$eval('h1', (e) => e.textContent)).toMatch(/^team\/app@sha256:[0-9a-f]{64}$/);
    expectClean(w, server.url);
  });

  it('rolls a tag back one step and to an older digest from its history', async () => {
    const token = await adminToken('team/app');
    const w = await signedIn('alice', '#/tag/team/app:v1');
    await w.page.waitForSelector('#rollback-step');
    await w.page.click('#rollback-step');
    await w.page.waitForSelector('.flash');
    expect(await w.page.$eval('.flash', (e) => e.textContent)).toBe(`Rolled back team/app:v1 one step: it now points at ${v1.first.digest}.`);
    expect(await w.page.$eval('#digest', (e) => e.textContent)).toBe(v1.first.digest);
    expect(await digestOf({ url: server.url, token }, 'team/app', 'v1')).toBe(v1.first.digest);
    // The history now starts with the rollback; "Roll back here" on the entry that set the second digest.
    await w.page.waitForSelector('#history');
    const rows = await tableText(w.page, 'history');
    expect(rows[0]!.slice(1, 4)).toEqual(['moved', v1.first.digest.slice(7, 19), v1.second.digest.slice(7, 19)]);
    await w.page.click('#rollback-1');
    await w.page.waitForFunction((d) => document.querySelector('#digest')?.textContent === d, {}, v1.second.digest);
    expect(await w.page.$eval('.flash', (e) => e.textContent)).toBe(`Rolled back team/app:v1 to ${v1.second.digest.slice(7, 19)}: it now points at ${v1.second.digest}.`);
    expect(await digestOf({ url: server.url, token }, 'team/app', 'v1')).toBe(v1.second.digest);
    expectClean(w, server.url);
  });

  it('deletes a tag after confirmation, and keeps it when the confirmation is dismissed', async () => {
    // alice holds push on pub/**, not delete: the button is not offered.
    const w = await signedIn('alice', '#/tag/pub/tool:doomed');
    await w.page.waitForSelector('#history');
    expect(await w.page.$('#delete-tag')).toBeNull();
    await show(w.page, server.url, '#/tag/team/web:latest');
    await w.page.waitForSelector('#delete-tag');
    w.page.once('dialog', (d) => void d.dismiss());
    await w.page.click('#delete-tag');
    expect(await digestOf({ url: server.url, token: await adminToken('team/web') }, 'team/web', 'latest')).toMatch(/^sha256:/);
    w.page.once('dialog', (d) => void d.accept());
    await w.page.click('#delete-tag');
    await w.page.waitForSelector('#tags');
    expect(await w.page.$eval('.flash', (e) => e.textContent)).toBe('Deleted the tag team/web:latest.');
    expect(await tableText(w.page, 'tags')).toEqual([]);
    expect(await digestOf({ url: server.url, token: await adminToken('team/web') }, 'team/web', 'latest')).toBe(404);
    expectClean(w, server.url);
  });

  it("shows the server's refusal of a rollback an immutable-tag policy forbids", async () => {
    // The server reads policies through a cache of POLICY_CACHE_MS; the policy was set after the pushes.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, policySetAt + POLICY_CACHE_MS + 500 - Date.now())));
    const w = await signedIn('alice', '#/tag/team/locked:v1');
    await w.page.waitForSelector('#rollback-step');
    const before = await w.page.$eval('#digest', (e) => e.textContent);
    await w.page.click('#rollback-step');
    await w.page.waitForSelector('.status [role=alert]');
    expect(await w.page.$eval('.status [role=alert]', (e) => e.textContent)).toMatch(/^Rollback one step refused: tag v1 is immutable in team\/locked .*\(DENIED, 403\)$/);
    expect(await digestOf({ url: server.url, token: await adminToken('team/locked') }, 'team/locked', 'v1')).toBe(before);
    expectClean(w, server.url);
  });

  it('refuses what a user may not see: other repositories are not listed and their pages show the server error', async () => {
    const w = await page();
    await signIn(w.page, server.url, 'bob', secrets.bob!);
    await w.page.waitForSelector('#repositories');
    expect(await visibleRepositories(w.page)).toEqual(['pub/tool']);
    for (const route of ['#/r/team/app', '#/tag/team/app:v1']) {
      await show(w.page, server.url, route);
      await w.page.waitForSelector('main [role=alert]');
      expect(await w.page.$eval('main [role=alert]', (e) => e.textContent)).toMatch(/^Cannot show team\/app(:v1)?: .*\(DENIED, 403\)$/);
      expect(await w.page.$('#tags, #layers')).toBeNull();
    }
    // carol may pull team/**: she sees the history but is offered neither rollback nor delete.
    await w.page.evaluate(() => sessionStorage.clear());
    await signIn(w.page, server.url, 'carol', secrets.carol!);
    await w.page.waitForSelector('#repositories');
    await show(w.page, server.url, '#/tag/team/app:v1');
    await w.page.waitForSelector('#history');
    expect(await w.page.$$('#history button, #rollback-step, #delete-tag')).toEqual([]);
    // A wrong token is refused at sign-in with the server's message.
    await w.page.evaluate(() => sessionStorage.clear());
    await signIn(w.page, server.url, 'bob', 'wrong');
    await w.page.waitForFunction(() => document.querySelector('#sign-in [role=alert]')?.textContent?.startsWith('Sign-in failed: '));
    expectClean(w, server.url);
  });

  it('shows usage: storage per repository as an SVG chart, quotas and the rules in force, for what the user may pull', async () => {
    const w = await signedIn('alice', '#/usage');
    await w.page.waitForSelector('#usage-chart');
    const bars = await w.page.$$eval('#usage-chart rect.shared', (rects) => rects.map((r) => [r.getAttribute('data-name'), Number(r.getAttribute('width'))] as const));
    expect(bars.map(([name]) => name).sort()).toEqual(['pub/tool', 'team/app', 'team/locked', 'team/web']);
    // Sorted by stored bytes, the longest bar first.
    expect(bars[0]![0]).toBe('team/app');
    expect(bars.every(([, width], i) => i === 0 || width <= bars[i - 1]![1])).toBe(true);
    const rows = Object.fromEntries((await tableText(w.page, 'usage')).map(([name, ...rest]) => [name, rest]));
    expect(rows['team/app']![3]).toBe('3');
    expect(rows['team/app']![4]).toMatch(/^0% of 1\.0 GB$/);
    expect(await w.page.$eval('#cost', (e) => e.textContent)).toBe('— (on AWS only)');
    expect(await tableText(w.page, 'policies')).toEqual([
      ['team/app', 'keep the last 5 tags; never expire v*; quota 1.0 GB'],
      ['team/locked', 'immutable tags'],
    ]);
    expectClean(w, server.url);
    // bob may pull only the public repository: its figures alone, and no policy of team/*.
    const b = await signedIn('bob', '#/usage');
    await b.page.waitForSelector('#usage');
    expect((await tableText(b.page, 'usage')).map((r) => r[0])).toEqual(['pub/tool']);
    expect(await b.page.$('#policies')).toBeNull();
    expectClean(b, server.url);
  });

  it('works at phone width and with the keyboard alone', async () => {
    const w = await page();
    await w.page.setViewport({ width: 375, height: 740, isMobile: true, hasTouch: true });
    await w.page.goto(server.url + '/#/sign-in');
    await w.page.waitForSelector('#sign-in');
    // Keyboard only: Tab into the form, type, Enter submits.
    await w.page.focus('#user');
    await w.page.keyboard.type('alice');
    await w.page.keyboard.press('Tab');
    expect(await w.page.evaluate(() => document.activeElement?.id)).toBe('secret');
    await w.page.keyboard.type(secrets.alice!);
    await w.page.keyboard.press('Enter');
    await w.page.waitForSelector('#repositories');
    expect(await w.page.evaluate(() => document.activeElement?.textContent)).toBe('Repositories');
    // Tab from the heading reaches the search box, then the first repository link; Enter opens it.
    await w.page.keyboard.press('Tab');
    expect(await w.page.evaluate(() => document.activeElement?.id)).toBe('search');
    await w.page.keyboard.type('app');
    let focused = '';
    for (let i = 0; i < 5 && focused !== 'team/app'; i++) {
      await w.page.keyboard.press('Tab');
      focused = await w.page.evaluate(() => document.activeElement?.textContent ?? '');
    }
    expect(focused).toBe('team/app');
    expect(await w.page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).toBe('solid');
    await w.page.keyboard.press('Enter');
    await w.page.waitForSelector('#tags');
    expect(await w.page.evaluate(() => document.activeElement?.textContent)).toBe('team/app');
    // Nothing wider than the phone: the tables scroll inside their box.
    for (const route of ['#/r/team/app', '#/tag/team/app:v1']) {
      await show(w.page, server.url, route);
      await w.page.waitForSelector('#tags, #history');
      expect(await w.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    }
    expectClean(w, server.url);
  });
});

describe('web console in chromium against ocireg serve without auth', () => {
  let server: RegistryServer;
  let first: Pushed;

  beforeAll(async () => {
    server = await startRegistryServer();
    const open = { url: server.url };
    first = await pushImage(open, 'team/app', 'v1', { seed: 'one' });
    await pushImage(open, 'team/app', 'v1', { seed: 'two' });
    await pushImage(open, 'lib/base', '3');
  }, 120_000);

  afterAll(async () => {
    for (const { page } of opened.splice(0)) await page.close().catch(() => undefined);
    await server?.stop();
  });

  it('shows every repository with no sign-in, and offers and performs rollback and delete', async () => {
    const w = await page();
    await w.page.goto(server.url + '/');
    await w.page.waitForSelector('#repositories');
    expect(await visibleRepositories(w.page)).toEqual(['lib/base', 'team/app']);
    await show(w.page, server.url, '#/tag/team/app:v1');
    await w.page.waitForSelector('#rollback-step');
    await w.page.waitForSelector('#config dl');
    expect(await w.page.$eval('#config dl', (e) => e.textContent)).toContain('SEED=two');
    await w.page.click('#rollback-step');
    await w.page.waitForSelector('.flash');
    expect(await w.page.$eval('#digest', (e) => e.textContent)).toBe(first.digest);
    expect(await digestOf({ url: server.url }, 'team/app', 'v1')).toBe(first.digest);
    await show(w.page, server.url, '#/tag/lib/base:3');
    await w.page.waitForSelector('#delete-tag');
    w.page.once('dialog', (d) => void d.accept());
    await w.page.click('#delete-tag');
    await w.page.waitForSelector('.flash');
    expect(await digestOf({ url: server.url }, 'lib/base', '3')).toBe(404);
    expectClean(w, server.url);
  });
});
