import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd, type Containerd } from '../support/containerd.ts';
import { distributionRegistry, type DistributionRegistry } from '../support/distribution-registry.ts';
import { startTokenServer } from '../support/token-server.ts';
import { CACHE_RULES_TTL_MS } from '../../lib/registry/pull-through-cache.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { addRandomLayer, buildRandomImage, MiB, writeIndex, type LayoutImage } from '../support/images.ts';
import { PULL_CACHE_TARGETS, useHubCache, type PullCacheTarget } from '../support/pull-cache-target.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { describeFailure, requireTools, runTool, type RunResult } from '../support/tools.ts';

/**
 * docker (dockerd) and ctr (containerd) pull through the pull-through cache of a docker-registry upstream, on
 * `ocireg serve` and on `dev:aws` (tag revalidation every 2 s on both). One dockerd and one containerd serve both
 * targets (they are slow to start); each target has its own upstream, since the tests stop and change it. In order:
 * first pulls (misses), the upstream stopped (served from the cache), the upstream back with the tag moved (picked
 * up after the interval), a multi-platform index. On dev:aws the copy-in-request limit is 1.5 MiB: the 2 MiB layer is
 * redirected to the upstream while the copy function stores it, the config and the 1 MiB layer are copied within
 * the pull; and docker meets the 503 of a large layer that a token-only upstream serves, and retries.
 */

const REVALIDATE_MS = 2_000;
const COPY_IN_REQUEST_MAX_BYTES = 1.5 * MiB;
const dirs = tempDirs('ocireg-pull-cache-clients-');
let work: string;
let dockerd: Dockerd;
let containerd: Containerd;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ok = (result: RunResult, log = '') => {
  expect(result.code, `${describeFailure(result)}${log}`).toBe(0);
  return result;
};
const docker = async (args: string[]) => ok(await dockerd.docker(args, { timeoutMs: 180_000 }), `\ndockerd log tail:\n${dockerd.log().slice(-4000)}`);
const ctr = async (args: string[], namespace: string) => ok(await containerd.ctr(args, { namespace }), `\ncontainerd log tail:\n${containerd.log().slice(-4000)}`);

beforeAll(async () => {
  await requireTools('skopeo', 'umoci', 'docker-registry', 'docker', 'dockerd', 'containerd', 'ctr');
  work = await dirs.make();
  // Every target listens on loopback: plain HTTP to any 127.x address (docker's own default, stated here).
  [dockerd, containerd] = await Promise.all([startDockerd({ insecureRegistries: ['127.0.0.0/8'] }), startContainerd()]);
}, 300_000);

afterAll(async () => {
  await Promise.allSettled([dockerd?.stop(), containerd?.stop()]);
  await dirs.cleanUp();
}, 60_000);

describe.each(PULL_CACHE_TARGETS)('docker and ctr through the pull-through cache on %s', (kind) => {
  const slug = kind.replace(':', '-');
  let first: LayoutImage;
  let second: LayoutImage;
  const hub = useHubCache(kind, {
    dir: () => work,
    image: async () => {
      first = await buildRandomImage({ layout: join(work, `src-${slug}`), tag: 'one', randomBytes: 2 * MiB });
      second = await addRandomLayer(join(work, `src-${slug}`), 'one', 1 * MiB, 'two');
      return first;
    },
    revalidateSeconds: REVALIDATE_MS / 1000,
    copyInRequestMaxBytes: COPY_IN_REQUEST_MAX_BYTES,
  });
  let upstream: DistributionRegistry;
  let cache: PullCacheTarget;
  beforeAll(() => {
    ({ upstream, cache } = hub);
  });
  const ref = () => `${cache.host}/hub/library/app:1`;

  /** The manifest digest docker recorded for the pulled image. */
  const dockerDigest = async () => (await docker(['image', 'inspect', '--format', '{{index .RepoDigests 0}}', ref()])).stdout.trim();
  /** Pulls with ctr into a namespace of its own (content is not shared between namespaces) and lists the digest. */
  async function ctrPull(namespace: string): Promise<string> {
    await ctr(['images', 'pull', '--plain-http', ref()], `${slug}-${namespace}`);
    const listed = (await ctr(['images', 'ls'], `${slug}-${namespace}`)).stdout.split('\n').find((line) => line.startsWith(`${ref()} `)) ?? '';
    return /sha256:[0-9a-f]{64}/.exec(listed)?.[0] ?? `not listed: ${listed}`;
  }

  it('pulls with docker and ctr on a miss: the image the upstream holds', async () => {
    await docker(['pull', ref()]);
    const ctrDigest = await ctrPull('first');
    await cache.settled();

    expect(await dockerDigest()).toBe(`${cache.host}/hub/library/app@${first.manifestDigest}`);
    expect(ctrDigest).toBe(first.manifestDigest);
    const fetched = cache.lines().filter((line) => line.msg === 'request' && line.name === 'hub/library/app' && line.operation === 'blob.get');
    expect(fetched.length).toBeGreaterThan(0);
    for (const blob of first.blobs) expect(await cache.hasBlob(blob.digest), blob.digest).toBe(true);
    if (kind === 'dev:aws') {
      // The one layer over the limit went through the copy function, once for both clients.
      const large = first.manifest.layers.filter((layer) => layer.size > COPY_IN_REQUEST_MAX_BYTES).map((layer) => layer.digest);
      expect(large).toHaveLength(1);
      expect(cache.copyInvocations()).toEqual([{ name: 'hub/library/app', digest: large[0] }]);
    }
  });

  it('pulls again with docker and ctr after the upstream stopped, from the cache', async () => {
    // Prepare: the tag is due for revalidation and the upstream is gone.
    await upstream.stop();
    await sleep(REVALIDATE_MS + 500);
    await docker(['rmi', ref()]);

    // Act
    await docker(['pull', ref()]);
    const ctrDigest = await ctrPull('offline');

    // Assess
    expect(await dockerDigest()).toBe(`${cache.host}/hub/library/app@${first.manifestDigest}`);
    expect(ctrDigest).toBe(first.manifestDigest);
    expect(cache.lines().some((line) => line.msg === 'upstream unavailable: serving the cached manifest' && line.name === 'hub/library/app')).toBe(true);
  });

  it('picks up the tag moved upstream after the revalidation interval, with docker and ctr', async () => {
    // Prepare: the upstream is back and its tag 1 now names the second image.
    await upstream.start();
    await hub.pushUpstream(second, 'library/app:1');
    await sleep(REVALIDATE_MS + 500);

    // Act
    await docker(['pull', ref()]);
    const ctrDigest = await ctrPull('moved');
    await cache.settled();

    // Assess
    expect(await dockerDigest()).toBe(`${cache.host}/hub/library/app@${second.manifestDigest}`);
    expect(ctrDigest).toBe(second.manifestDigest);
    for (const blob of second.blobs) expect(await cache.hasBlob(blob.digest), blob.digest).toBe(true);
  });
  it('pulls a multi-platform index (as Docker Hub serves official images) with docker and ctr: the index and the host platform only', async () => {
    // Prepare: an amd64 + arm64 index upstream; the host is amd64.
    const layout = join(work, `multi-${slug}`);
    const amd64 = await buildRandomImage({ layout, tag: 'amd64', randomBytes: 2 * MiB, architecture: 'amd64' });
    const arm64 = await buildRandomImage({ layout, tag: 'arm64', randomBytes: 1 * MiB, architecture: 'arm64' });
    const index = await writeIndex(layout, 'multi', [amd64, arm64]);
    ok(await runTool('skopeo', ['copy', '--all', '--dest-tls-verify=false', `oci:${layout}:multi`, `docker://${upstream.host}/library/multi:1`], { timeoutMs: 180_000 }));
    const multi = `${cache.host}/hub/library/multi:1`;

    // Act
    await docker(['pull', multi]);
    await ctr(['images', 'pull', '--plain-http', multi], `${slug}-multi`);
    await cache.settled();

    // Assess
    expect((await docker(['image', 'inspect', '--format', '{{index .RepoDigests 0}}', multi])).stdout.trim()).toBe(`${cache.host}/hub/library/multi@${index.digest}`);
    expect((await ctr(['images', 'ls'], `${slug}-multi`)).stdout).toContain(index.digest);
    for (const blob of amd64.blobs) expect(await cache.hasBlob(blob.digest), blob.digest).toBe(true);
    expect(await cache.hasBlob(arm64.manifest.layers[0]!.digest)).toBe(false);
  });
  if (kind === 'dev:aws') {
    it('docker pulls a large layer that a token-only upstream serves: 503 while the copy function copies it with the stored credentials, docker retries and gets it from S3', async () => {
      // Prepare: docker-registry with token auth (no redirect: it serves blobs only behind its token) as rule tok.
      const tokenServer = await startTokenServer(work, { users: { mirror: 'mirror-secret', pusher: 'pusher-secret' }, pushers: ['pusher'] });
      const tokenUpstream = await distributionRegistry(join(work, 'token-upstream'), { token: tokenServer });
      try {
        await tokenUpstream.start();
        const image = await buildRandomImage({ layout: join(work, 'token-src'), tag: 'one', randomBytes: 2 * MiB });
        const layer = image.manifest.layers[0]!;
        expect(layer.size).toBeGreaterThan(COPY_IN_REQUEST_MAX_BYTES);
        ok(await runTool('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', 'pusher:pusher-secret', image.ref, `docker://${tokenUpstream.host}/private/app:1`], { timeoutMs: 180_000 }));
        await cache.addRule({ prefix: 'tok', upstream: tokenUpstream.url, credentials: { username: 'mirror', password: 'mirror-secret' } });
        await sleep(CACHE_RULES_TTL_MS + 500);
        const tokRef = `${cache.host}/tok/private/app:1`;

        // Act
        await docker(['pull', tokRef]);

        // Assess
        expect((await docker(['image', 'inspect', '--format', '{{index .RepoDigests 0}}', tokRef])).stdout.trim()).toBe(`${cache.host}/tok/private/app@${image.manifestDigest}`);
        const layerGets = cache.lines().filter((line) => line.msg === 'request' && line.operation === 'blob.get' && String(line.path).endsWith(layer.digest)).map((line) => line.status);
        expect(layerGets[0]).toBe(503);
        expect(layerGets.at(-1)).toBe(307);
        expect(cache.copyInvocations()).toContainEqual({ name: 'tok/private/app', digest: layer.digest });
        expect(await cache.hasBlob(layer.digest)).toBe(true);
      } finally {
        await tokenUpstream.stop();
        await tokenServer.stop();
      }
    });
  }
});
