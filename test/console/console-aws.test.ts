import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevAws, type DevAws } from '../../bin/dev-aws.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../lib/dev/aws-local.ts';
import { startEmulatedApiGateway } from '../../lib/server/emulated-api-gateway.ts';
import type * as RegistryApi from '../../lambdas/registry-api.ts';
import { OCIREG_CLI } from '../support/registry-server.ts';
import { requireTools, runOk } from '../support/tools.ts';
import { launchChromium, pushImage, pushReferrer, servedGzipBytes, show, signIn, tableText, visibleRepositories, watchedPage, type Pushed, type Target } from './console-fixtures.ts';

/**
 * The web console on the AWS path, in chromium: `dev:aws` (the Lambda handler behind the emulated HTTP API, on
 * DynamoDB Local and s3rver, with auth), and the function as `cdk deploy` ships it — the minified ES module that
 * bin/app.ts synthesizes — behind a second emulated gateway over the same table and bucket. The console's script
 * is the source text of functions in that bundle, so this is where a minifier that broke it would show.
 */

const ROOT = join(import.meta.dirname, '../..');
let dev: DevAws;
let bundled: { url: string; close(): Promise<void> };
let bundledScript: string;
let browser: Browser;
let outdir: string;
const secrets: Record<string, string> = {};
let v1: { first: Pushed; second: Pushed };

async function ocireg(...args: string[]) {
  const env = {
    ...process.env,
    AWS_ENDPOINT_URL_DYNAMODB: dev.endpoints.dynamo,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_REGION: LOCAL_REGION,
  };
  return runOk(process.execPath, [OCIREG_CLI, ...args, '--table', dev.names.table], { env });
}

/** The API function's bundle as `cdk deploy` would upload it, built by the app's own synth (local esbuild, minified). */
async function synthesizedBundle(): Promise<typeof RegistryApi> {
  outdir = await mkdtemp(join(tmpdir(), 'ocireg-console-synth-'));
  await runOk(process.execPath, [join(ROOT, 'bin/app.ts')], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, CDK_OUTDIR: outdir }, timeoutMs: 180_000 });
  // The stack has several functions (API, gc, cache copies): the API's is the bundle that exports its factories.
  for (const entry of (await readdir(outdir)).filter((name) => name.startsWith('asset.'))) {
    const module = (await import(join(outdir, entry, 'index.mjs')).catch(() => undefined)) as Partial<typeof RegistryApi> | undefined;
    if (typeof module?.createAwsRegistryApp === 'function' && typeof module.createHandler === 'function') return module as typeof RegistryApi;
  }
  throw new Error(`no bundle in ${outdir} exports createAwsRegistryApp`);
}

beforeAll(async () => {
  await requireTools('chromium');
  const [started, bundle] = await Promise.all([startDevAws({ auth: true, logLevel: 'WARN' }), synthesizedBundle()]);
  dev = started;
  await ocireg('users', 'add', 'alice');
  await ocireg('grants', 'set', 'alice', 'team/**', 'delete');
  await ocireg('grants', 'set', 'alice', 'pub/**', 'push');
  secrets.alice = (await ocireg('tokens', 'create', 'alice')).stdout.trim();
  await ocireg('repos', 'public', 'pub/**');
  // Before any request: the function reads policies through a 5 s cache.
  await ocireg('policy', 'set', 'team/*', '--keep-last', '10');
  const alice: Target = { url: dev.url, user: { name: 'alice', secret: secrets.alice } };
  v1 = { first: await pushImage(alice, 'team/app', 'v1', { seed: 'first' }), second: await pushImage(alice, 'team/app', 'v1', { seed: 'second' }) };
  await pushImage(alice, 'team/app', 'v2', { seed: 'v2' });
  // Both digests v1 takes (each run below rolls it back one step) carry an attestation.
  for (const subject of [v1.first, v1.second]) await pushReferrer(alice, 'team/app', subject, 'application/vnd.in-toto+json');
  await pushImage(alice, 'pub/tool', '1.0');
  // On DynamoDB the usage endpoint serves the summary this stores (it never scans the table per request).
  await ocireg('usage');

  const api = bundle;
  const app = api.createAwsRegistryApp(
    { table: dev.names.table, bucket: dev.names.bucket },
    { clients: { dynamo: dev.local.dynamo, s3: dev.local.s3, presignS3: dev.local.s3Client({ hostname: 'localhost' }) }, signingKey: async () => dev.signingKeyPem! },
  );
  const gateway = await startEmulatedApiGateway({ handler: api.createHandler(app), port: 0 });
  bundled = { url: gateway.url, close: () => gateway.close() };
  bundledScript = await (await fetch(bundled.url + '/console/app.js')).text();
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await bundled?.close();
  await dev?.stop();
  if (outdir) await rm(outdir, { recursive: true, force: true });
});

describe('web console on the AWS path', () => {
  it('serves the minified script from the deployed bundle, ≤ 100 KB gzipped as served', async () => {
    const fromSource = await (await fetch(dev.url + '/console/app.js')).text();
    // Minified: the same program in fewer bytes and lines than the source text dev:aws serves.
    expect(bundledScript.length).toBeLessThan(fromSource.length * 0.8);
    expect(bundledScript.split('\n').length).toBeLessThan(fromSource.split('\n').length / 5);
    const gzipped = await servedGzipBytes(bundled.url);
    console.log(`console assets from the Lambda bundle: ${gzipped} bytes gzipped (${bundledScript.length} bytes of script)`);
    expect(gzipped).toBeLessThanOrEqual(100 * 1024);
    const res = await fetch(bundled.url + '/');
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
  });

  for (const [label, url] of [
    ['dev:aws', () => dev.url],
    ['the minified Lambda bundle', () => bundled.url],
  ] as const) {
    it(`signs in, browses, shows a tag, rolls it back and shows usage — ${label}`, async () => {
      const base = url();
      const w = await watchedPage(browser);
      await signIn(w.page, base, 'alice', secrets.alice!);
      await w.page.waitForSelector('#repositories');
      await w.page.waitForFunction(() => document.querySelectorAll('#repositories tr[data-loaded]').length === 2);
      expect(await visibleRepositories(w.page)).toEqual(['pub/tool', 'team/app']);
      expect((await tableText(w.page, 'repositories'))[1]!.slice(0, 2)).toEqual(['team/app', '2']);
      await show(w.page, base, '#/r/team/app');
      await w.page.waitForSelector('#tags');
      await w.page.waitForFunction(() => [...document.querySelectorAll('#tags tbody tr')].every((r) => !r.textContent!.includes('…')));
      const v1Row = (await tableText(w.page, 'tags')).find((r) => r[0] === 'v1')!;
      // The config is a blob, and blobs are 307s to S3 (CSP connect-src 'self' keeps the page off them): the
      // registry reads it for the page (`_ocireg/config`).
      expect(v1Row[3]).toBe('linux/amd64');
      expect(v1Row[6]).toBe('alice');
      await show(w.page, base, '#/tag/team/app:v1');
      await w.page.waitForSelector('#layers');
      await w.page.waitForSelector('#referrers');
      expect((await tableText(w.page, 'referrers'))[0]!.slice(0, 2)).toEqual(['attestation', 'application/vnd.in-toto+json']);
      await w.page.waitForSelector('#config dl');
      const config = await w.page.$eval('#config dl', (dl) => dl.textContent);
      expect(config).toContain('Created2026-11-27 10:00');
      expect(config).toContain('Platformlinux/amd64');
      expect(config).toContain('Entrypoint/usr/bin/app--serve');
      expect(config).toMatch(/SEED=(first|second)/);
      expect(config).toContain('org.opencontainers.image.source=https://example.test/app');
      await w.page.waitForSelector('#rollback-step');
      const before = await w.page.$eval('#digest', (e) => e.textContent);
      await w.page.click('#rollback-step');
      await w.page.waitForFunction((d) => document.querySelector('#digest')?.textContent !== d, {}, before);
      expect([v1.first.digest, v1.second.digest]).toContain(await w.page.$eval('#digest', (e) => e.textContent));
      expect(await w.page.$eval('.flash', (e) => e.textContent)).toMatch(/^Rolled back team\/app:v1 one step: it now points at sha256:/);
      await show(w.page, base, '#/usage');
      await w.page.waitForSelector('#usage-chart');
      expect((await w.page.$$eval('#usage-chart rect.shared', (rects) => rects.map((r) => r.getAttribute('data-name')))).sort()).toEqual(['pub/tool', 'team/app']);
      expect(await w.page.$eval('#cost', (e) => e.textContent)).toMatch(/^\$0\.0\d{3} a month \(S3 storage at \$0\.023 per GB-month/);
      expect(await tableText(w.page, 'policies')).toEqual([['team/*', 'keep the last 10 tags']]);
      await w.page.click('#sign-out');
      await w.page.waitForSelector('#sign-in-link');
      await w.page.waitForFunction(() => document.querySelectorAll('#repositories tbody tr').length === 1);
      expect(await visibleRepositories(w.page)).toEqual(['pub/tool']);
      expect(w.errors).toEqual([]);
      expect(w.responses.filter((r) => !r.startsWith(base + '/'))).toEqual([]);
      await w.page.close();
    });
  }
});
