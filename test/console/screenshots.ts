/**
 * `npm run screenshots`: PNGs of the console's main pages into docs/screenshots/, taken by the same chromium the
 * browser tests drive, against a fresh `ocireg serve --auth` filled with a few images through the API.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'puppeteer-core';
import { OCIREG_CLI, startRegistryServer } from '../support/registry-server.ts';
import { runOk } from '../support/tools.ts';
import { launchChromium, pushImage, pushIndex, pushReferrer, show, signIn, type Target } from './console-fixtures.ts';

const OUT = join(import.meta.dirname, '../../docs/screenshots');
const KiB = 1024;

const server = await startRegistryServer({ serveArgs: ['--auth'] });
const browser = await launchChromium();
try {
  const ocireg = (...args: string[]) => runOk(process.execPath, [OCIREG_CLI, ...args, '--data-dir', server.dataDir]);
  await ocireg('users', 'add', 'alice');
  await ocireg('grants', 'set', 'alice', '**', 'delete');
  const alice: Target = { url: server.url, user: { name: 'alice', secret: (await ocireg('tokens', 'create', 'alice')).stdout.trim() } };
  await ocireg('repos', 'public', 'pub/**');
  await ocireg('policy', 'set', 'team/*', '--keep-last', '20', '--expire-untagged', '14d', '--protect', 'v*');
  await ocireg('policy', 'set', 'team/payments', '--immutable', '--mutable-tags', 'latest', '--quota', '5GiB');

  await pushImage(alice, 'team/api', 'v1.4.0', { seed: '1.4.0', layerSizes: [900 * KiB, 300 * KiB] });
  const current = await pushImage(alice, 'team/api', 'v1.4.0', { seed: '1.4.0-fix', layerSizes: [900 * KiB, 320 * KiB, 12 * KiB] });
  await pushImage(alice, 'team/api', 'v1.3.2', { seed: '1.3.2', layerSizes: [880 * KiB, 280 * KiB] });
  await pushIndex(alice, 'team/api', 'latest', [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64' },
  ]);
  await pushReferrer(alice, 'team/api', current, 'application/vnd.dev.cosign.artifact.sig.v1+json');
  await pushReferrer(alice, 'team/api', current, 'application/spdx+json');
  await pushReferrer(alice, 'team/api', current, 'application/vnd.in-toto+json');
  await pushImage(alice, 'team/web', 'latest', { seed: 'web', layerSizes: [1400 * KiB] });
  await pushImage(alice, 'team/payments', 'v7', { seed: 'payments', layerSizes: [600 * KiB, 200 * KiB] });
  await pushImage(alice, 'pub/tool', '2.1', { seed: 'tool', layerSizes: [250 * KiB] });

  await mkdir(OUT, { recursive: true });
  const page = await browser.newPage();
  await page.setViewport({ width: 1360, height: 760 });
  const shoot = async (target: Page, file: string, route: string, ready: string) => {
    await show(target, server.url, route);
    await target.waitForSelector(ready);
    // Cells fill in as their requests answer; wait until none says "…".
    await target.waitForFunction(() => !document.querySelector('main')!.textContent!.includes('…'));
    await target.screenshot({ path: join(OUT, file), fullPage: true });
    process.stdout.write(`docs/screenshots/${file}\n`);
  };
  await shoot(page, 'sign-in.png', '#/sign-in', '#sign-in');
  await signIn(page, server.url, 'alice', alice.user!.secret);
  await page.waitForSelector('#repositories');
  await shoot(page, 'repositories.png', '#/', '#repositories');
  await shoot(page, 'repository.png', '#/r/team/api', '#tags');
  await shoot(page, 'tag.png', '#/tag/team/api:v1.4.0', '#history');
  await shoot(page, 'usage.png', '#/usage', '#usage-chart');
  await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
  await shoot(page, 'phone-repository.png', '#/r/team/api', '#tags');
} finally {
  await browser.close();
  await server.stop();
}
