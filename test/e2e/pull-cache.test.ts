import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_RULES_TTL_MS } from '../../lib/registry/pull-through-cache.ts';
import { addRandomLayer, blobPath, buildRandomImage, fetchBlobDigest, fetchManifest, MiB, sameFileBytes, type LayoutImage } from '../support/images.ts';
import { distributionRegistry, type DistributionRegistry } from '../support/distribution-registry.ts';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { upstreamFront } from '../support/upstream-front.ts';
import { describeFailure, requireTools, runTool } from '../support/tools.ts';

/**
 * The pull-through cache against a real upstream: CNCF Distribution (`docker-registry`) on loopback holding an image
 * pushed with skopeo, `ocireg cache add hub <upstream>`, then `ocireg serve` with a 2 s tag revalidation interval.
 * The tests run in order: first pull (miss), push refused, tag moved upstream, upstream stopped.
 */

const REVALIDATE_MS = 2_000;
const dirs = tempDirs('ocireg-pull-cache-');
let work: string;
let upstream: DistributionRegistry;
let server: RegistryServer;
let first: LayoutImage;
let second: LayoutImage;

const skopeo = (args: string[]) => runTool('skopeo', args, { timeoutMs: 180_000 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  await requireTools('skopeo', 'umoci', 'docker-registry');
  work = await dirs.make();
  upstream = await distributionRegistry(join(work, 'upstream'));
  await upstream.start();
  first = await buildRandomImage({ layout: join(work, 'src'), tag: 'one', randomBytes: 3 * MiB });
  second = await addRandomLayer(join(work, 'src'), 'one', 1 * MiB, 'two');
  const push = await skopeo(['copy', '--dest-tls-verify=false', first.ref, `docker://${upstream.host}/library/app:1`]);
  expect(push.code, describeFailure(push)).toBe(0);

  const dataDir = join(work, 'data');
  const add = await runTool(process.execPath, [OCIREG_CLI, 'cache', 'add', 'hub', upstream.url, '--data-dir', dataDir]);
  expect(add.code, describeFailure(add)).toBe(0);
  server = await startRegistryServer({ dataDir, serveArgs: ['--cache-revalidate', `${REVALIDATE_MS / 1000}s`] });
}, 240_000);

afterAll(async () => {
  await server?.stop();
  await upstream?.stop();
  await dirs.cleanUp();
});

describe('pull-through cache on ocireg serve with docker-registry upstream', () => {
  it('lists the rule added with ocireg cache add', async () => {
    const list = await runTool(process.execPath, [OCIREG_CLI, 'cache', 'list', '--data-dir', server.dataDir]);
    expect(list.code, describeFailure(list)).toBe(0);
    expect(list.stdout).toBe(`hub\t${upstream.url}\tanonymous\n`);
  });

  it('fetches the image from the upstream on the first pull, stores it and serves it bit for bit', async () => {
    // Act
    const back = join(work, 'back');
    const pull = await skopeo(['copy', '--src-tls-verify=false', `docker://${server.host}/hub/library/app:1`, `oci:${back}:1`]);

    // Assess
    expect(pull.code, describeFailure(pull)).toBe(0);
    const manifest = await fetchManifest(server.url, 'hub/library/app', '1');
    expect(manifest.digest).toBe(first.manifestDigest);
    for (const blob of first.blobs) {
      expect(await sameFileBytes(blobPath(back, blob.digest), blobPath(first.layout, blob.digest)), blob.digest).toBe(true);
      // Stored as ordinary content in the data dir (blobs/sha256/<xx>/<hex>.<uploadId>).
      const files = await readdir(join(server.dataDir, 'blobs', 'sha256', blob.digest.slice(7, 9)));
      expect(files.some((file) => file.startsWith(`${blob.digest.slice(7)}.`)), blob.digest).toBe(true);
    }
  });

  it('refuses a push into the cached repository with DENIED, and leaves other repositories writable', async () => {
    const upload = await fetch(`${server.url}/v2/hub/library/app/blobs/uploads/`, { method: 'POST' });
    const body = (await upload.json()) as { errors: Array<{ code: string; message: string }> };
    const push = await skopeo(['copy', '--dest-tls-verify=false', first.ref, `docker://${server.host}/hub/library/app:mine`]);
    const elsewhere = await fetch(`${server.url}/v2/team/app/blobs/uploads/`, { method: 'POST' });

    expect(upload.status).toBe(403);
    expect(body.errors[0]!.code).toBe('DENIED');
    expect(body.errors[0]!.message).toContain('read-only pull-through cache');
    expect(push.code).not.toBe(0);
    expect(elsewhere.status).toBe(202);
  });

  it('picks up a tag moved upstream once the revalidation interval has passed', async () => {
    // Prepare
    const move = await skopeo(['copy', '--dest-tls-verify=false', second.ref, `docker://${upstream.host}/library/app:1`]);
    expect(move.code, describeFailure(move)).toBe(0);

    // Act
    await sleep(REVALIDATE_MS + 500);
    const back = join(work, 'moved');
    const pull = await skopeo(['copy', '--src-tls-verify=false', `docker://${server.host}/hub/library/app:1`, `oci:${back}:1`]);

    // Assess
    expect(pull.code, describeFailure(pull)).toBe(0);
    expect((await fetchManifest(server.url, 'hub/library/app', '1')).digest).toBe(second.manifestDigest);
    for (const blob of second.blobs) expect(await sameFileBytes(blobPath(back, blob.digest), blobPath(second.layout, blob.digest)), blob.digest).toBe(true);
  });

  it('refuses a blob the upstream corrupts in transit: the streamed GET breaks off before its end, HEAD answers DIGEST_INVALID, nothing is kept', async () => {
    // Prepare: a loopback front that flips the first byte of every blob body, as its own cache rule.
    const third = await addRandomLayer(join(work, 'src'), 'one', 1 * MiB, 'three');
    const push = await skopeo(['copy', '--dest-tls-verify=false', third.ref, `docker://${upstream.host}/library/corrupt:1`]);
    expect(push.code, describeFailure(push)).toBe(0);
    const front = await upstreamFront(upstream.host, { corrupt: true });
    const add = await runTool(process.execPath, [OCIREG_CLI, 'cache', 'add', 'bad', front.url, '--data-dir', server.dataDir]);
    expect(add.code, describeFailure(add)).toBe(0);
    const layer = third.manifest.layers.at(-1)!.digest;
    // A running registry reads the rules at most every CACHE_RULES_TTL_MS.
    await sleep(CACHE_RULES_TTL_MS + 500);
    const stored = async () => (await readdir(join(server.dataDir, 'blobs', 'sha256', layer.slice(7, 9))).catch(() => [])).filter((file) => file.startsWith(`${layer.slice(7)}.`));

    try {
      // Act
      const manifest = await fetchManifest(server.url, 'bad/library/corrupt', '1');
      const streamed = await fetch(`${server.url}/v2/bad/library/corrupt/blobs/${layer}`);
      let received = 0;
      const reader = streamed.body!.getReader();
      const broken = await (async () => {
        for (let next = await reader.read(); !next.done; next = await reader.read()) received += next.value.byteLength;
      })().catch((error: unknown) => error);
      const head = await fetch(`${server.url}/v2/bad/library/corrupt/blobs/${layer}`, { method: 'HEAD' });

      // Assess
      expect(manifest.digest).toBe(third.manifestDigest);
      expect(streamed.status).toBe(200);
      expect(broken).toBeInstanceOf(Error);
      expect(received).toBeLessThan(1 * MiB);
      expect(head.status).toBe(400);
      expect(await stored()).toEqual([]);
      expect(server.lines().filter((line) => line.msg === 'request' && line.status === 400).at(-1)).toMatchObject({ error: { code: 'DIGEST_INVALID' } });
      expect(server.lines().filter((line) => line.msg === 'upstream blob not cached' && line.digest === layer).map((line) => line.code)).toEqual(['DIGEST_INVALID', 'DIGEST_INVALID']);
      expect((await fetch(`${server.url}/v2/hub/library/corrupt/blobs/${layer}`, { method: 'HEAD' })).status).toBe(200);
      expect(await stored()).toHaveLength(1);
    } finally {
      await front.close();
    }
  });

  it('serves the cached image by tag and by digest with the upstream stopped, and says so in the log', async () => {
    // Prepare
    await upstream.stop();
    await sleep(REVALIDATE_MS + 500);

    // Act
    const back = join(work, 'offline');
    const pull = await skopeo(['copy', '--src-tls-verify=false', `docker://${server.host}/hub/library/app:1`, `oci:${back}:1`]);
    const byDigest = await fetchManifest(server.url, 'hub/library/app', first.manifestDigest);
    const uncached = await fetchManifest(server.url, 'hub/library/other', '1');

    // Assess
    expect(pull.code, describeFailure(pull)).toBe(0);
    for (const blob of second.blobs) expect(await sameFileBytes(blobPath(back, blob.digest), blobPath(second.layout, blob.digest)), blob.digest).toBe(true);
    expect(byDigest.status).toBe(200);
    expect(byDigest.digest).toBe(first.manifestDigest);
    expect((await fetchBlobDigest(server.url, 'hub/library/app', first.manifest.layers[0]!.digest)).digest).toBe(first.manifest.layers[0]!.digest);
    expect(server.lines().some((line) => line.msg === 'upstream unavailable: serving the cached manifest' && line.name === 'hub/library/app')).toBe(true);
    expect(uncached.status).toBe(503);
    expect(JSON.parse(uncached.bytes.toString('utf8')).errors[0]).toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringMatching(new RegExp(`^the upstream ${upstream.url} cannot be reached while fetching library/other: .*; nothing is cached for hub/library/other:1$`)),
    });
  });
});
