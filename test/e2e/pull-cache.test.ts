import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_RULES_TTL_MS } from '../../lib/registry/pull-through-cache.ts';
import { addRandomLayer, blobPath, buildRandomImage, fetchBlobDigest, fetchManifest, MiB, sameFileBytes, type LayoutImage } from '../support/images.ts';
import type { DistributionRegistry } from '../support/distribution-registry.ts';
import { PULL_CACHE_TARGETS, useHubCache, type PullCacheTarget } from '../support/pull-cache-target.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { upstreamFront, type UpstreamFront } from '../support/upstream-front.ts';
import { describeFailure, requireTools, runTool } from '../support/tools.ts';

/**
 * The pull-through cache against a real upstream, on `ocireg serve` and on `dev:aws`: CNCF Distribution
 * (`docker-registry`) on loopback holding an image pushed with skopeo, `ocireg cache add hub <upstream>`, a 2 s tag
 * revalidation interval. On dev:aws the copy-in-request limit is 2 MiB, so 3 MiB layers take the large-blob path
 * (307 to the upstream, the copy function invoked asynchronously) and 1 MiB layers are copied within the pull.
 * The tests of a target run in order: first pull (miss), push refused, tag moved upstream, a corrupting upstream,
 * upstream stopped. Each target has its own upstream.
 */

const REVALIDATE_MS = 2_000;
const COPY_IN_REQUEST_MAX_BYTES = 2 * MiB;
const dirs = tempDirs('ocireg-pull-cache-');
let work: string;
/** 3 MiB layer; `second` adds 1 MiB; `third` (for the corrupting upstream) adds 1 MiB and 3 MiB. */
let first: LayoutImage;
let second: LayoutImage;
let third: LayoutImage;

const skopeo = (args: string[]) => runTool('skopeo', args, { timeoutMs: 180_000 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const errorOf = async (response: Response) => ((await response.json()) as { errors: Array<{ code: string; message: string }> }).errors[0]!;

beforeAll(async () => {
  await requireTools('skopeo', 'umoci', 'docker-registry');
  work = await dirs.make();
  first = await buildRandomImage({ layout: join(work, 'src'), tag: 'one', randomBytes: 3 * MiB });
  second = await addRandomLayer(join(work, 'src'), 'one', 1 * MiB, 'two');
  await addRandomLayer(join(work, 'src'), 'one', 1 * MiB, 'three');
  third = await addRandomLayer(join(work, 'src'), 'three', 3 * MiB);
}, 120_000);

afterAll(async () => {
  await dirs.cleanUp();
});

describe.each(PULL_CACHE_TARGETS)('pull-through cache on %s with a docker-registry upstream', (kind) => {
  const hub = useHubCache(kind, { dir: () => work, image: () => first, revalidateSeconds: REVALIDATE_MS / 1000, copyInRequestMaxBytes: COPY_IN_REQUEST_MAX_BYTES });
  const slug = kind.replace(':', '-');
  let upstream: DistributionRegistry;
  let cache: PullCacheTarget;
  beforeAll(() => {
    ({ upstream, cache } = hub);
  });

  const push = (image: LayoutImage, nameAndTag: string) => hub.pushUpstream(image, nameAndTag);
  const pull = (name: string, into: string) => skopeo(['copy', '--src-tls-verify=false', `docker://${cache.host}/${name}`, `oci:${join(work, `${slug}-${into}`)}:1`]);
  const pulled = (into: string, digest: string) => blobPath(join(work, `${slug}-${into}`), digest);
  const notCached = (digest: string) => cache.lines().filter((line) => line.msg === 'upstream blob not cached' && line.digest === digest).map((line) => line.code);

  /** The corrupted image behind a loopback front that flips the first byte of every blob body, as the rule `bad`. */
  async function corruptingRule(): Promise<UpstreamFront> {
    await push(third, 'library/corrupt:1');
    const front = await upstreamFront(upstream.host, { corrupt: true });
    await cache.addRule({ prefix: 'bad', upstream: front.url });
    // A running registry reads the rules at most every CACHE_RULES_TTL_MS.
    await sleep(CACHE_RULES_TTL_MS + 500);
    return front;
  }

  it('lists the rule added with ocireg cache add', async () => {
    const list = await cache.ocireg(['cache', 'list']);
    expect(list.stdout).toBe(`hub\t${hub.front.url}\tanonymous\n`);
  });

  it('fetches the image from the upstream on the first pull, stores it and serves it bit for bit', async () => {
    // Act
    const result = await pull('hub/library/app:1', 'back');
    await cache.settled();

    // Assess
    expect(result.code, describeFailure(result)).toBe(0);
    const manifest = await fetchManifest(cache.url, 'hub/library/app', '1');
    expect(manifest.digest).toBe(first.manifestDigest);
    for (const blob of first.blobs) {
      expect(await sameFileBytes(pulled('back', blob.digest), blobPath(first.layout, blob.digest)), blob.digest).toBe(true);
      expect(await cache.hasBlob(blob.digest), blob.digest).toBe(true);
    }
    if (kind === 'dev:aws') {
      // The 3 MiB layer was redirected to the upstream and copied by the copy function, the rest within the pull.
      const large = first.manifest.layers.filter((layer) => layer.size > COPY_IN_REQUEST_MAX_BYTES).map((layer) => layer.digest);
      expect(large).toHaveLength(1);
      expect(cache.copyInvocations()).toEqual([{ name: 'hub/library/app', digest: large[0] }]);
    }
  });

  it('refuses a push into the cached repository with DENIED, and leaves other repositories writable', async () => {
    const upload = await fetch(`${cache.url}/v2/hub/library/app/blobs/uploads/`, { method: 'POST' });
    const refused = await skopeo(['copy', '--dest-tls-verify=false', first.ref, `docker://${cache.host}/hub/library/app:mine`]);
    const elsewhere = await fetch(`${cache.url}/v2/team/app/blobs/uploads/`, { method: 'POST' });

    expect(upload.status).toBe(403);
    expect(await errorOf(upload)).toMatchObject({ code: 'DENIED', message: expect.stringContaining('read-only pull-through cache') });
    expect(refused.code).not.toBe(0);
    expect(elsewhere.status).toBe(202);
  });

  it('picks up a tag moved upstream once the revalidation interval has passed', async () => {
    // Prepare
    await push(second, 'library/app:1');

    // Act
    await sleep(REVALIDATE_MS + 500);
    const result = await pull('hub/library/app:1', 'moved');
    await cache.settled();

    // Assess
    expect(result.code, describeFailure(result)).toBe(0);
    expect((await fetchManifest(cache.url, 'hub/library/app', '1')).digest).toBe(second.manifestDigest);
    for (const blob of second.blobs) expect(await sameFileBytes(pulled('moved', blob.digest), blobPath(second.layout, blob.digest)), blob.digest).toBe(true);
    // The tag's history shows both fills, by the cache, from the upstream.
    const history = (await (await fetch(`${cache.url}/v2/hub/library/app/_ocireg/history/1`)).json()) as { changes: Array<Record<string, unknown>> };
    expect(history.changes.map(({ action, digest, actor, reason }) => ({ action, digest, actor, reason }))).toEqual([
      { action: 'moved', digest: second.manifestDigest, actor: { subject: 'cache' }, reason: `filled from ${hub.front.url}/library/app:1` },
      { action: 'created', digest: first.manifestDigest, actor: { subject: 'cache' }, reason: `filled from ${hub.front.url}/library/app:1` },
    ]);
  });

  it('re-checks a tag with a HEAD after the revalidation interval (no manifest GET), and a digest never', async () => {
    // Prepare: once the interval passed, a pull re-checks the tag and starts a new interval.
    const { front } = hub;
    const manifestGets = () => front.requests().filter((line) => line === 'GET /v2/library/app/manifests/1').length;
    const heads = () => front.requests().filter((line) => line === 'HEAD /v2/library/app/manifests/1').length;
    await sleep(REVALIDATE_MS + 500);
    const [getsBefore, headsBefore] = [manifestGets(), heads()];
    await fetchManifest(cache.url, 'hub/library/app', '1');
    const headsAtCheck = heads();

    // Act
    const within = await fetchManifest(cache.url, 'hub/library/app', '1');
    const headsWithin = heads();
    await sleep(REVALIDATE_MS + 500);
    const after = await fetchManifest(cache.url, 'hub/library/app', '1');
    const requestsBeforeDigest = front.requests().length;
    const byDigest = await fetchManifest(cache.url, 'hub/library/app', second.manifestDigest);

    // Assess
    expect(headsAtCheck).toBe(headsBefore + 1);
    expect(within.digest).toBe(second.manifestDigest);
    expect(headsWithin).toBe(headsAtCheck);
    expect(after.digest).toBe(second.manifestDigest);
    expect(heads()).toBe(headsBefore + 2);
    expect(manifestGets()).toBe(getsBefore);
    expect(byDigest.status).toBe(200);
    expect(front.requests().length).toBe(requestsBeforeDigest);
  });

  if (kind === 'serve') {
    it('refuses a blob the upstream corrupts in transit: the streamed GET breaks off before its end, HEAD answers DIGEST_INVALID, nothing is kept', async () => {
      // Prepare
      const front = await corruptingRule();
      const layer = third.manifest.layers.at(-1)!;

      try {
        // Act
        const manifest = await fetchManifest(cache.url, 'bad/library/corrupt', '1');
        const streamed = await fetch(`${cache.url}/v2/bad/library/corrupt/blobs/${layer.digest}`);
        let received = 0;
        const reader = streamed.body!.getReader();
        const broken = await (async () => {
          for (let next = await reader.read(); !next.done; next = await reader.read()) received += next.value.byteLength;
        })().catch((error: unknown) => error);
        const head = await fetch(`${cache.url}/v2/bad/library/corrupt/blobs/${layer.digest}`, { method: 'HEAD' });

        // Assess
        expect(manifest.digest).toBe(third.manifestDigest);
        expect(streamed.status).toBe(200);
        expect(broken).toBeInstanceOf(Error);
        expect(received).toBeLessThan(layer.size);
        expect(head.status).toBe(400);
        expect(await cache.hasBlob(layer.digest)).toBe(false);
        expect(cache.lines().filter((line) => line.msg === 'request' && line.status === 400).at(-1)).toMatchObject({ error: { code: 'DIGEST_INVALID' } });
        expect(notCached(layer.digest)).toEqual(['DIGEST_INVALID', 'DIGEST_INVALID']);
        expect((await fetch(`${cache.url}/v2/hub/library/corrupt/blobs/${layer.digest}`, { method: 'HEAD' })).status).toBe(200);
        expect(await cache.hasBlob(layer.digest)).toBe(true);
      } finally {
        await front.close();
      }
    });
  } else {
    it('refuses a blob the upstream corrupts: a small one answers DIGEST_INVALID in the pull, a large one is redirected and the copy function keeps nothing', async () => {
      // Prepare
      const front = await corruptingRule();
      const [small, large] = third.manifest.layers.slice(-2) as [LayoutImage['manifest']['layers'][number], LayoutImage['manifest']['layers'][number]];
      expect([small.size <= COPY_IN_REQUEST_MAX_BYTES, large.size > COPY_IN_REQUEST_MAX_BYTES]).toEqual([true, true]);
      const invoked = cache.copyInvocations().length;

      try {
        // Act
        const manifest = await fetchManifest(cache.url, 'bad/library/corrupt', '1');
        const smallGet = await fetch(`${cache.url}/v2/bad/library/corrupt/blobs/${small.digest}`, { redirect: 'manual' });
        const largeGet = await fetch(`${cache.url}/v2/bad/library/corrupt/blobs/${large.digest}`, { redirect: 'manual' });
        await cache.settled();

        // Assess
        expect(manifest.digest).toBe(third.manifestDigest);
        expect(smallGet.status).toBe(400);
        expect((await errorOf(smallGet)).code).toBe('DIGEST_INVALID');
        // The client reads the upstream's bytes and checks the digest itself, as it does with any registry.
        expect(largeGet.status).toBe(307);
        expect(largeGet.headers.get('location')).toBe(`${front.url}/v2/library/corrupt/blobs/${large.digest}`);
        expect(cache.copyInvocations().slice(invoked)).toEqual([{ name: 'bad/library/corrupt', digest: large.digest }]);
        expect(notCached(small.digest)).toEqual(['DIGEST_INVALID']);
        expect(notCached(large.digest)).toEqual(['DIGEST_INVALID']);
        expect(await cache.hasBlob(small.digest)).toBe(false);
        expect(await cache.hasBlob(large.digest)).toBe(false);
        // The same blobs through the intact upstream are stored.
        expect((await fetch(`${cache.url}/v2/hub/library/corrupt/blobs/${small.digest}`, { method: 'HEAD' })).status).toBe(200);
        expect(await cache.hasBlob(small.digest)).toBe(true);
      } finally {
        await front.close();
      }
    });
  }

  it('serves the cached image by tag and by digest with the upstream stopped, and says so in the log', async () => {
    // Prepare
    await upstream.stop();
    await sleep(REVALIDATE_MS + 500);

    // Act
    const result = await pull('hub/library/app:1', 'offline');
    const byDigest = await fetchManifest(cache.url, 'hub/library/app', first.manifestDigest);
    const uncached = await fetchManifest(cache.url, 'hub/library/other', '1');

    // Assess
    expect(result.code, describeFailure(result)).toBe(0);
    for (const blob of second.blobs) expect(await sameFileBytes(pulled('offline', blob.digest), blobPath(second.layout, blob.digest)), blob.digest).toBe(true);
    expect(byDigest.status).toBe(200);
    expect(byDigest.digest).toBe(first.manifestDigest);
    expect((await fetchBlobDigest(cache.url, 'hub/library/app', first.manifest.layers[0]!.digest)).digest).toBe(first.manifest.layers[0]!.digest);
    expect(cache.lines().some((line) => line.msg === 'upstream unavailable: serving the cached manifest' && line.name === 'hub/library/app')).toBe(true);
    expect(uncached.status).toBe(503);
    expect(JSON.parse(uncached.bytes.toString('utf8')).errors[0]).toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringMatching(new RegExp(`^the upstream ${hub.front.url} cannot be reached while fetching library/other: .*; nothing is cached for hub/library/other:1$`)),
    });
  });
});
