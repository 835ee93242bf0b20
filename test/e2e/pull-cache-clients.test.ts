import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd, type Containerd } from '../support/containerd.ts';
import { distributionRegistry, type DistributionRegistry } from '../support/distribution-registry.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { addRandomLayer, buildRandomImage, MiB, type LayoutImage } from '../support/images.ts';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { describeFailure, requireTools, runOk, runTool, type RunResult } from '../support/tools.ts';

/**
 * docker (dockerd) and ctr (containerd) pull through `ocireg serve`'s pull-through cache of a docker-registry
 * upstream (`--cache-revalidate 2s`). In order: first pulls (misses), the upstream stopped (served from the cache),
 * the upstream back with the tag moved (picked up after the interval).
 */

const REVALIDATE_MS = 2_000;
const dirs = tempDirs('ocireg-pull-cache-clients-');
let upstream: DistributionRegistry;
let server: RegistryServer;
let dockerd: Dockerd;
let containerd: Containerd;
let first: LayoutImage;
let second: LayoutImage;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ok = (result: RunResult, log = '') => {
  expect(result.code, `${describeFailure(result)}${log}`).toBe(0);
  return result;
};
const docker = async (args: string[]) => ok(await dockerd.docker(args, { timeoutMs: 180_000 }), `\ndockerd log tail:\n${dockerd.log().slice(-4000)}`);
const ctr = async (args: string[], namespace: string) => ok(await containerd.ctr(args, { namespace }), `\ncontainerd log tail:\n${containerd.log().slice(-4000)}`);
const ref = () => `${server.host}/hub/library/app:1`;

/** The manifest digest docker recorded for the pulled image. */
const dockerDigest = async () => (await docker(['image', 'inspect', '--format', '{{index .RepoDigests 0}}', ref()])).stdout.trim();
/** Pulls with ctr into a namespace of its own (content is not shared between namespaces) and lists the digest. */
async function ctrPull(namespace: string): Promise<string> {
  await ctr(['images', 'pull', '--plain-http', ref()], namespace);
  const listed = (await ctr(['images', 'ls'], namespace)).stdout.split('\n').find((line) => line.startsWith(`${ref()} `)) ?? '';
  return /sha256:[0-9a-f]{64}/.exec(listed)?.[0] ?? `not listed: ${listed}`;
}

beforeAll(async () => {
  await requireTools('skopeo', 'umoci', 'docker-registry', 'docker', 'dockerd', 'containerd', 'ctr');
  const work = await dirs.make();
  upstream = await distributionRegistry(join(work, 'upstream'));
  await upstream.start();
  first = await buildRandomImage({ layout: join(work, 'src'), tag: 'one', randomBytes: 2 * MiB });
  second = await addRandomLayer(join(work, 'src'), 'one', 1 * MiB, 'two');
  ok(await runTool('skopeo', ['copy', '--dest-tls-verify=false', first.ref, `docker://${upstream.host}/library/app:1`], { timeoutMs: 180_000 }));
  const dataDir = join(work, 'data');
  await runOk(process.execPath, [OCIREG_CLI, 'cache', 'add', 'hub', upstream.url, '--data-dir', dataDir]);
  server = await startRegistryServer({ dataDir, serveArgs: ['--cache-revalidate', `${REVALIDATE_MS / 1000}s`] });
  [dockerd, containerd] = await Promise.all([startDockerd({ insecureRegistries: [server.host] }), startContainerd()]);
}, 300_000);

afterAll(async () => {
  await Promise.allSettled([dockerd?.stop(), containerd?.stop()]);
  await server?.stop();
  await upstream?.stop();
  await dirs.cleanUp();
}, 60_000);

describe('docker and ctr through the pull-through cache', () => {
  it('pulls with docker and ctr on a miss: the image the upstream holds', async () => {
    await docker(['pull', ref()]);
    const ctrDigest = await ctrPull('first');

    expect(await dockerDigest()).toBe(`${server.host}/hub/library/app@${first.manifestDigest}`);
    expect(ctrDigest).toBe(first.manifestDigest);
    const fetched = server.lines().filter((line) => line.msg === 'request' && line.name === 'hub/library/app' && line.operation === 'blob.get');
    expect(fetched.length).toBeGreaterThan(0);
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
    expect(await dockerDigest()).toBe(`${server.host}/hub/library/app@${first.manifestDigest}`);
    expect(ctrDigest).toBe(first.manifestDigest);
    expect(server.lines().some((line) => line.msg === 'upstream unavailable: serving the cached manifest' && line.name === 'hub/library/app')).toBe(true);
  });

  it('picks up the tag moved upstream after the revalidation interval, with docker and ctr', async () => {
    // Prepare: the upstream is back and its tag 1 now names the second image.
    await upstream.start();
    ok(await runTool('skopeo', ['copy', '--dest-tls-verify=false', second.ref, `docker://${upstream.host}/library/app:1`], { timeoutMs: 180_000 }));
    await sleep(REVALIDATE_MS + 500);

    // Act
    await docker(['pull', ref()]);
    const ctrDigest = await ctrPull('moved');

    // Assess
    expect(await dockerDigest()).toBe(`${server.host}/hub/library/app@${second.manifestDigest}`);
    expect(ctrDigest).toBe(second.manifestDigest);
  });
});
