import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

/**
 * What the console suites share: images pushed through the API as any client would (with a user's token when the
 * registry has --auth), and chromium pages that record every failure and every response.
 */

export interface Target {
  url: string;
  /** Basic credentials for /token; absent: anonymous (or a registry without auth). */
  user?: { name: string; secret: string };
}

export interface Pushed {
  digest: string;
  size: number;
  mediaType: string;
}

/** Throws (failing the test, or stopping the screenshots script) unless the registry answered `status`. */
async function expectStatus(res: Response, status: number): Promise<void> {
  if (res.status !== status) throw new Error(`${res.url}: expected ${status}, got ${res.status} ${await res.text()}`);
}

const sha256 = (bytes: Uint8Array) => 'sha256:' + createHash('sha256').update(bytes).digest('hex');

async function headers(target: Target, name: string): Promise<Record<string, string>> {
  const basic: Record<string, string> = target.user ? { authorization: 'Basic ' + Buffer.from(`${target.user.name}:${target.user.secret}`).toString('base64') } : {};
  const res = await fetch(`${target.url}/token?service=ocireg&scope=repository:${name}:pull,push,delete`, { headers: basic });
  if (res.status === 404) return {};
  await expectStatus(res, 200);
  return { authorization: `Bearer ${((await res.json()) as { token: string }).token}` };
}

async function pushBlob(target: Target, name: string, bytes: Uint8Array): Promise<{ digest: string; size: number }> {
  const digest = sha256(bytes);
  const res = await fetch(`${target.url}/v2/${name}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: { ...(await headers(target, name)), 'content-type': 'application/octet-stream' },
    body: new Uint8Array(bytes),
  });
  await expectStatus(res, 201);
  return { digest, size: bytes.byteLength };
}

/** PUT by `tag`, or by its own digest when no tag is given (an index's children, referrers). */
async function pushManifest(target: Target, name: string, tag: string | undefined, manifest: Record<string, unknown>): Promise<Pushed> {
  const body = new TextEncoder().encode(JSON.stringify(manifest));
  const mediaType = manifest.mediaType as string;
  const res = await fetch(`${target.url}/v2/${name}/manifests/${tag ?? sha256(body)}`, {
    method: 'PUT',
    headers: { ...(await headers(target, name)), 'content-type': mediaType },
    body,
  });
  await expectStatus(res, 201);
  return { digest: sha256(body), size: body.byteLength, mediaType };
}

export interface ImageOptions {
  /** Makes the layer (and so the digest) differ between pushes of one tag. */
  seed?: string;
  os?: string;
  architecture?: string;
  /** Layers of these sizes (random bytes, so sizes are exact). @default [1 layer of 2 KiB] */
  layerSizes?: number[];
}

/** An image with a config that has an entrypoint, env, labels and a creation time. */
export async function pushImage(target: Target, name: string, tag: string | undefined, options: ImageOptions = {}): Promise<Pushed & { config: { digest: string; size: number }; layers: { digest: string; size: number }[] }> {
  const config = await pushBlob(
    target,
    name,
    new TextEncoder().encode(
      JSON.stringify({
        created: '2026-11-27T10:00:00Z',
        architecture: options.architecture ?? 'amd64',
        os: options.os ?? 'linux',
        config: {
          Entrypoint: ['/usr/bin/app', '--serve'],
          Env: ['PATH=/usr/bin', `SEED=${options.seed ?? name}`],
          Labels: { 'org.opencontainers.image.source': 'https://example.test/app' },
        },
        rootfs: { type: 'layers', diff_ids: [] },
      }),
    ),
  );
  const layers = [];
  for (const [i, size] of (options.layerSizes ?? [2048]).entries()) {
    const random = createHash('sha512').update(`${name}:${tag}:${options.seed ?? ''}:${i}`).digest();
    const bytes = new Uint8Array(size);
    for (let j = 0; j < size; j++) bytes[j] = random[j % random.length]! ^ (j & 0xff);
    layers.push(await pushBlob(target, name, bytes));
  }
  const pushed = await pushManifest(target, name, tag, {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })),
  });
  return { ...pushed, config, layers };
}

/** A multi-arch index over one image per platform. */
export async function pushIndex(target: Target, name: string, tag: string, platforms: { os: string; architecture: string }[]): Promise<Pushed> {
  const manifests = [];
  for (const platform of platforms) {
    const image = await pushImage(target, name, undefined, { ...platform, seed: platform.architecture });
    manifests.push({ mediaType: image.mediaType, digest: image.digest, size: image.size, platform });
  }
  return pushManifest(target, name, tag, { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests });
}

/** An artifact whose subject is `subject` (a signature, an SBOM…), found through the referrers API. */
export async function pushReferrer(target: Target, name: string, subject: Pushed, artifactType: string): Promise<Pushed> {
  const empty = await pushBlob(target, name, new TextEncoder().encode('{}'));
  const payload = await pushBlob(target, name, gzipSync(Buffer.from(`${artifactType} of ${subject.digest}`)));
  return pushManifest(target, name, undefined, {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', ...empty },
    layers: [{ mediaType: artifactType, ...payload }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { 'org.opencontainers.image.created': '2026-11-27T11:00:00Z' },
  });
}

export function launchChromium(): Promise<Browser> {
  return puppeteer.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
}

export interface Watched {
  page: Page;
  /** Page errors and console errors (a CSP violation among them); refused API calls the page shows are not errors. */
  errors: string[];
  /**
   * The URL of every response the page received. (Chromium also announces a request for the target of a 307 that
   * a `redirect: 'manual'` fetch does not follow; no response comes from there.)
   */
  responses: string[];
}

/** A page that records what went wrong; the suites assert `errors` is empty and every request stayed on the registry. */
export async function watchedPage(browser: Browser): Promise<Watched> {
  const page = await browser.newPage();
  const watched: Watched = { page, errors: [], responses: [] };
  page.on('pageerror', (e) => watched.errors.push(String(e)));
  page.on('console', (m) => {
    // A refused request (401/403/404 the console asked for and shows) is logged by chromium as a resource error.
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 40[0-9]/.test(m.text())) watched.errors.push(m.text());
  });
  page.on('response', (r) => watched.responses.push(r.url()));
  return watched;
}

export async function signIn(page: Page, url: string, user: string, secret: string): Promise<void> {
  await page.goto(url + '/#/sign-in');
  await page.waitForSelector('#sign-in');
  await page.type('#user', user);
  await page.type('#secret', secret);
  await page.click('#sign-in button[type=submit]');
}

/** Moves to `route` (`#/…`) and waits until the console rendered that route, not the page before it. */
export async function show(page: Page, url: string, route: string): Promise<void> {
  await page.goto(url + '/' + route);
  await page.waitForSelector(`main[data-route="${route.slice(1)}"]`);
}

export const visibleRepositories = (page: Page) =>
  page.$$eval('#repositories tbody tr:not([hidden])', (rows) => rows.map((r) => (r as HTMLElement).dataset.name));

/** The text of each cell of a table's body rows. */
export const tableText = (page: Page, id: string) =>
  page.$$eval(`#${id} tbody tr`, (rows) => rows.map((r) => [...r.children].map((c) => (c.textContent ?? '').trim())));

/** The three served assets' bytes, gzipped (level 9) as a server or CDN would send them. */
export async function servedGzipBytes(url: string): Promise<number> {
  let total = 0;
  for (const path of ['/', '/console/app.js', '/console/app.css']) {
    const res = await fetch(url + path);
    await expectStatus(res, 200);
    total += gzipSync(new Uint8Array(await res.arrayBuffer()), { level: 9 }).byteLength;
  }
  return total;
}
