import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distributionRegistry, type DistributionRegistry } from '../support/distribution-registry.ts';
import { addRandomLayer, buildRandomImage, fetchManifest, MANIFEST_ACCEPT, MiB, type LayoutImage } from '../support/images.ts';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { describeFailure, requireTools, runOk, runTool, waitFor } from '../support/tools.ts';
import { upstreamFront, type UpstreamFront } from '../support/upstream-front.ts';

/**
 * How `ocireg serve` fills its pull-through cache, seen from outside: docker-registry as the upstream behind a
 * loopback front that records requests and can hold a blob body half-way (test/support/upstream-front.ts).
 * One image of three 3 MiB layers, one layer per blob scenario; `--cache-revalidate 5s`.
 */

const REVALIDATE_MS = 5_000;
const dirs = tempDirs('ocireg-pull-cache-stream-');
let upstream: DistributionRegistry;
let front: UpstreamFront;
let server: RegistryServer;
let image: LayoutImage;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

beforeAll(async () => {
  await requireTools('skopeo', 'umoci', 'docker-registry');
  const work = await dirs.make();
  upstream = await distributionRegistry(join(work, 'upstream'));
  await upstream.start();
  await buildRandomImage({ layout: join(work, 'src'), tag: 'one', randomBytes: 3 * MiB });
  await addRandomLayer(join(work, 'src'), 'one', 3 * MiB);
  image = await addRandomLayer(join(work, 'src'), 'one', 3 * MiB);
  const push = await runTool('skopeo', ['copy', '--dest-tls-verify=false', image.ref, `docker://${upstream.host}/library/app:1`], { timeoutMs: 180_000 });
  expect(push.code, describeFailure(push)).toBe(0);

  front = await upstreamFront(upstream.host);
  const dataDir = join(work, 'data');
  await runOk(process.execPath, [OCIREG_CLI, 'cache', 'add', 'hub', front.url, '--data-dir', dataDir]);
  server = await startRegistryServer({ dataDir, serveArgs: ['--cache-revalidate', `${REVALIDATE_MS / 1000}s`] });
  // The manifest, so blob GETs below are what a client sends next.
  expect((await fetchManifest(server.url, 'hub/library/app', '1')).status).toBe(200);
}, 240_000);

afterAll(async () => {
  await server?.stop();
  await front?.close();
  await upstream?.stop();
  await dirs.cleanUp();
});

/** Files of `digest` in the data dir's blob store (one per stored copy). */
async function storedCopies(digest: string): Promise<string[]> {
  const files = await readdir(join(server.dataDir, 'blobs', 'sha256', digest.slice(7, 9))).catch(() => []);
  return files.filter((file) => file.startsWith(`${digest.slice(7)}.`));
}

const upstreamGets = (digest: string) => front.requests().filter((line) => line === `GET /v2/library/app/blobs/${digest}`).length;

/** Reads a response body, calling `onBytes` with the running total. */
async function readBody(response: Response, onBytes: (total: number) => void = () => undefined): Promise<Buffer> {
  const reader = response.body!.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    chunks.push(next.value);
    total += next.value.byteLength;
    onBytes(total);
  }
  return Buffer.concat(chunks);
}

describe('pull-through cache fills on ocireg serve', () => {
  it('streams a missed blob to the client while the upstream is still sending it, and stores it once complete', async () => {
    // Prepare: the upstream's body stops after 1 MiB until released.
    const layer = image.manifest.layers[0]!;
    front.pause(1 * MiB);

    // Act
    const response = await fetch(`${server.url}/v2/hub/library/app/blobs/${layer.digest}`);
    let received = 0;
    const body = readBody(response, (total) => (received = total));
    await waitFor(async () => received >= 512 * 1024, 'the first half MiB through the cache', 30_000, 20);
    const heldUpstream = front.held();
    const storedWhileStreaming = await storedCopies(layer.digest);
    front.release();
    const bytes = await body;

    // Assess
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(layer.size));
    expect(heldUpstream).toBe(1);
    expect(storedWhileStreaming).toEqual([]);
    expect(sha256(bytes)).toBe(layer.digest);
    expect(await storedCopies(layer.digest)).toHaveLength(1);
    expect(upstreamGets(layer.digest)).toBe(1);
  });

  it('serves two concurrent misses of one blob from one upstream copy, stored once', async () => {
    // Prepare
    const layer = image.manifest.layers[1]!;
    front.pause(1 * MiB);

    // Act: A misses and streams; B misses while A's copy is held half-way.
    const a = await fetch(`${server.url}/v2/hub/library/app/blobs/${layer.digest}`);
    const bodyA = readBody(a);
    await waitFor(async () => front.held() === 1, 'the upstream body held', 30_000, 20);
    const b = fetch(`${server.url}/v2/hub/library/app/blobs/${layer.digest}`);
    await sleep(300);
    front.release();
    const [bytesA, bytesB] = await Promise.all([bodyA, b.then((response) => readBody(response))]);

    // Assess
    expect(sha256(bytesA)).toBe(layer.digest);
    expect(sha256(bytesB)).toBe(layer.digest);
    expect(upstreamGets(layer.digest)).toBe(1);
    expect(await storedCopies(layer.digest)).toHaveLength(1);
  });

  it('finishes and verifies the copy when the client goes away mid-blob, then serves it from storage', async () => {
    // Prepare
    const layer = image.manifest.layers[2]!;
    front.pause(1 * MiB);

    // Act: read some, hang up, let the upstream finish.
    const controller = new AbortController();
    const response = await fetch(`${server.url}/v2/hub/library/app/blobs/${layer.digest}`, { signal: controller.signal });
    let received = 0;
    const body = readBody(response, (total) => (received = total)).catch((error: unknown) => error);
    await waitFor(async () => received > 0, 'the first bytes through the cache', 30_000, 20);
    controller.abort();
    expect(await body).toBeInstanceOf(Error);
    front.release();
    await waitFor(async () => (await storedCopies(layer.digest)).length === 1, 'the blob stored after the client left', 30_000, 50);
    const again = await fetch(`${server.url}/v2/hub/library/app/blobs/${layer.digest}`);
    const bytes = await readBody(again);

    // Assess
    expect(sha256(bytes)).toBe(layer.digest);
    expect(upstreamGets(layer.digest)).toBe(1);
  });

  it('answers MANIFEST_UNKNOWN and BLOB_UNKNOWN (404) for what the upstream does not have', async () => {
    const manifest = await fetch(`${server.url}/v2/hub/library/app/manifests/nope`, { headers: { accept: MANIFEST_ACCEPT } });
    const repository = await fetch(`${server.url}/v2/hub/library/absent/manifests/1`, { headers: { accept: MANIFEST_ACCEPT } });
    const blob = await fetch(`${server.url}/v2/hub/library/app/blobs/${sha256(Buffer.from('absent'))}`);
    const head = await fetch(`${server.url}/v2/hub/library/app/blobs/${sha256(Buffer.from('absent too'))}`, { method: 'HEAD' });

    expect([manifest.status, repository.status, blob.status, head.status]).toEqual([404, 404, 404, 404]);
    expect(((await manifest.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('MANIFEST_UNKNOWN');
    expect(((await repository.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('MANIFEST_UNKNOWN');
    expect(((await blob.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('BLOB_UNKNOWN');
  });
});
